"""Session events: what is emitted, with which reason, and when handlers run."""

from datetime import timedelta
from typing import Annotated, Any

import pytest
import sqlalchemy as sa
from fastapi import Depends
from sqlmodel import select

from anchor_orm import (
    RequestSessions,
    RevokeReason,
    SessionCreated,
    SessionEvent,
    SessionRepository,
    SessionRevoked,
    SessionRotated,
)
from anchor_orm.testing import MovableClock
from tests.app import SAME_ORIGIN, TestApp, build_app
from tests.models import Account, AccountSession

LAPTOP = {"user-agent": "Firefox on a laptop", **SAME_ORIGIN}
PHONE = {"user-agent": "Safari on a phone", **SAME_ORIGIN}


class Recorder:
    """Subscribes to every event, once inside the transaction and once after commit."""

    def __init__(self, test_app: TestApp) -> None:
        self.in_transaction: list[SessionEvent] = []
        self.after_commit: list[SessionEvent] = []
        events = test_app.anchor.events
        events.subscribe(SessionEvent, self._record_in_transaction, when="in_transaction")
        events.subscribe(SessionEvent, self.after_commit.append)

    def _record_in_transaction(self, event: SessionEvent, db: Any) -> None:
        self.in_transaction.append(event)

    def revocations(self) -> list[tuple[str, RevokeReason]]:
        return [(e.session_id, e.reason) for e in self.after_commit if isinstance(e, SessionRevoked)]


def add_password_route(test_app: TestApp) -> None:
    anchor = test_app.anchor
    Sessions = Annotated[RequestSessions[AccountSession], Depends(anchor.sessions)]

    @test_app.app.post("/password-changed")
    async def password_changed(
        session: Annotated[AccountSession, Depends(anchor.get_session)], sessions: Sessions
    ) -> dict[str, int]:
        return {"revoked": await sessions.password_changed(session)}


async def log_in(client: Any, email: str, headers: dict[str, str]) -> str:
    response = await client.post("/login", params={"email": email}, headers=headers)
    assert response.status_code == 200
    session_id: str = response.json()["session_id"]
    return session_id


async def test_login_emits_created_with_new_device_only_for_an_unseen_agent(database):
    test_app = build_app(database)
    recorder = Recorder(test_app)
    account = await test_app.add_account("a@example.com")
    async with test_app.client() as laptop, test_app.client() as laptop_again, test_app.client() as phone:
        first = await log_in(laptop, "a@example.com", LAPTOP)
        second = await log_in(laptop_again, "a@example.com", LAPTOP)
        third = await log_in(phone, "a@example.com", PHONE)
    created = [e for e in recorder.after_commit if isinstance(e, SessionCreated)]
    assert [(e.session_id, e.new_device) for e in created] == [(first, True), (second, False), (third, True)]
    assert created[0].user_id == account.id
    assert created[0].user_agent == "Firefox on a laptop"
    assert created[0].ip_address == "127.0.0.1"


async def test_logging_in_again_in_the_same_browser_is_not_a_new_device(database):
    test_app = build_app(database)
    recorder = Recorder(test_app)
    await test_app.add_account("a@example.com")
    async with test_app.client() as client:
        first = await log_in(client, "a@example.com", LAPTOP)
        # The login replaces (revokes) the browser's own session first.
        second = await log_in(client, "a@example.com", LAPTOP)
    created = [e for e in recorder.after_commit if isinstance(e, SessionCreated)]
    assert [e.new_device for e in created] == [True, False]
    assert recorder.revocations() == [(first, RevokeReason.LOGOUT)]
    assert second != first


async def test_each_way_of_ending_a_session_carries_its_reason(database):
    test_app = build_app(database)
    add_password_route(test_app)
    recorder = Recorder(test_app)
    await test_app.add_account("a@example.com")
    async with (
        test_app.client() as a,
        test_app.client() as b,
        test_app.client() as c,
        test_app.client() as d,
    ):
        session_a = await log_in(a, "a@example.com", LAPTOP)
        session_b = await log_in(b, "a@example.com", PHONE)
        session_c = await log_in(c, "a@example.com", PHONE)
        session_d = await log_in(d, "a@example.com", PHONE)

        assert (await a.post(f"/sessions/{session_b}/revoke", headers=SAME_ORIGIN)).json() == {
            "revoked": True
        }
        assert recorder.revocations()[-1] == (session_b, RevokeReason.REVOKE)

        assert (await a.post("/password-changed", headers=SAME_ORIGIN)).json() == {"revoked": 2}
        assert set(recorder.revocations()[-2:]) == {
            (session_c, RevokeReason.PASSWORD_CHANGE),
            (session_d, RevokeReason.PASSWORD_CHANGE),
        }
        rotated = recorder.after_commit[-1]
        assert isinstance(rotated, SessionRotated)
        assert (rotated.session_id, rotated.reauthenticated) == (session_a, True)

        session_b = await log_in(b, "a@example.com", PHONE)
        assert (await a.post("/logout-others", headers=SAME_ORIGIN)).json() == {"revoked": 1}
        assert recorder.revocations()[-1] == (session_b, RevokeReason.REVOKE_ALL)

        assert (await a.post("/logout", headers=SAME_ORIGIN)).json() == {"revoked": True}
        assert recorder.revocations()[-1] == (session_a, RevokeReason.LOGOUT)
    # In-transaction handlers saw the same events, in the same order.
    assert recorder.in_transaction == recorder.after_commit


