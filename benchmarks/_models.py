"""The tables: one user table that every system reads, and each system's session table.

The user table is declared twice, once per ORM (fastapi-users' declarative base and
SQLModel), on separate MetaData: the same rows serve every system.
"""

from fastapi_anchor.backends.implementations.postgres_backend import anchor_sessions_table
from fastapi_users_db_sqlalchemy import SQLAlchemyBaseUserTable
from fastapi_users_db_sqlalchemy.access_token import SQLAlchemyBaseAccessTokenTable
from sqlalchemy import ForeignKey, Integer, MetaData
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column
from sqlmodel import Field, Relationship, SQLModel

from anchor_orm import AnchorSessionBase

USER_TABLE = "bench_user"


# --- fastapi-users: its documented base classes, with integer ids.
class FastapiUsersBase(DeclarativeBase):
    pass


class FastapiUsersUser(SQLAlchemyBaseUserTable[int], FastapiUsersBase):
    __tablename__ = USER_TABLE
    id: Mapped[int] = mapped_column(Integer, primary_key=True)


class FastapiUsersAccessToken(SQLAlchemyBaseAccessTokenTable[int], FastapiUsersBase):
    @declared_attr
    def user_id(cls) -> Mapped[int]:
        return mapped_column(Integer, ForeignKey(f"{USER_TABLE}.id", ondelete="cascade"), nullable=False)


# --- fastapi-anchor 0.1.1: its own table function.
fastapi_anchor_metadata = MetaData()
fastapi_anchor_sessions = anchor_sessions_table(fastapi_anchor_metadata)


# --- anchor_orm: the app's user and its session entity, as the README shows them.
class BenchUser(SQLModel, table=True):
    __tablename__ = USER_TABLE
    id: int | None = Field(default=None, primary_key=True)
    email: str


class BenchSession(AnchorSessionBase, table=True):
    __tablename__ = "anchor_orm_session"
    user_id: int = Field(foreign_key=f"{USER_TABLE}.id", ondelete="CASCADE", index=True)
    user: BenchUser = Relationship()


class SmallTableSession(AnchorSessionBase, table=True):
    """The scale runs: the same entity on a table of 10,000 sessions ..."""

    __tablename__ = "anchor_orm_small_table_session"
    user_id: int = Field(foreign_key=f"{USER_TABLE}.id", ondelete="CASCADE", index=True)
    user: BenchUser = Relationship()


class LargeTableSession(AnchorSessionBase, table=True):
    """... and on one of 1,000,000 (then 1,000,000 expired rows more, for the purge)."""

    __tablename__ = "anchor_orm_large_table_session"
    user_id: int = Field(foreign_key=f"{USER_TABLE}.id", ondelete="CASCADE", index=True)
    user: BenchUser = Relationship()


ANCHOR_ORM_TABLES = ("anchor_orm_session", "anchor_orm_small_table_session", "anchor_orm_large_table_session")


ANCHOR_ORM_COLUMNS = [
    "id",
    "secret_hash",
    "created_at",
    "last_seen_at",
    "expires_at",
    "absolute_expires_at",
    "authenticated_at",
    "remember",
    "user_id",
]
