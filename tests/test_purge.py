"""Purging expired sessions: batches, the background task, one purger at a time on PostgreSQL."""

import asyncio
import time
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import func, select

from anchor_orm import (
    PurgeBatch,
    RevokeReason,
    SessionRevoked,
    create_engine,
    purge_expired_sessions,
    purge_in_background,
)
from anchor_orm._purge import purge_lock_key
from anchor_orm.testing import MovableClock, TestDatabase, test_database
from tests.app import SAME_ORIGIN, build_app
from tests.models import Account, AccountSession

WAIT_SECONDS = 10.0


async def add_sessions(database: TestDatabase, clock: MovableClock, count: int) -> Account:
    """``count`` sessions of one new account, created at the clock's current time."""
    test_app = build_app(database, clock=clock)
    account = await test_app.add_account(f"user{count}-{clock().timestamp()}@example.com")
    async with database.session() as db:
        repository = test_app.anchor.repository(db)
        for _ in range(count):
            await repository.create(account)
        await db.commit()
    return account


async def session_count(database: TestDatabase) -> int:
    async with database.session() as db:
        return (await db.exec(select(func.count()).select_from(AccountSession))).one()


async def wait_until(condition: Any) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the background purge"
        await asyncio.sleep(0.01)


async def test_purge_deletes_only_expired_sessions_one_batch_at_a_time(database):
    clock = MovableClock()
    await add_sessions(database, clock, 25)
    clock.advance(days=15)  # past the 14-day idle timeout of the first 25
    await add_sessions(database, clock, 3)
    batches: list[PurgeBatch] = []

    result = await purge_expired_sessions(
        database.engine, AccountSession, batch_size=10, clock=clock, on_batch=batches.append
    )

    assert [(b.number, b.purged_count, b.total_purged_count) for b in batches] == [
        (1, 10, 10),
        (2, 10, 20),
        (3, 5, 25),
    ]
    assert (result.purged_count, result.batch_count, result.skipped) == (25, 3, False)
    assert await session_count(database) == 3


async def test_purge_stops_after_max_batches(database):
    clock = MovableClock()
    await add_sessions(database, clock, 5)
    clock.advance(days=15)
    result = await purge_expired_sessions(
        database.engine, AccountSession, batch_size=2, max_batches=1, clock=clock
    )
    assert (result.purged_count, result.batch_count) == (2, 1)
    assert await session_count(database) == 3


async def test_background_purge_runs_every_interval_and_stops_cleanly(database):
    clock = MovableClock()
    await add_sessions(database, clock, 4)
    clock.advance(days=15)

    async with purge_in_background(
        database.engine, AccountSession, interval=timedelta(milliseconds=50), clock=clock
    ) as purger:
        await wait_until(lambda: purger.completed_runs)
        assert purger.completed_runs[0].purged_count == 4
        await add_sessions(database, clock, 2)
        clock.advance(days=15)
        await wait_until(lambda: sum(run.purged_count for run in purger.completed_runs) == 6)
        stop_started = time.monotonic()
    stop_seconds = time.monotonic() - stop_started
    runs_at_stop = len(purger.completed_runs)

    assert stop_seconds < 1.0
    await asyncio.sleep(0.15)  # three intervals: a purger still running would run again
    assert len(purger.completed_runs) == runs_at_stop
    assert await session_count(database) == 0
    assert purger.failed_run_count == 0


async def test_background_purge_pauses_between_batches_without_holding_a_transaction(database):
    clock = MovableClock()
    await add_sessions(database, clock, 4)
    clock.advance(days=15)
    test_app = build_app(database, clock=clock)
    await test_app.add_account("live@example.com")
    paused = asyncio.Event()
    resume = asyncio.Event()

    async def hold_after_first_batch(batch: PurgeBatch) -> None:
        if batch.number == 1:
            paused.set()
            await resume.wait()

    async with purge_in_background(
        database.engine,
        AccountSession,
        interval=timedelta(hours=1),
        batch_size=2,
        clock=clock,
        on_batch=hold_after_first_batch,
    ) as purger:
        await asyncio.wait_for(paused.wait(), WAIT_SECONDS)
        # Mid-purge, a request writes (a login) without waiting on the purger's locks.
        async with test_app.client() as client:
            login = client.post("/login", params={"email": "live@example.com"}, headers=SAME_ORIGIN)
            assert (await asyncio.wait_for(login, WAIT_SECONDS)).status_code == 200
        resume.set()
        await wait_until(lambda: purger.completed_runs)
    assert purger.completed_runs[0].purged_count == 4
    assert await session_count(database) == 1


