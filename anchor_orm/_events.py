"""Session events: created, rotated, revoked; and the handlers an app subscribes.

A handler runs either inside the application's transaction (it may write rows that
commit or roll back with the session change, such as an audit log) or after the
commit (it may talk to the outside world, such as a "new sign-in" email). After-commit
handlers are queued on the database session and dropped on rollback, so they never
see a change that did not happen.
"""

import asyncio
import enum
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeVar, overload

import sqlalchemy as sa

logger = logging.getLogger("anchor_orm")

When = Literal["in_transaction", "after_commit"]


class RevokeReason(enum.StrEnum):
    """Why a session ended."""

    LOGOUT = "logout"
    # One session ended by id, from a "your sessions" page or an admin tool.
    REVOKE = "revoke"
    REVOKE_ALL = "revoke_all"
    PASSWORD_CHANGE = "password_change"  # noqa: S105 - a reason, not a password
    # Over the per-user session limit: the oldest sessions make room.
    EVICTION = "eviction"
    EXPIRY_PURGE = "expiry_purge"


@dataclass(frozen=True, slots=True)
class SessionEvent:
    """What every event carries: the public session id (never a token) and its owner's key."""

    session_id: str
    user_id: Any
    at: datetime


@dataclass(frozen=True, slots=True)
class SessionCreated(SessionEvent):
    ip_address: str | None = None
    user_agent: str | None = None
    # True when none of the user's stored sessions has this user agent and IP address.
    new_device: bool = False


@dataclass(frozen=True, slots=True)
class SessionRotated(SessionEvent):
    # True when the rotation records a fresh login (password re-entered, password changed).
    reauthenticated: bool = False


@dataclass(frozen=True, slots=True)
class SessionRevoked(SessionEvent):
    reason: RevokeReason = RevokeReason.REVOKE


EventT = TypeVar("EventT", bound=SessionEvent)
# In the transaction: (event, db) so the handler can write with the same AsyncSession.
InTransactionHandler = Callable[[EventT, Any], Awaitable[None] | None]
AfterCommitHandler = Callable[[EventT], Awaitable[None] | None]

_QUEUE_KEY = "anchor_orm.after_commit_events"


@dataclass(frozen=True)
class _Subscription:
    event_type: type[SessionEvent]
    handler: Callable[..., Any]
    when: When


@dataclass
class SessionEvents:
    """The subscriptions of one Anchor (``anchor.events``)."""

    _subscriptions: list[_Subscription] = field(default_factory=list)
    # Strong references: the event loop keeps only weak ones to running tasks.
    _running: set[asyncio.Task[None]] = field(default_factory=set)

    @overload
    def subscribe(
        self,
        event_type: type[EventT],
        handler: InTransactionHandler[EventT],
        *,
        when: Literal["in_transaction"],
    ) -> None: ...

    @overload
    def subscribe(
        self,
        event_type: type[EventT],
        handler: AfterCommitHandler[EventT],
        *,
        when: Literal["after_commit"] = "after_commit",
    ) -> None: ...

    def subscribe(
        self, event_type: type[Any], handler: Callable[..., Any], *, when: When = "after_commit"
    ) -> None:
        """Calls ``handler`` for every event of ``event_type`` (or a subclass of it).

        - ``when="in_transaction"``: ``handler(event, db)`` runs at once, on the same
          AsyncSession, before the application commits; an exception it raises fails
          the operation, and its writes roll back with the rest.
        - ``when="after_commit"`` (the default): ``handler(event)`` runs once the
          transaction has committed, and never if it rolls back. Its exceptions are
          logged, not raised: the change is already committed.

        Handlers may be plain functions or coroutine functions.
        """
        if when not in ("in_transaction", "after_commit"):
            raise ValueError(f'when must be "in_transaction" or "after_commit", got {when!r}')
        if not (isinstance(event_type, type) and issubclass(event_type, SessionEvent)):
            raise TypeError(f"event_type must be SessionEvent or a subclass of it, got {event_type!r}")
        self._subscriptions.append(_Subscription(event_type, handler, when))

    def unsubscribe(self, handler: Callable[..., Any]) -> bool:
        """Removes every subscription of ``handler``; False when it had none."""
        # ==, not is: each access to a bound method (list.append) makes a new object.
        kept = [sub for sub in self._subscriptions if sub.handler != handler]
        removed = len(kept) != len(self._subscriptions)
        self._subscriptions[:] = kept
        return removed

    def on(self, event_type: type[EventT], *, when: When = "after_commit") -> Callable[[Any], Any]:
        """The decorator form of ``subscribe``."""

        def register(handler: Callable[..., Any]) -> Callable[..., Any]:
            self.subscribe(event_type, handler, when=when)
            return handler

        return register

    def wants(self, event_type: type[SessionEvent]) -> bool:
        """Whether any handler listens to ``event_type``: skips work nobody needs."""
        return any(issubclass(event_type, sub.event_type) for sub in self._subscriptions)

    async def emit(self, event: SessionEvent, db: Any) -> None:
        """Runs the in-transaction handlers now and queues the after-commit ones on ``db``."""
        for subscription in self._subscriptions:
            if not isinstance(event, subscription.event_type):
                continue
            if subscription.when == "in_transaction":
                outcome = subscription.handler(event, db)
                if inspect.isawaitable(outcome):
                    await outcome
            else:
                _AfterCommitQueue.of(db).add(self, subscription.handler, event)

    async def drain(self) -> None:
        """Waits for the after-commit handlers still running (tests, shutdown)."""
        while self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    def _run_after_commit(self, handler: Callable[..., Any], event: SessionEvent) -> None:
        try:
            outcome = handler(event)
        except Exception:
            logger.exception("after-commit handler %s failed", _name(handler))
            return
        if inspect.isawaitable(outcome):
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                # A commit outside asyncio (a sync Session): nowhere to run a coroutine.
                logger.error("after-commit handler %s is async but no event loop is running", _name(handler))
                if inspect.iscoroutine(outcome):
                    outcome.close()
                return
            task = loop.create_task(_logged(handler, outcome))
            self._running.add(task)
            task.add_done_callback(self._running.discard)