async def test_eviction_and_expiry_purge_carry_their_reasons(database):
    clock = MovableClock()
    test_app = build_app(database, clock=clock)
    recorder = Recorder(test_app)
    account = await test_app.add_account("a@example.com")
    anchor = test_app.anchor

    def repository(db: Any, **kwargs: Any) -> SessionRepository[AccountSession]:
        return SessionRepository(
            db, anchor.model_info, signer=anchor.signer, clock=clock, events=anchor.events, **kwargs
        )

    async with database.session() as db:
        oldest = (await repository(db).create(account)).session.id
        clock.advance(seconds=1)
        newest = (await repository(db, max_sessions_per_user=1).create(account)).session.id
        await db.commit()
    assert recorder.revocations() == [(oldest, RevokeReason.EVICTION)]

    clock.advance(anchor.policy.absolute_lifetime)
    async with database.session() as db:
        assert await repository(db).purge_expired(batch_size=10) == 1
        await db.commit()
    assert recorder.revocations()[-1] == (newest, RevokeReason.EXPIRY_PURGE)
    assert recorder.after_commit[-1].user_id == account.id


async def test_rollback_runs_no_after_commit_handler_and_undoes_in_transaction_writes(database):
    test_app = build_app(database)
    account = await test_app.add_account("a@example.com")
    after_commit: list[SessionEvent] = []

    async def write_marker(event: SessionEvent, db: Any) -> None:
        # An in-transaction handler writes with the application's own session.
        db.add(Account(email=f"marker-{event.session_id}@example.com"))

    test_app.anchor.events.subscribe(SessionCreated, write_marker, when="in_transaction")
    test_app.anchor.events.subscribe(SessionCreated, after_commit.append, when="after_commit")

    async with database.session() as db:
        await test_app.anchor.repository(db).create(await db.get(Account, account.id))
        await db.rollback()
    assert after_commit == []
    async with database.session() as db:
        assert len((await db.exec(select(Account))).all()) == 1  # the marker rolled back too
        assert (await db.exec(select(AccountSession))).all() == []

    async with database.session() as db:
        issued = await test_app.anchor.repository(db).create(await db.get(Account, account.id))
        await db.commit()
    assert [e.session_id for e in after_commit] == [issued.session.id]
    async with database.session() as db:
        assert len((await db.exec(select(Account))).all()) == 2


async def test_a_session_closed_without_commit_forgets_its_after_commit_handlers(database):
    test_app = build_app(database)
    account = await test_app.add_account("a@example.com")
    after_commit: list[SessionEvent] = []
    test_app.anchor.events.subscribe(SessionEvent, after_commit.append)
    db = database.session()
    await test_app.anchor.repository(db).create(account)
    await db.close()
    # The same AsyncSession object, reused: its next commit must not run the old handler.
    await db.commit()
    await db.close()
    assert after_commit == []


async def test_savepoints_hold_after_commit_handlers_until_the_outer_commit(database):
    test_app = build_app(database)
    account = await test_app.add_account("a@example.com")
    after_commit: list[str] = []
    test_app.anchor.events.subscribe(SessionCreated, lambda event: after_commit.append(event.session_id))
    repository = test_app.anchor.repository

    async with database.session() as db:
        async with db.begin_nested():
            kept = (await repository(db).create(account)).session.id
        assert after_commit == []  # released savepoint: the outer transaction is still open
        savepoint = await db.begin_nested()
        await repository(db).create(account)
        await savepoint.rollback()
        await db.commit()
    assert after_commit == [kept]

    async with database.session() as db:
        async with db.begin_nested():
            await repository(db).create(account)
        await db.rollback()
    assert after_commit == [kept]