async def test_background_purge_logs_a_failure_and_keeps_running(backend, anyio_backend, caplog):
    async with (
        test_database(backend) as empty,  # no tables: every run fails
        purge_in_background(empty.engine, AccountSession, interval=timedelta(milliseconds=20)) as purger,
    ):
        await wait_until(lambda: purger.failed_run_count >= 2)
    failures = [
        r for r in caplog.records if r.name == "anchor_orm" and "background purge failed" in r.message
    ]
    assert len(failures) >= 2
    assert purger.completed_runs == []


async def test_anchor_purge_in_background_emits_expiry_revocations(database):
    clock = MovableClock()
    test_app = build_app(database, clock=clock)
    await add_sessions(database, clock, 3)
    clock.advance(days=15)
    revoked: list[SessionRevoked] = []
    test_app.anchor.events.subscribe(SessionRevoked, revoked.append)

    async with test_app.anchor.purge_in_background(database.engine, interval=timedelta(hours=1)) as purger:
        await wait_until(lambda: purger.completed_runs)
    assert len(revoked) == 3
    assert {event.reason for event in revoked} == {RevokeReason.EXPIRY_PURGE}


def test_background_purge_refuses_a_non_positive_interval():
    with pytest.raises(ValueError, match="interval"):
        asyncio.run(
            _enter(
                purge_in_background(
                    sa.create_mock_engine("sqlite://", print), AccountSession, interval=timedelta(0)
                )
            )
        )  # type: ignore[arg-type]


async def _enter(context: Any) -> None:
    async with context:
        pass


# PostgreSQL: one purger at a time, by advisory lock.


def postgres_only(database: TestDatabase) -> None:
    if database.backend != "postgresql":
        pytest.skip("advisory locks are PostgreSQL's; SQLite purges need no lock")


async def test_two_concurrent_purgers_only_one_purges(database):
    postgres_only(database)
    clock = MovableClock()
    await add_sessions(database, clock, 6)
    clock.advance(days=15)
    # Two engines: two processes' connection pools.
    first_engine = create_engine(database.url)
    second_engine = create_engine(database.url)
    inside_first = asyncio.Event()
    let_first_finish = asyncio.Event()

    async def hold(batch: PurgeBatch) -> None:
        inside_first.set()
        await let_first_finish.wait()

    try:
        first = asyncio.create_task(
            purge_expired_sessions(first_engine, AccountSession, batch_size=2, clock=clock, on_batch=hold)
        )
        await asyncio.wait_for(inside_first.wait(), WAIT_SECONDS)
        second = await purge_expired_sessions(second_engine, AccountSession, batch_size=2, clock=clock)
        let_first_finish.set()
        first_result = await asyncio.wait_for(first, WAIT_SECONDS)

        assert (second.skipped, second.purged_count) == (True, 0)
        assert (first_result.skipped, first_result.purged_count) == (False, 6)
        # The lock is released at the end of a run: the next one may purge.
        again = await purge_expired_sessions(second_engine, AccountSession, clock=clock)
        assert again.skipped is False
    finally:
        let_first_finish.set()
        await first_engine.dispose()
        await second_engine.dispose()


async def test_two_background_purgers_only_one_purges_each_round(database):
    postgres_only(database)
    clock = MovableClock()
    await add_sessions(database, clock, 4)
    clock.advance(days=15)
    other_process = create_engine(database.url)
    try:
        async with other_process.connect() as connection:
            # Another process is in the middle of a purge: it holds the lock.
            await connection.execute(
                sa.text("SELECT pg_advisory_lock(:key)"), {"key": purge_lock_key("account_session")}
            )
            async with purge_in_background(
                database.engine, AccountSession, interval=timedelta(milliseconds=30), clock=clock
            ) as purger:
                await wait_until(lambda: len(purger.completed_runs) >= 2)
                assert all(run.skipped for run in purger.completed_runs)
                assert await session_count(database) == 4
                await connection.execute(
                    sa.text("SELECT pg_advisory_unlock(:key)"), {"key": purge_lock_key("account_session")}
                )
                await wait_until(lambda: not purger.completed_runs[-1].skipped)
        assert await session_count(database) == 0
    finally:
        await other_process.dispose()
