"""Deleting expired sessions: in short batches, one transaction each, one purger at a time.

Each batch is its own short transaction on its own connection, so a purge of a
million rows never holds a lock a request waits for. On PostgreSQL a session-level
advisory lock (pg_try_advisory_lock) lets only one process purge a table at a time:
the others skip their turn instead of deleting the same rows in parallel. The lock
belongs to a connection, so PostgreSQL releases it if the purging process dies.
"""

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from anchor_orm._events import SessionEvents
from anchor_orm._expiry import Clock, utc_now
from anchor_orm._repository import SessionRepository
from anchor_orm._schema import inspect_session_model

logger = logging.getLogger("anchor_orm")

DEFAULT_BATCH_SIZE = 1000
# How long stop() lets a running batch finish before cancelling it.
STOP_GRACE_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class PurgeBatch:
    """Progress after one committed batch."""

    number: int
    purged_count: int
    total_purged_count: int


@dataclass(frozen=True, slots=True)
class PurgeResult:
    purged_count: int
    batch_count: int
    # True when another process held the purge lock, so this one did nothing.
    skipped: bool = False


OnBatch = Callable[[PurgeBatch], Awaitable[None] | None]


def purge_lock_key(table_name: str) -> int:
    """The advisory lock key of a session table: stable across processes and versions."""
    digest = hashlib.sha256(f"anchor_orm.purge:{table_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@asynccontextmanager
async def purge_lock(engine: AsyncEngine, table_name: str) -> AsyncIterator[bool]:
    """Yields True when this process may purge ``table_name`` now, False when another is.

    On SQLite it always yields True: one file, and a purge racing another only finds
    fewer rows to delete.
    """
    if engine.dialect.name != "postgresql":
        yield True
        return
    key = purge_lock_key(table_name)
    async with engine.connect() as connection:
        acquired = bool(
            (await connection.execute(sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": key})).scalar()
        )
        # The lock is held by the connection, not by a transaction: end the transaction
        # so the connection waits idle instead of "idle in transaction".
        await connection.commit()
        try:
            yield acquired
        finally:
            if acquired:
                await _unlock(connection, key)


async def _unlock(connection: AsyncConnection, key: int) -> None:
    try:
        await connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
        await connection.commit()
    except BaseException:
        # A pooled connection still holding the lock would block every later purge:
        # close it instead; PostgreSQL then releases the lock.
        await connection.invalidate()
        raise


async def purge_expired_sessions(
    engine: AsyncEngine,
    session_model: type[Any],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_batches: int | None = None,
    clock: Clock = utc_now,
    events: SessionEvents | None = None,
    on_batch: OnBatch | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> PurgeResult:
    """Deletes the expired sessions of ``session_model``, committing every batch.

    ``on_batch`` hears about each committed batch (the CLI prints a progress line);
    ``should_stop`` is asked between batches (a shutting-down app stops early).
    ``events`` gets one SessionRevoked(reason=EXPIRY_PURGE) per session.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    model_info = inspect_session_model(session_model)
    table_name: str = model_info.model.__table__.name
    async with purge_lock(engine, table_name) as acquired:
        if not acquired:
            logger.info("purge skipped: another process holds the purge lock")
            return PurgeResult(0, 0, skipped=True)
        total_purged_count = 0
        batch_number = 0
        while max_batches is None or batch_number < max_batches:
            if should_stop is not None and should_stop():
                break
            async with AsyncSession(engine, expire_on_commit=False) as db, db.begin():
                repository = SessionRepository(db, model_info, signer=None, clock=clock, events=events)
                purged_count = await repository.purge_expired(batch_size=batch_size, max_batches=1)
            batch_number += 1
            total_purged_count += purged_count
            if on_batch is not None:
                outcome = on_batch(PurgeBatch(batch_number, purged_count, total_purged_count))
                if outcome is not None:
                    await outcome
            if purged_count < batch_size:
                break
            # Between batches: let the requests this process serves run first.
            await asyncio.sleep(0)
        return PurgeResult(total_purged_count, batch_number)


class BackgroundPurge:
    """A task that purges expired sessions every ``interval``; see ``purge_in_background``."""

    def __init__(
        self,
        engine: AsyncEngine,
        session_model: type[Any],
        *,
        interval: timedelta,
        batch_size: int = DEFAULT_BATCH_SIZE,
        clock: Clock = utc_now,
        events: SessionEvents | None = None,
        on_batch: OnBatch | None = None,
    ) -> None:
        if interval <= timedelta(0):
            raise ValueError("interval must be positive")
        inspect_session_model(session_model)  # fail at startup, not an hour later
        self._engine = engine
        self._session_model = session_model
        self.interval = interval
        self._batch_size = batch_size
        self._clock = clock
        self._events = events
        self._on_batch = on_batch
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # What tests and health checks read.
        self.completed_runs: list[PurgeResult] = []
        self.failed_run_count = 0

    def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("this background purge is already started")
        self._task = asyncio.get_running_loop().create_task(self._run_forever(), name="anchor_orm purge")

    async def stop(self) -> None:
        """Lets the current batch commit, then ends; cancels it after STOP_GRACE_SECONDS."""
        self._stopping.set()
        task = self._task
        if task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), STOP_GRACE_SECONDS)
        except TimeoutError:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run_forever(self) -> None:
        while not self._stopping.is_set():
            try:
                result = await purge_expired_sessions(
                    self._engine,
                    self._session_model,
                    batch_size=self._batch_size,
                    clock=self._clock,
                    events=self._events,
                    on_batch=self._on_batch,
                    should_stop=self._stopping.is_set,
                )
                self.completed_runs.append(result)
            except Exception:
                # A database outage must not end the purger: the next interval retries.
                self.failed_run_count += 1
                logger.exception("background purge failed; retrying in %s", self.interval)
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval.total_seconds())


@asynccontextmanager
async def purge_in_background(
    engine: AsyncEngine,
    session_model: type[Any],
    *,
    interval: timedelta = timedelta(hours=1),
    batch_size: int = DEFAULT_BATCH_SIZE,
    clock: Clock = utc_now,
    events: SessionEvents | None = None,
    on_batch: OnBatch | None = None,
) -> AsyncIterator[BackgroundPurge]:
    """Purges expired sessions now and every ``interval`` while the block runs.

    Start it from the app's lifespan; leaving the block stops it cleanly::

        @asynccontextmanager
        async def lifespan(app):
            async with purge_in_background(engine, UserSession, interval=timedelta(hours=1)):
                yield
    """
    purger = BackgroundPurge(
        engine,
        session_model,
        interval=interval,
        batch_size=batch_size,
        clock=clock,
        events=events,
        on_batch=on_batch,
    )
    purger.start()
    try:
        yield purger
    finally:
        await purger.stop()
