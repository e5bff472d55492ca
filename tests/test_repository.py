"""The repository inside the caller's transaction: it flushes, it never commits."""

from datetime import timedelta
from typing import Annotated

import pytest
import sqlalchemy as sa
from fastapi import Depends
from sqlmodel import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from anchor_orm import Anchor, ExpiryPolicy
from anchor_orm._tokens import hash_secret
from anchor_orm.testing import MovableClock
from tests.app import SECRET_KEY
from tests.models import Account, AccountSession
from tests.sqlcount import count_statements

DB = Annotated[AsyncSession, Depends(lambda: None, scope="function")]


def make_anchor(clock: MovableClock | None = None, **kwargs) -> Anchor[AccountSession]:
    return Anchor(AccountSession, db=DB, secret_keys=[SECRET_KEY], clock=clock or MovableClock(), **kwargs)


async def add_account(db: AsyncSession, email: str) -> Account:
    account = Account(email=email)
    db.add(account)
    await db.flush()
    return account


async def count_rows(database) -> int:
    async with database.session() as db:
        return (await db.exec(select(func.count()).select_from(AccountSession))).one()


def count_commits(db: AsyncSession) -> list[int]:
    commits: list[int] = []
    sa.event.listen(db.sync_session, "after_commit", lambda _s: commits.append(1))
    return commits


async def test_create_then_rollback_gives_a_refused_token(database):
    anchor = make_anchor()
    async with database.session() as db:
        await add_account(db, "a@example.com")
        await db.commit()
    async with database.session() as db:
        account = (await db.exec(select(Account))).one()
        commits = count_commits(db)
        issued = await anchor.repository(db).create(account)
        await db.rollback()
        assert commits == []
    async with database.session() as db:
        assert await anchor.repository(db).validate(issued.token) is None
    assert await count_rows(database) == 0


async def test_revoke_all_then_rollback_leaves_sessions_valid(database):
    anchor = make_anchor()
    async with database.session() as db:
        account = await add_account(db, "a@example.com")
        tokens = [(await anchor.repository(db).create(account)).token for _ in range(3)]
        await db.commit()
    async with database.session() as db:
        account = (await db.exec(select(Account))).one()
        commits = count_commits(db)
        assert await anchor.repository(db).revoke_all(account) == 3
        await db.rollback()
        assert commits == []
    async with database.session() as db:
        for token in tokens:
            assert await anchor.repository(db).validate(token) is not None


async def test_revoke_all_is_one_statement_and_can_keep_one(database):
    anchor = make_anchor()
    async with database.session() as db:
        account = await add_account(db, "a@example.com")
        other = await add_account(db, "b@example.com")
        repo = anchor.repository(db)
        kept = await repo.create(account)
        for _ in range(4):
            await repo.create(account)
        others = await repo.create(other)
        await db.commit()
        with count_statements(database.engine) as log:
            assert await repo.revoke_all(account, keep=kept.session) == 4
        assert len(log.session_statements) == 1
        assert log.session_statements[0].lstrip().upper().startswith("DELETE")
        await db.commit()
    async with database.session() as db:
        repo = anchor.repository(db)
        assert await repo.validate(kept.token) is not None
        assert await repo.validate(others.token) is not None
    assert await count_rows(database) == 2


async def test_revoke_checks_the_owner(database):
    anchor = make_anchor()
    async with database.session() as db:
        alice = await add_account(db, "alice@example.com")
        mallory = await add_account(db, "mallory@example.com")
        repo = anchor.repository(db)
        alices = await repo.create(alice)
        assert await repo.revoke(alices.session.id, owner=mallory) is False
        assert await repo.validate(alices.token) is not None
        assert await repo.revoke(alices.session, owner=alice) is True
        assert await repo.validate(alices.token) is None
        assert await repo.revoke(alices.session.id, owner=alice) is False  # already gone


async def test_list_gives_live_sessions_newest_first(database):
    clock = MovableClock()
    anchor = make_anchor(clock, policy=ExpiryPolicy(idle_timeout=timedelta(days=1)))
    async with database.session() as db:
        account = await add_account(db, "a@example.com")
        repo = anchor.repository(db)
        oldest = await repo.create(account)
        clock.advance(hours=20)
        middle = await repo.create(account)
        clock.advance(hours=1)
        newest = await repo.create(account)
        clock.advance(hours=5)  # the oldest is now idle for 26 hours: expired
        listed = await repo.list(account)
        assert [s.id for s in listed] == [newest.session.id, middle.session.id]
        assert oldest.session.id not in {s.id for s in listed}


async def test_rotate_gives_a_new_token_and_keeps_the_lifetime(database):
    clock = MovableClock()
    anchor = make_anchor(clock)
    async with database.session() as db:
        account = await add_account(db, "a@example.com")
        repo = anchor.repository(db)
        issued = await repo.create(account)
        created_at = issued.session.created_at
        absolute = issued.session.absolute_expires_at
        clock.advance(hours=2)
        new_token = await repo.rotate(issued.session, reauthenticated=True)
        await db.commit()
    assert new_token != issued.token
    async with database.session() as db:
        repo = anchor.repository(db)
        assert await repo.validate(issued.token) is None
        session = await repo.validate(new_token)
        assert session is not None
        assert session.id == issued.session.id
        assert session.created_at == created_at
        assert session.absolute_expires_at == absolute
        assert session.authenticated_at == clock()