async def _logged(handler: Callable[..., Any], outcome: Awaitable[Any]) -> None:
    try:
        await outcome
    except Exception:
        logger.exception("after-commit handler %s failed", _name(handler))


def _name(handler: Callable[..., Any]) -> str:
    return getattr(handler, "__qualname__", repr(handler))


class _AfterCommitQueue:
    """After-commit handlers waiting on one database session's transaction.

    Each entry remembers the innermost transaction (a SAVEPOINT, or None for the
    outermost) it was emitted in: rolling back a SAVEPOINT drops only what happened
    inside it, and only the outermost commit runs handlers (SQLAlchemy also sends
    ``after_commit`` when a SAVEPOINT is released, which proves nothing yet).
    """

    def __init__(self, sync_session: Any) -> None:
        self._session = sync_session
        self._entries: list[tuple[Any, SessionEvents, Callable[..., Any], SessionEvent]] = []
        sa.event.listen(sync_session, "after_commit", self._after_commit)
        sa.event.listen(sync_session, "after_soft_rollback", self._after_soft_rollback)
        sa.event.listen(sync_session, "after_transaction_end", self._after_transaction_end)

    @classmethod
    def of(cls, db: Any) -> "_AfterCommitQueue":
        # An AsyncSession delegates to a sync Session, where SQLAlchemy's events fire.
        sync_session = getattr(db, "sync_session", db)
        queue: _AfterCommitQueue | None = sync_session.info.get(_QUEUE_KEY)
        if queue is None:
            queue = sync_session.info[_QUEUE_KEY] = cls(sync_session)
        return queue

    def add(self, events: SessionEvents, handler: Callable[..., Any], event: SessionEvent) -> None:
        savepoint = self._session.get_nested_transaction()
        self._entries.append((savepoint, events, handler, event))

    def _after_commit(self, session: Any) -> None:
        if session.in_nested_transaction():
            return  # a SAVEPOINT released: the outer transaction may still roll back
        ready, self._entries = self._entries, []
        for _savepoint, events, handler, event in ready:
            events._run_after_commit(handler, event)

    def _after_soft_rollback(self, _session: Any, rolled_back: Any) -> None:
        if not rolled_back.nested:
            # The outermost transaction (or a failed flush, which dooms it) rolled back.
            self._entries.clear()
            return
        self._entries = [entry for entry in self._entries if not _inside(entry[0], rolled_back)]

    def _after_transaction_end(self, _session: Any, transaction: Any) -> None:
        if transaction.parent is None:
            # Closed without a commit: nothing queued may survive into a later transaction.
            self._entries.clear()


def _inside(savepoint: Any, rolled_back: Any) -> bool:
    transaction = savepoint
    while transaction is not None:
        if transaction is rolled_back:
            return True
        transaction = transaction.parent
    return False
