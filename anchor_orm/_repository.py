"""The SQL repository: every session operation, inside the caller's transaction.

It flushes and never commits: the application decides when its transaction ends, so
a password change and ``revoke_all`` commit or roll back together.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult, ScalarResult
from sqlalchemy.ext.asyncio import AsyncSession as SAAsyncSession
from sqlalchemy.orm import contains_eager, joinedload
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from anchor_orm._errors import SessionConflict
from anchor_orm._events import RevokeReason, SessionCreated, SessionEvents, SessionRevoked, SessionRotated
from anchor_orm._expiry import Clock, ExpiryPolicy, is_live, utc_now
from anchor_orm._models import IP_ADDRESS_MAX_LENGTH, USER_AGENT_MAX_LENGTH
from anchor_orm._schema import SessionModelInfo, SessionT
from anchor_orm._tokens import TokenParts, TokenSigner, hash_secret, new_token, secret_matches, split_token

logger = logging.getLogger("anchor_orm")


@dataclass(frozen=True, slots=True)
class IssuedSession(Generic[SessionT]):
    """A new session and its signed token: the only time the secret exists.

    ``token`` is what the client carries, in the cookie or as ``Authorization: Bearer``.
    """

    session: SessionT
    token: str


@dataclass(frozen=True, slots=True)
class Validated(Generic[SessionT]):
    session: SessionT
    # True when this validation moved the expiry forward: the cookie is sent again.
    extended: bool
    # Set when an older key of the rotation list signed the token: the same token,
    # signed with the newest key, to send back in place of the old cookie.
    resigned_token: str | None


class RecentTouches:
    """This process's memory of the sessions it touched lately.

    Fifty parallel requests of one session, all finding a touch due, would each send
    an UPDATE that all but one then find nothing to change; the first to claim the
    touch here sends it and the rest skip it. Other processes still race in the
    database, where the conditional UPDATE keeps them correct.
    """

    def __init__(self, max_entries: int = 10_000) -> None:
        self._touched_at: dict[str, datetime] = {}
        self._max_entries = max_entries

    def claim(self, session_id: str, now: datetime, due_before: datetime) -> bool:
        last_touched_at = self._touched_at.get(session_id)
        if last_touched_at is not None and last_touched_at > due_before:
            return False
        if len(self._touched_at) >= self._max_entries:
            # Forgetting only costs a redundant UPDATE, never correctness.
            self._touched_at.clear()
        self._touched_at[session_id] = now
        return True

    def forget(self, session_id: str) -> None:
        self._touched_at.pop(session_id, None)


class SessionRepository(Generic[SessionT]):
    """Session operations bound to one AsyncSession (the application's)."""

    def __init__(
        self,
        db: AsyncSession | SAAsyncSession,
        model_info: SessionModelInfo[SessionT],
        *,
        signer: TokenSigner | None,
        policy: ExpiryPolicy | None = None,
        clock: Clock = utc_now,
        max_sessions_per_user: int | None = None,
        recent_touches: RecentTouches | None = None,
        events: SessionEvents | None = None,
    ) -> None:
        if max_sessions_per_user is not None and max_sessions_per_user < 1:
            raise ValueError("max_sessions_per_user must be at least 1, or None for no limit")
        self.max_sessions_per_user = max_sessions_per_user
        self._recent_touches = recent_touches or RecentTouches()
        self.db = db
        self.model_info = model_info
        self._info = model_info
        self._model = model_info.model
        self._signer = signer
        self.policy = policy or ExpiryPolicy()
        self._clock = clock
        self._events = events

    async def _entities(self, statement: Any, parameters: dict[str, Any] | None = None) -> ScalarResult[Any]:
        # SQLModel's AsyncSession warns on execute(); SQLAlchemy's has no exec(). Both work.
        if isinstance(self.db, AsyncSession):
            found: ScalarResult[Any] = await self.db.exec(statement, params=parameters)
            return found
        return (await self.db.execute(statement, parameters)).scalars()

    async def _write(self, statement: Any) -> CursorResult[Any]:
        if isinstance(self.db, AsyncSession):
            result: Any = await self.db.exec(statement)
        else:
            result = await self.db.execute(statement)
        return result  # type: ignore[no-any-return]

    def _require_signer(self) -> TokenSigner:
        if self._signer is None:
            raise RuntimeError("this repository has no signing keys: build it with anchor.repository(db)")
        return self._signer

    def now(self) -> datetime:
        return self._clock()

    async def create(
        self,
        user: Any,
        *,
        remember: bool = True,
        ip_address: str | None = None,
        user_agent: str | None = None,
        data: dict[str, Any] | None = None,
        new_device: bool | None = None,
    ) -> IssuedSession[SessionT]:
        """Adds a session for ``user`` and flushes; the token is returned once.

        ``new_device`` is the flag of the SessionCreated event; None works it out from
        the user's other stored sessions (only when a handler listens).
        """
        user_key = self._info.user_key(user)
        now = self.now()
        parts = new_token()
        expires_at, absolute_expires_at = self.policy.first_expiry(now, remember)
        values: dict[str, Any] = {
            "id": parts.session_id,
            "secret_hash": hash_secret(parts.secret),
            "created_at": now,
            "last_seen_at": now,
            "expires_at": expires_at,
            "absolute_expires_at": absolute_expires_at,
            "authenticated_at": now,
            "remember": remember,
            "ip_address": _clip(ip_address, 45),
            "user_agent": _clip(user_agent, 512),
            "data": data,
            self._info.user_id_column.key: user_key,
        }
        # table=True models skip validation in __init__; model_validate checks the values.
        session = self._model.model_validate(values)
        set_committed_value(session, self._info.user_relationship.key, user)
        self.db.add(session)
        await self.db.flush()
        logger.info("session created: %s", session.id, extra={"session_id": session.id})
        if self._events is not None and self._events.wants(SessionCreated):
            if new_device is None:
                new_device = await self.is_new_device(
                    user, ip_address=values["ip_address"], user_agent=values["user_agent"], exclude=session.id
                )
            created = SessionCreated(
                session.id,
                user_key,
                now,
                ip_address=session.ip_address,
                user_agent=session.user_agent,
                new_device=new_device,
            )
            await self._events.emit(created, self.db)
        if self.max_sessions_per_user is not None:
            await self._evict_oldest(user_key, keep_newest=self.max_sessions_per_user)
        return IssuedSession(session, self._require_signer().sign(_join(parts)))

    async def validate(self, token: str) -> SessionT | None:
        """The live session of ``token`` (with its user loaded), or None."""
        found = await self.validate_and_touch(token)
        return found.session if found else None

    async def validate_and_touch(self, token: str) -> Validated[SessionT] | None:
        unsigned = self._require_signer().unsign(token)
        if unsigned is None:
            # Checked before any query: forged or junk values cost no database work.
            _log_refusal("bad signature")
            return None
        raw_token, signed_with_newest_key = unsigned
        resigned_token = None if signed_with_newest_key else self._require_signer().sign(raw_token)
        parts = split_token(raw_token)
        if parts is None:
            _log_refusal("malformed token")
            return None
        statement = _validation_statement(self._info)
        session = (await self._entities(statement, {SESSION_ID_PARAMETER: parts.session_id})).first()
        if session is None:
            _log_refusal("unknown id", parts.session_id)
            return None
        if not secret_matches(parts.secret, session.secret_hash):
            _log_refusal("wrong secret", session.id)
            return None
        now = self.now()
        if not is_live(session.expires_at, session.absolute_expires_at, now):
            # Expired sessions are refused, never extended first and then accepted.
            _log_refusal("expired", session.id)
            return None
        extended = False
        if self.policy.touch_due(session.last_seen_at, now):
            extended = await self._touch(session, now)
        return Validated(session, extended, resigned_token)

    async def _evict_oldest(self, user_key: Any, *, keep_newest: int) -> int:
        model = self._model
        user_id_column = self._info.user_id_column
        beyond_limit = (
            sa.select(model.id)  # type: ignore[call-overload]
            .where(user_id_column == user_key)
            .order_by(col(model.created_at).desc(), col(model.id).desc())
            .offset(keep_newest)
            .scalar_subquery()
        )
        statement = sa.delete(model).where(user_id_column == user_key, col(model.id).in_(beyond_limit))
        return await self._delete_and_report(statement, RevokeReason.EVICTION)

    async def _touch(self, session: SessionT, now: datetime) -> bool:
        if not self._recent_touches.claim(session.id, now, self.policy.touch_threshold(now)):
            return False
        model = self._model
        new_expires_at = self.policy.extended_expiry(now, session.remember, session.absolute_expires_at)
        # Conditional: concurrent requests race here and one wins; a row revoked or
        # expired meanwhile matches nothing and is never revived.
        statement = (
            sa.update(model)
            .where(
                col(model.id) == session.id,
                col(model.last_seen_at) <= self.policy.touch_threshold(now),
                col(model.expires_at) > now,
            )
            .values(last_seen_at=now, expires_at=new_expires_at)
            .execution_options(synchronize_session=False)
        )
        result = await self._write(statement)
        if result.rowcount != 1:
            return False
        set_committed_value(session, "last_seen_at", now)
        set_committed_value(session, "expires_at", new_expires_at)
        return True

    async def list(self, user: Any) -> Sequence[SessionT]:
        """The user's live sessions, newest first."""
        model = self._model
        now = self.now()
        statement = (
            select(model)
            .options(joinedload(self._info.user_relationship))
            .where(
                self._info.user_id_column == self._info.user_key(user),
                col(model.expires_at) > now,
                col(model.absolute_expires_at) > now,
            )
            .order_by(col(model.created_at).desc(), col(model.id))
        )
        return (await self._entities(statement)).all()

    async def revoke(
        self, session_or_id: SessionT | str, *, owner: Any, reason: RevokeReason = RevokeReason.REVOKE
    ) -> bool:
        """Deletes one session of ``owner``; False when it is not theirs or is gone.

        Pass ``owner=None`` only from trusted code (an admin tool): it skips the check.
        """
        session_id = session_or_id if isinstance(session_or_id, str) else session_or_id.id
        statement = sa.delete(self._model).where(col(self._model.id) == session_id)
        if owner is not None:
            statement = statement.where(self._info.user_id_column == self._info.user_key(owner))
        return await self._delete_and_report(statement, reason) == 1

    async def revoke_token(self, token: str, *, reason: RevokeReason = RevokeReason.LOGOUT) -> bool:
        """Deletes the session of ``token`` if it is authentic (a logout)."""
        unsigned = self._require_signer().unsign(token)
        parts = split_token(unsigned[0]) if unsigned else None
        if parts is None:
            return False
        model = self._model
        statement = sa.delete(model).where(
            col(model.id) == parts.session_id, col(model.secret_hash) == hash_secret(parts.secret)
        )
        return await self._delete_and_report(statement, reason) == 1

    async def revoke_all(
        self,
        user: Any,
        *,
        keep: SessionT | str | None = None,
        reason: RevokeReason = RevokeReason.REVOKE_ALL,
    ) -> int:
        """Deletes every session of ``user`` (but ``keep``) in one statement; the count."""
        statement = sa.delete(self._model).where(self._info.user_id_column == self._info.user_key(user))
        if keep is not None:
            keep_id = keep if isinstance(keep, str) else keep.id
            statement = statement.where(col(self._model.id) != keep_id)
        return await self._delete_and_report(statement, reason)

    async def is_new_device(
        self, user: Any, *, ip_address: str | None, user_agent: str | None, exclude: str | None = None
    ) -> bool:
        """True when none of ``user``'s stored sessions has this user agent and IP address.

        Only rows still in the table count: a device whose sessions all ended by logout
        or purge is new again.
        """
        model = self._model
        statement = (
            sa.select(model.id)  # type: ignore[call-overload]
            .where(
                self._info.user_id_column == self._info.user_key(user),
                col(model.ip_address).is_not_distinct_from(_clip(ip_address, IP_ADDRESS_MAX_LENGTH)),
                col(model.user_agent).is_not_distinct_from(_clip(user_agent, USER_AGENT_MAX_LENGTH)),
            )
            .limit(1)
        )
        if exclude is not None:
            statement = statement.where(col(model.id) != exclude)
        return (await self._entities(statement)).first() is None

    async def _delete_and_report(self, statement: Any, reason: RevokeReason) -> int:
        """Runs a DELETE of sessions; logs and emits one revocation per deleted row."""
        model = self._model
        deleted: Sequence[Any]
        if self.db.get_bind().dialect.delete_returning:
            returning = statement.returning(col(model.id), self._info.user_id_column)
            deleted = (await self._write(returning.execution_options(synchronize_session="fetch"))).all()
        else:
            # SQLite before 3.35 has no DELETE ... RETURNING: read the ids first, then
            # delete exactly those, in the same transaction.
            found = sa.select(col(model.id), self._info.user_id_column).where(statement.whereclause)
            deleted = (await self._write(found)).all()
            if deleted:
                by_ids = sa.delete(model).where(col(model.id).in_([row[0] for row in deleted]))
                await self._write(by_ids.execution_options(synchronize_session="fetch"))
        now = self.now()
        if reason is RevokeReason.EXPIRY_PURGE and deleted:
            # One line per batch: a purge can end thousands of sessions.
            logger.info("expired sessions purged: %d", len(deleted))
        row: Any
        for row in deleted:
            session_id, user_id = row
            if reason is not RevokeReason.EXPIRY_PURGE:
                logger.info(
                    "session revoked (%s): %s",
                    reason.value,
                    session_id,
                    extra={"session_id": session_id, "reason": reason.value},
                )
            if self._events is not None:
                await self._events.emit(SessionRevoked(session_id, user_id, now, reason=reason), self.db)
        return len(deleted)

    async def rotate(self, session: SessionT, *, reauthenticated: bool = False) -> str:
        """A new secret for ``session`` and its new signed token; the old one stops working.

        The id, created_at and absolute lifetime stay: rotation on a privilege change
        must not lengthen the session's life. ``reauthenticated=True`` records a fresh
        login (the user just proved their password again).
        """
        parts = TokenParts(session.id, new_token().secret)
        new_hash = hash_secret(parts.secret)
        changes: dict[str, Any] = {"secret_hash": new_hash}
        if reauthenticated:
            changes["authenticated_at"] = self.now()
        model = self._model
        # Conditional on the secret this request was authenticated with: of two
        # concurrent rotations only one may hand out a token, or the other's would be
        # dead on arrival.
        statement = (
            sa.update(model)
            .where(col(model.id) == session.id, col(model.secret_hash) == session.secret_hash)
            .values(**changes)
            .execution_options(synchronize_session=False)
        )
        if (await self._write(statement)).rowcount != 1:
            raise SessionConflict(f"session {session.id} was rotated or revoked by another request")
        for name, value in changes.items():
            set_committed_value(session, name, value)
        logger.info("session rotated: %s", session.id, extra={"session_id": session.id})
        if self._events is not None:
            user_key = getattr(session, self._info.user_id_column.key)
            rotated = SessionRotated(session.id, user_key, self.now(), reauthenticated=reauthenticated)
            await self._events.emit(rotated, self.db)
        return self._require_signer().sign(_join(parts))

    async def purge_expired(self, *, batch_size: int = 1000, max_batches: int | None = None) -> int:
        """Deletes expired sessions, ``batch_size`` rows a statement; the count.

        ``expires_at`` never exceeds ``absolute_expires_at``, so its index finds every
        expired row. Run it with ``max_batches=1`` per transaction to keep locks short.
        """
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        model = self._model
        now = self.now()
        purged_count = 0
        batches_done = 0
        while max_batches is None or batches_done < max_batches:
            expired_ids = (
                sa.select(model.id)  # type: ignore[call-overload]
                .where(col(model.expires_at) <= now)
                .limit(batch_size)
                .scalar_subquery()
            )
            statement = sa.delete(model).where(col(model.id).in_(expired_ids))
            if self._events is not None and self._events.wants(SessionRevoked):
                deleted_count = await self._delete_and_report(statement, RevokeReason.EXPIRY_PURGE)
            else:
                # Nobody listens: no ids to send back, and one log line per batch, not per row.
                result = await self._write(statement.execution_options(synchronize_session=False))
                deleted_count = int(result.rowcount)
                if deleted_count:
                    logger.info("expired sessions purged: %d", deleted_count)
            purged_count += deleted_count
            batches_done += 1
            if deleted_count < batch_size:
                break
        return purged_count


SESSION_ID_PARAMETER = "anchor_session_id"
# One per session model, built once: building a select and its cache key on every
# request cost about a tenth of a validation's time (see benchmarks/).
_validation_statements: dict[type[Any], Any] = {}


def _validation_statement(info: SessionModelInfo[Any]) -> Any:
    """The one SELECT of a validation: the session by id, joined with its user, so
    ``session.user`` is loaded without lazy I/O."""
    statement = _validation_statements.get(info.model)
    if statement is None:
        model = info.model
        statement = (
            select(model)
            .join(info.user_relationship)
            .options(contains_eager(info.user_relationship))
            .where(col(model.id) == sa.bindparam(SESSION_ID_PARAMETER))
            # Fresh values even when the app's session already holds this row.
            .execution_options(populate_existing=True)
        )
        _validation_statements[info.model] = statement
    return statement


def _log_refusal(reason: str, session_id: str | None = None) -> None:
    """One line per refused token: the reason and, once the signature held, the public id.

    Reasons: bad signature, malformed token, unknown id (never issued, or revoked or
    purged: the row is gone), wrong secret (a token rotated away, or forged), expired.
    Never the token or its secret.
    """
    if session_id is None:
        logger.info("session refused (%s)", reason, extra={"reason": reason})
    else:
        logger.info(
            "session refused (%s): %s", reason, session_id, extra={"reason": reason, "session_id": session_id}
        )


def _join(parts: TokenParts) -> str:
    return f"{parts.session_id}.{parts.secret}"


def _clip(text: str | None, max_length: int) -> str | None:
    return None if text is None else text[:max_length]