async def test_purge_deletes_expired_rows_in_batches(database):
    clock = MovableClock()
    anchor = make_anchor(
        clock,
        policy=ExpiryPolicy(idle_timeout=timedelta(hours=1), browser_session_idle_timeout=timedelta(hours=1)),
    )
    async with database.session() as db:
        account = await add_account(db, "a@example.com")
        repo = anchor.repository(db)
        for _ in range(7):
            await repo.create(account)
        clock.advance(hours=2)
        live = await repo.create(account)
        await db.commit()
        with count_statements(database.engine) as log:
            assert await repo.purge_expired(batch_size=3) == 7
        assert len(log.of_kind("DELETE")) == 3  # 3 + 3 + 1
        assert await repo.purge_expired(batch_size=3, max_batches=1) == 0
        await db.commit()
        assert await repo.validate(live.token) is not None
    assert await count_rows(database) == 1


async def test_only_a_hash_of_the_secret_is_stored(database):
    """C8: nothing in the table rebuilds the cookie."""
    anchor = make_anchor()
    async with database.session() as db:
        account = await add_account(db, "a@example.com")
        issued = await anchor.repository(db).create(account)
        await db.commit()
    raw_token = anchor.signer.unsign(issued.token)[0]
    session_id, secret = raw_token.split(".")
    async with database.engine.connect() as connection:
        row = (await connection.execute(sa.text("SELECT * FROM account_session"))).mappings().one()
    stored_text = " ".join(str(value) for value in row.values())
    assert secret not in stored_text
    assert issued.token not in stored_text
    assert row["secret_hash"] == hash_secret(secret)
    assert len(session_id) * 6 >= 80 and len(secret) * 6 >= 256


async def test_a_token_with_the_wrong_secret_is_refused(database):
    anchor = make_anchor()
    async with database.session() as db:
        account = await add_account(db, "a@example.com")
        issued = await anchor.repository(db).create(account)
        await db.commit()
    session_id = issued.session.id
    forged = anchor.signer.sign(f"{session_id}.{'A' * 43}")
    async with database.session() as db:
        assert await anchor.repository(db).validate(forged) is None


async def test_validation_is_one_select_with_the_user_loaded(database):
    """No write while no touch is due, and session.user needs no lazy load."""
    clock = MovableClock()
    anchor = make_anchor(clock)
    async with database.session() as db:
        account = await add_account(db, "a@example.com")
        issued = await anchor.repository(db).create(account)
        await db.commit()
    async with database.session() as db:
        with count_statements(database.engine) as log:
            session = await anchor.repository(db).validate(issued.token)
            assert session is not None
            assert session.user.email == "a@example.com"
        assert len(log.session_statements) == 1
        assert log.selects and not log.writes
        assert "JOIN" in log.selects[0].upper()


async def test_a_due_touch_is_one_conditional_update(database):
    clock = MovableClock()
    anchor = make_anchor(clock)
    async with database.session() as db:
        account = await add_account(db, "a@example.com")
        issued = await anchor.repository(db).create(account)
        await db.commit()
    clock.advance(anchor.policy.touch_interval)
    async with database.session() as db:
        with count_statements(database.engine) as log:
            found = await anchor.repository(db).validate_and_touch(issued.token)
        assert found is not None and found.extended
        assert len(log.selects) == 1 and len(log.writes) == 1
        assert log.writes[0].lstrip().upper().startswith("UPDATE")
        assert found.session.expires_at == clock() + anchor.policy.idle_timeout
        await db.commit()


async def test_max_sessions_per_user_evicts_the_oldest(database):
    clock = MovableClock()
    anchor = make_anchor(clock, max_sessions_per_user=2)
    async with database.session() as db:
        account = await add_account(db, "a@example.com")
        repo = anchor.repository(db)
        first = await repo.create(account)
        clock.advance(seconds=1)
        second = await repo.create(account)
        clock.advance(seconds=1)
        third = await repo.create(account)
        await db.commit()
        assert await repo.validate(first.token) is None
        assert await repo.validate(second.token) is not None
        assert await repo.validate(third.token) is not None


async def test_repository_refuses_a_user_of_the_wrong_type(database):
    anchor = make_anchor()
    async with database.session() as db:
        with pytest.raises(TypeError, match="expected a Account"):
            await anchor.repository(db).create(object())


def test_session_ids_never_start_with_a_dash():
    """A CLI would read such an id as an option."""
    from anchor_orm._tokens import new_session_id

    ids = [new_session_id() for _ in range(5000)]
    assert not any(session_id.startswith("-") for session_id in ids)
    assert len(set(ids)) == 5000 and {len(i) for i in ids} == {22}
