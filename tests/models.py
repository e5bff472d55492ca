"""Tables the test suite uses: one user model with an integer key, one with a UUID."""

import uuid

from sqlmodel import Field, Relationship, SQLModel

from anchor_orm import AnchorSessionBase


class Account(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(unique=True, index=True)
    password_version: int = 0


class AccountSession(AnchorSessionBase, table=True):
    __tablename__ = "account_session"

    user_id: int = Field(foreign_key="account.id", ondelete="CASCADE", index=True)
    user: Account = Relationship()


class Member(SQLModel, table=True):
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str


class MemberSession(AnchorSessionBase, table=True):
    __tablename__ = "member_session"

    member_id: uuid.UUID = Field(foreign_key="member.id", ondelete="CASCADE", index=True)
    member: Member = Relationship()
