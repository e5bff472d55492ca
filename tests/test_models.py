"""AnchorSessionBase: columns, UTC datetimes on every database, and configuration errors."""

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated

import pytest
import sqlalchemy as sa
from fastapi import Depends
from sqlmodel import Field, SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from anchor_orm import Anchor, AnchorSessionBase, ConfigurationError
from tests.app import SECRET_KEY
from tests.models import Account, AccountSession, Member, MemberSession

DB = Annotated[AsyncSession, Depends(lambda: None, scope="function")]


def anchor_for(model: type) -> Anchor:
    return Anchor(model, db=DB, secret_keys=[SECRET_KEY])


def test_two_session_models_have_their_own_columns():
    account_columns = AccountSession.__table__.c
    member_columns = MemberSession.__table__.c
    for name in ("id", "expires_at", "created_at", "secret_hash"):
        assert account_columns[name] is not member_columns[name]
        assert account_columns[name].table is AccountSession.__table__


def test_expires_at_and_user_key_are_indexed():
    indexed = {tuple(c.name for c in index.columns) for index in AccountSession.__table__.indexes}
    assert ("expires_at",) in indexed
    assert ("user_id",) in indexed


def test_session_model_without_user_foreign_key_names_the_fix():
    class Orphan(AnchorSessionBase, table=True):
        __tablename__ = "orphan_session"

    with pytest.raises(ConfigurationError) as raised:
        anchor_for(Orphan)
    message = str(raised.value)
    assert "no foreign key" in message
    assert 'Field(foreign_key="user.id", ondelete="CASCADE", index=True)' in message
    assert "user: User = Relationship()" in message


def test_session_model_without_relationship_names_the_fix():
    class NoRelationship(AnchorSessionBase, table=True):
        __tablename__ = "no_relationship_session"
        user_id: int = Field(foreign_key="account.id")

    with pytest.raises(ConfigurationError, match="no relationship to the user"):
        anchor_for(NoRelationship)


def test_non_table_session_model_is_refused():
    class NotATable(AnchorSessionBase):
        pass

    with pytest.raises(ConfigurationError, match="table=True"):
        anchor_for(NotATable)


def test_db_must_be_the_routes_dependency():
    async def get_db():
        yield None

    with pytest.raises(ConfigurationError, match="Depends\\(get_db, scope='function'\\)"):
        Anchor(AccountSession, db=get_db, secret_keys=[SECRET_KEY])


async def test_datetimes_come_back_aware_utc_and_ordered(database):
    """aiosqlite drops offsets; the column type keeps values aware, in UTC, well ordered."""
    anchor = anchor_for(AccountSession)
    async with database.session() as db:
        account = Account(email="tz@example.com")
        db.add(account)
        await db.flush()
        repo = anchor.repository(db)
        first = await repo.create(account)
        second = await repo.create(account)
        # Same instant written with different offsets must sort by the instant.
        plus_two = timezone(timedelta(hours=2))
        first.session.created_at = datetime(2030, 1, 1, 13, 0, tzinfo=plus_two)  # 11:00 UTC
        second.session.created_at = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)  # 12:00 UTC
        await db.commit()
    async with database.session() as db:
        rows = (await db.exec(select(AccountSession).order_by(AccountSession.created_at))).all()
        assert [r.id for r in rows] == [first.session.id, second.session.id]
        for row in rows:
            assert row.created_at.tzinfo is not None
            assert row.created_at.utcoffset() == timedelta(0)
        assert rows[0].created_at == datetime(2030, 1, 1, 11, 0, tzinfo=UTC)


async def test_naive_datetime_is_refused(database):
    async with database.session() as db:
        account = Account(email="naive@example.com")
        db.add(account)
        await db.flush()
        issued = await anchor_for(AccountSession).repository(db).create(account)
        issued.session.expires_at = datetime(2030, 1, 1)  # naive
        with pytest.raises(sa.exc.StatementError, match="timezone-aware"):
            await db.flush()


async def test_uuid_user_keys_work(database):
    anchor = anchor_for(MemberSession)
    async with database.session() as db:
        member = Member(name="uuid user")
        db.add(member)
        await db.flush()
        repo = anchor.repository(db)
        issued = await repo.create(member)
        await db.commit()
    async with database.session() as db:
        repo = anchor.repository(db)
        session = await repo.validate(issued.token)
        assert session is not None
        assert isinstance(session.member_id, uuid.UUID)
        assert session.member.name == "uuid user"
        assert await repo.revoke_all(session.member) == 1
        await db.commit()
    async with database.session() as db:
        assert await anchor.repository(db).validate(issued.token) is None


async def test_session_data_payload_round_trips(database):
    anchor = anchor_for(AccountSession)
    async with database.session() as db:
        account = Account(email="data@example.com")
        db.add(account)
        await db.flush()
        issued = await anchor.repository(db).create(account, data={"theme": "dark", "n": 3})
        await db.commit()
    async with database.session() as db:
        session = await anchor.repository(db).validate(issued.token)
        assert session is not None and session.data == {"theme": "dark", "n": 3}


def test_metadata_knows_the_test_tables():
    assert "account_session" in SQLModel.metadata.tables