async def test_a_failing_in_transaction_handler_fails_the_operation(database):
    test_app = build_app(database)
    account = await test_app.add_account("a@example.com")

    def refuse(event: SessionEvent, db: Any) -> None:
        raise RuntimeError("audit store is full")

    test_app.anchor.events.subscribe(SessionCreated, refuse, when="in_transaction")
    async with database.session() as db:
        with pytest.raises(RuntimeError, match="audit store is full"):
            await test_app.anchor.repository(db).create(account)
        await db.rollback()
    async with database.session() as db:
        assert (await db.exec(select(AccountSession))).all() == []


async def test_a_failing_after_commit_handler_is_logged_and_the_commit_stands(database, caplog):
    test_app = build_app(database)
    account = await test_app.add_account("a@example.com")
    ran: list[str] = []

    def broken(event: SessionEvent) -> None:
        raise RuntimeError("mail server down")

    async def notify(event: SessionEvent) -> None:
        ran.append(event.session_id)

    events = test_app.anchor.events
    events.subscribe(SessionCreated, broken)
    events.subscribe(SessionCreated, notify)
    async with database.session() as db:
        issued = await test_app.anchor.repository(db).create(account)
        await db.commit()
    await events.drain()
    assert ran == [issued.session.id]
    failures = [r for r in caplog.records if r.name == "anchor_orm" and "handler" in r.getMessage()]
    assert len(failures) == 1
    assert "broken" in failures[0].getMessage()
    async with database.session() as db:
        count = (await db.exec(sa.select(sa.func.count()).select_from(AccountSession))).one()  # type: ignore[call-overload]
        assert count[0] == 1


async def test_no_new_device_query_runs_when_nobody_listens_to_created(database):
    test_app = build_app(database)
    account = await test_app.add_account("a@example.com")
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    sa.event.listen(database.engine.sync_engine, "before_cursor_execute", record)
    try:
        test_app.anchor.events.subscribe(SessionRevoked, lambda event: None)
        async with database.session() as db:
            await test_app.anchor.repository(db).create(account)
            await db.commit()
    finally:
        sa.event.remove(database.engine.sync_engine, "before_cursor_execute", record)
    assert [s.split()[0] for s in statements] == ["INSERT"]


def test_subscribe_refuses_what_cannot_work():
    from anchor_orm import SessionEvents

    events = SessionEvents()
    with pytest.raises(ValueError, match="in_transaction"):
        events.subscribe(SessionCreated, print, when="before_commit")  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="SessionEvent"):
        events.subscribe(dict, print)  # type: ignore[type-var]


def test_revocations_of_a_purge_are_timestamped_by_the_clock():
    # The events' `at` is the repository's clock: tests with a MovableClock see their time.
    clock = MovableClock()
    event = SessionRevoked("id", 1, clock(), reason=RevokeReason.EXPIRY_PURGE)
    assert event.at == clock() and event.at + timedelta(0) == clock()


async def test_an_unsubscribed_handler_hears_nothing_more(database):
    test_app = build_app(database)
    account = await test_app.add_account("a@example.com")
    heard: list[SessionEvent] = []
    events = test_app.anchor.events
    events.subscribe(SessionCreated, heard.append)
    assert events.unsubscribe(heard.append) is True
    assert events.unsubscribe(heard.append) is False
    async with database.session() as db:
        await test_app.anchor.repository(db).create(account)
        await db.commit()
    assert heard == []


async def test_without_delete_returning_revocations_are_still_reported(database, monkeypatch):
    # SQLite before 3.35 has no DELETE ... RETURNING: the ids are read first.
    monkeypatch.setattr(database.engine.dialect, "delete_returning", False)
    clock = MovableClock()
    test_app = build_app(database, clock=clock)
    recorder = Recorder(test_app)
    account = await test_app.add_account("a@example.com")
    async with database.session() as db:
        sessions = test_app.anchor.repository(db)
        owner = await db.get(Account, account.id)
        first, second, third = [await sessions.create(owner) for _ in range(3)]
        assert await sessions.revoke_token(first.token) is True
        assert await sessions.revoke_all(owner, keep=third.session) == 1
        await db.commit()
    clock.advance(days=15)
    async with database.session() as db:
        assert await test_app.anchor.repository(db).purge_expired() == 1
        await db.commit()
    assert recorder.revocations() == [
        (first.session.id, RevokeReason.LOGOUT),
        (second.session.id, RevokeReason.REVOKE_ALL),
        (third.session.id, RevokeReason.EXPIRY_PURGE),
    ]
    async with database.session() as db:
        assert (await db.exec(select(AccountSession))).all() == []
