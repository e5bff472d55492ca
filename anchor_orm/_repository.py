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

from anchor_orm._expiry import Clock, ExpiryPolicy, is_live, utc_now
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
    ) -> None:
        self.db = db
        self.model_info = model_info
        self._info = model_info
        self._model = model_info.model
        self._signer = signer
        self.policy = policy or ExpiryPolicy()
        self._clock = clock

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
    ) -> IssuedSession[SessionT]:
        """Adds a session for ``user`` and flushes; the token is returned once."""
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
        logger.info("session created", extra={"session_id": session.id})
        return IssuedSession(session, self._require_signer().sign(_join(parts)))

    async def validate(self, token: str) -> SessionT | None:
        """The live session of ``token`` (with its user loaded), or None."""
        found = await self.validate_and_touch(token)
        return found.session if found else None

    async def validate_and_touch(self, token: str) -> Validated[SessionT] | None:
        unsigned = self._require_signer().unsign(token)
        if unsigned is None:
            # Checked before any query: forged or junk values cost no database work.
            logger.info("session refused: bad signature")
            return None
        raw_token, signed_with_newest_key = unsigned
        resigned_token = None if signed_with_newest_key else self._require_signer().sign(raw_token)
        parts = split_token(raw_token)
        if parts is None:
            logger.info("session refused: malformed token")
            return None
        statement = _validation_statement(self._info)
        session = (await self._entities(statement, {SESSION_ID_PARAMETER: parts.session_id})).first()
        if session is None:
            logger.info("session refused: unknown or revoked id", extra={"session_id": parts.session_id})
            return None
        if not secret_matches(parts.secret, session.secret_hash):
            logger.info("session refused: wrong secret", extra={"session_id": session.id})
            return None
        now = self.now()
        if not is_live(session.expires_at, session.absolute_expires_at, now):
            # Expired sessions are refused, never extended first and then accepted.
            logger.info("session refused: expired", extra={"session_id": session.id})
            return None
        extended = False
        if self.policy.touch_due(session.last_seen_at, now):
            extended = await self._touch(session, now)
        return Validated(session, extended, resigned_token)

    async def _touch(self, session: SessionT, now: datetime) -> bool:
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

    async def get(self, session_id: str) -> SessionT | None:
        """A session by its public id, live or not, with its user."""
        statement = (
            select(self._model)
            .options(joinedload(self._info.user_relationship))
            .where(col(self._model.id) == session_id)
        )
        return (await self._entities(statement)).first()

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

    async def revoke(self, session_or_id: SessionT | str, *, owner: Any) -> bool:
        """Deletes one session of ``owner``; False when it is not theirs or is gone.

        Pass ``owner=None`` only from trusted code (an admin tool): it skips the check.
        """
        session_id = session_or_id if isinstance(session_or_id, str) else session_or_id.id
        statement = sa.delete(self._model).where(col(self._model.id) == session_id)
        if owner is not None:
            statement = statement.where(self._info.user_id_column == self._info.user_key(owner))
        result = await self._write(statement.execution_options(synchronize_session="fetch"))
        revoked = result.rowcount == 1
        if revoked:
            logger.info("session revoked", extra={"session_id": session_id})
        return revoked

    async def revoke_token(self, token: str) -> bool:
        """Deletes the session of ``token`` if it is authentic (a logout)."""
        unsigned = self._require_signer().unsign(token)
        parts = split_token(unsigned[0]) if unsigned else None
        if parts is None:
            return False
        model = self._model
        statement = sa.delete(model).where(
            col(model.id) == parts.session_id, col(model.secret_hash) == hash_secret(parts.secret)
        )
        result = await self._write(statement.execution_options(synchronize_session="fetch"))
        revoked = result.rowcount == 1
        if revoked:
            logger.info("session revoked", extra={"session_id": parts.session_id})
        return revoked

    async def revoke_all(self, user: Any, *, keep: SessionT | str | None = None) -> int:
        """Deletes every session of ``user`` (but ``keep``) in one statement; the count."""
        statement = sa.delete(self._model).where(self._info.user_id_column == self._info.user_key(user))
        if keep is not None:
            keep_id = keep if isinstance(keep, str) else keep.id
            statement = statement.where(col(self._model.id) != keep_id)
        result = await self._write(statement.execution_options(synchronize_session="fetch"))
        logger.info("sessions revoked: %d", result.rowcount)
        return int(result.rowcount)

    async def rotate(self, session: SessionT, *, reauthenticated: bool = False) -> str:
        """A new secret for ``session`` and its new signed token; the old one stops working.

        The id, created_at and absolute lifetime stay: rotation on a privilege change
        must not lengthen the session's life. ``reauthenticated=True`` records a fresh
        login (the user just proved their password again).
        """
        parts = TokenParts(session.id, new_token().secret)
        session.secret_hash = hash_secret(parts.secret)
        if reauthenticated:
            session.authenticated_at = self.now()
        await self.db.flush()
        logger.info("session rotated", extra={"session_id": session.id})
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
            result = await self._write(statement.execution_options(synchronize_session=False))
            purged_count += int(result.rowcount)
            batches_done += 1
            if result.rowcount < batch_size:
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


def _join(parts: TokenParts) -> str:
    return f"{parts.session_id}.{parts.secret}"


def _clip(text: str | None, max_length: int) -> str | None:
    return None if text is None else text[:max_length]
