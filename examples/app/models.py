"""The example app's tables: its users, and their sessions as anchor_orm entities."""

from datetime import datetime

from sqlmodel import Field, Relationship, SQLModel

from anchor_orm import AnchorSessionBase, UTCDateTime, utc_now


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True, index=True)
    password_hash: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime, nullable=False)


class UserSession(AnchorSessionBase, table=True):
    __tablename__ = "user_session"

    user_id: int = Field(foreign_key="user.id", ondelete="CASCADE", index=True)
    user: User = Relationship()
