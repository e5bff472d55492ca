"""The configuration object and the FastAPI dependencies built from it."""

# No `from __future__ import annotations` here: FastAPI reads the annotations of the
# dependency closures below, and they must be the real objects, not strings.
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, contextmanager
from datetime import datetime, timedelta
from typing import Annotated, Any, Generic, get_args, get_origin

import sqlalchemy as sa
from fastapi import Depends, FastAPI, HTTPException, Request, Security
from fastapi.params import Depends as DependsMarker
from fastapi.security import APIKeyCookie, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession as SAAsyncSession
from starlette.requests import HTTPConnection

from anchor_orm._csrf import CSRFGuard
from anchor_orm._errors import ConfigurationError, SessionConflict
from anchor_orm._events import RevokeReason, SessionCreated, SessionEvents
from anchor_orm._expiry import Clock, ExpiryPolicy, utc_now
from anchor_orm._models import AnchorSessionBase
from anchor_orm._purge import DEFAULT_BATCH_SIZE, BackgroundPurge, purge_in_background
from anchor_orm._repository import IssuedSession, RecentTouches, SessionRepository
from anchor_orm._schema import SessionT, inspect_session_model
from anchor_orm._tokens import TokenSigner
from anchor_orm._transport import (
    PENDING_KEY,
    AnchorMiddleware,
    CookieSettings,
    PendingCookie,
    read_credential,
)

# Raised by drivers and pools when the database cannot answer: a 503, not a 500.
DATABASE_UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    sa.exc.OperationalError,
    sa.exc.InterfaceError,
    sa.exc.TimeoutError,
    OSError,
    TimeoutError,
)
STORE_UNAVAILABLE_DETAIL = "The session store is unavailable; please try again shortly."


class RequestSessions(SessionRepository[SessionT]):
    """The repository bound to one request: it also sets and clears the cookie."""

    def __init__(self, anchor: "Anchor[SessionT]", db: Any, request: HTTPConnection) -> None:
        super().__init__(db, anchor.model_info, **anchor.repository_settings())
        self._anchor = anchor
        self._request = request
        self._pending = _pending_cookie(request)

    @property
    def current(self) -> SessionT | None:
        """The session this request was authenticated with, if a dependency checked one."""
        current: SessionT | None = self._pending.current_session
        return current

    async def login(
        self, user: Any, *, remember: bool = True, data: dict[str, Any] | None = None
    ) -> IssuedSession[SessionT]:
        """Creates a session for ``user`` and sends its cookie once the transaction commits.

        Always a new token: whatever session the browser carried is revoked, so a
        token planted before login (session fixation) never gains the login.
        """
        client = self._request.client
        ip_address = client.host if client else None
        user_agent = self._request.headers.get("user-agent")
        new_device = None
        with _store_errors_as_503():
            if self._anchor.events.wants(SessionCreated):
                # Asked before logout() deletes the session this browser may already carry.
                new_device = await self.is_new_device(user, ip_address=ip_address, user_agent=user_agent)
            await self.logout()
            issued = await self.create(
                user,
                remember=remember,
                ip_address=ip_address,
                user_agent=user_agent,
                data=data,
                new_device=new_device,
            )
        self._set_cookie_after_commit(issued.token, issued.session)
        self._pending.current_session = issued.session
        return issued

    async def logout(self) -> bool:
        """Revokes the request's own session, if any, and clears the cookie. Never fails."""
        credential = read_credential(self._request, self._anchor.cookie.name, bearer=self._anchor.bearer)
        revoked = False
        if credential is not None:
            with _store_errors_as_503():
                revoked = await self.revoke_token(credential.value)
            if not credential.via_bearer:
                self._clear_cookie()
        self._pending.current_session = None
        return revoked

    async def rotate(self, session: SessionT, *, reauthenticated: bool = False) -> str:
        try:
            with _store_errors_as_503():
                token = await super().rotate(session, reauthenticated=reauthenticated)
        except SessionConflict as conflict:
            raise HTTPException(
                status_code=409, detail="This session changed in another request; please try again."
            ) from conflict
        if self._is_current(session.id):
            self._set_cookie_after_commit(token, session)
        return token

    async def revoke(
        self, session_or_id: SessionT | str, *, owner: Any, reason: RevokeReason = RevokeReason.REVOKE
    ) -> bool:
        session_id = session_or_id if isinstance(session_or_id, str) else session_or_id.id
        revoked = await super().revoke(session_or_id, owner=owner, reason=reason)
        if revoked and self._is_current(session_id):
            self._clear_cookie()
        return revoked

    async def revoke_all(
        self,
        user: Any,
        *,
        keep: SessionT | str | None = None,
        reason: RevokeReason = RevokeReason.REVOKE_ALL,
    ) -> int:
        count = await super().revoke_all(user, keep=keep, reason=reason)
        current = self._pending.current_session
        keep_id = keep if isinstance(keep, str) or keep is None else keep.id
        owner_key = self.model_info.user_key(user)
        if (
            current is not None
            and current.id != keep_id
            and getattr(current, self.model_info.user_id_column.key) == owner_key
        ):
            self._clear_cookie()
        return count

    async def password_changed(self, session: SessionT) -> int:
        """After a password change on ``session``: ends every other session of its user
        and gives this one a new token marked as a fresh login. The count revoked."""
        user = getattr(session, self.model_info.user_relationship.key)
        revoked_count = await self.revoke_all(user, keep=session, reason=RevokeReason.PASSWORD_CHANGE)
        await self.rotate(session, reauthenticated=True)
        return revoked_count

    def _is_current(self, session_id: str) -> bool:
        current = self._pending.current_session
        return current is not None and current.id == session_id

    def _set_cookie_after_commit(self, token: str, session: SessionT) -> None:
        pending = self._pending
        pending.set(token, _cookie_expiry(session), self.now())
        pending.awaiting_commit = True
        # On rollback the row is gone: the cookie must not be sent at all.
        when_transaction_ends(self.db, on_commit=pending.confirm, on_rollback=pending.cancel_set)

        def refuse_if_too_late(_: Any) -> None:
            if pending.refuse_late_commit:
                raise SessionConflict(
                    "anchor_orm refused this commit: the response had already reported the login "
                    "as failed. Declare Depends(get_db, scope='function')."
                )

        sa.event.listen(self.db.sync_session, "before_commit", refuse_if_too_late)

    def _clear_cookie(self) -> None:
        # A revocation that rolls back left the session alive: the browser keeps its
        # cookie, and the error response lets the user try again.
        self._pending.remove()
        when_transaction_ends(self.db, on_commit=None, on_rollback=self._pending.cancel_clear)


class Anchor(Generic[SessionT]):
    """anchor_orm's configuration, and the dependencies routes declare.

    ``db`` is the application's own database dependency, exactly as routes declare it
    (``Annotated[AsyncSession, Depends(get_db, scope="function")]``): within a request
    FastAPI then hands the library and the route the same AsyncSession, so the
    library's writes join the application's transaction.
    """

    def __init__(
        self,
        session_model: type[SessionT],
        *,
        db: Any,
        secret_keys: Sequence[str],
        cookie: CookieSettings | None = None,
        policy: ExpiryPolicy | None = None,
        clock: Clock = utc_now,
        trusted_origins: Sequence[str] = (),
        bearer: bool = True,
        max_sessions_per_user: int | None = None,
    ) -> None:
        self.model_info = inspect_session_model(session_model)
        if max_sessions_per_user is not None and max_sessions_per_user < 1:
            raise ConfigurationError("max_sessions_per_user must be at least 1, or None for no limit.")
        self.max_sessions_per_user = max_sessions_per_user
        self._recent_touches = RecentTouches()
        self.signer = TokenSigner(secret_keys)
        self.cookie = cookie or CookieSettings()
        self.policy = policy or ExpiryPolicy()
        self.clock = clock
        self.bearer = bearer
        self.csrf_guard = CSRFGuard(trusted_origins)
        # Subscriptions to session created / rotated / revoked: anchor.events.subscribe(...).
        self.events = SessionEvents()
        self._db_annotation = _db_annotation(db)
        # Only for OpenAPI: these make the docs show how to authenticate.
        self._cookie_scheme = APIKeyCookie(
            name=self.cookie.name, auto_error=False, scheme_name="session cookie"
        )
        self._bearer_scheme = HTTPBearer(auto_error=False, scheme_name="session bearer token")

        self.get_session: Callable[..., Awaitable[SessionT]] = self.session_dependency()  # type: ignore[assignment]
        self.get_optional_session: Callable[..., Awaitable[SessionT | None]] = self.session_dependency(
            optional=True
        )
        self.current_user = self._make_current_user()
        self.sessions = self._make_sessions_dependency()
        self.csrf_protect = self._make_csrf_dependency()

    def install(self, app: FastAPI) -> None:
        """Adds the middleware that writes the cookie on whatever Response a route returns."""
        app.add_middleware(AnchorMiddleware, settings=self.cookie)

    def repository(self, db: Any) -> SessionRepository[SessionT]:
        """A repository on ``db`` outside a request (scripts, background jobs, tests)."""
        return SessionRepository(db, self.model_info, **self.repository_settings())

    def repository_settings(self) -> dict[str, Any]:
        """The keyword arguments every repository of this configuration is built with."""
        return {
            "signer": self.signer,
            "policy": self.policy,
            "clock": self.clock,
            "max_sessions_per_user": self.max_sessions_per_user,
            "recent_touches": self._recent_touches,
            "events": self.events,
        }

    def purge_in_background(
        self, engine: Any, *, interval: timedelta = timedelta(hours=1), batch_size: int = DEFAULT_BATCH_SIZE
    ) -> AbstractAsyncContextManager[BackgroundPurge]:
        """``anchor_orm.purge_in_background`` with this Anchor's model, clock and events."""
        return purge_in_background(
            engine,
            self.model_info.model,
            interval=interval,
            batch_size=batch_size,
            clock=self.clock,
            events=self.events,
        )

    def session_dependency(
        self, *, optional: bool = False, csrf: bool = True, fresh_within: timedelta | None = None
    ) -> Callable[..., Awaitable[SessionT | None]]:
        """A dependency giving the current session; ``get_session`` is the default one.

        - optional: None instead of 401 when there is no valid session;
        - csrf: False opts this route out of the CSRF guard (it is on by default);
        - fresh_within: 403 unless the last real login is at most this old.
        """
        anchor = self
        db_annotation = self._db_annotation

        async def dependency(
            request: Request,
            db: db_annotation,  # type: ignore[valid-type]
            _cookie: Annotated[str | None, Security(anchor._cookie_scheme)],
            _bearer: Annotated[Any, Security(anchor._bearer_scheme)],
        ) -> SessionT | None:
            pending = _pending_cookie(request)
            credential = read_credential(request, anchor.cookie.name, bearer=anchor.bearer)
            if credential is None:
                if optional:
                    return None
                raise _unauthorized("Not authenticated")
            if csrf and not credential.via_bearer:
                refusal = anchor.csrf_guard.refusal(request, request.method)
                if refusal is not None:
                    raise HTTPException(status_code=403, detail=refusal)
            try:
                validated = await anchor.repository(db).validate_and_touch(credential.value)
            except DATABASE_UNAVAILABLE_ERRORS as error:
                raise HTTPException(status_code=503, detail=STORE_UNAVAILABLE_DETAIL) from error
            if validated is None:
                # Clear only a cookie no key of ours signed: it can never work. A signed
                # one refused by the database may be a rotation racing this request, and
                # clearing it could erase the new cookie the browser just received.
                if not credential.via_bearer and anchor.signer.unsign(credential.value) is None:
                    pending.remove()
                if optional:
                    return None
                raise _unauthorized("Not authenticated: the session is invalid, expired or revoked")
            session = validated.session
            pending.current_session = session
            if validated.extended:
                _undo_touch_on_rollback(anchor, db, session.id, pending)
            if not credential.via_bearer:
                pending.cookie_authenticated = True
                if validated.resigned_token is not None:
                    pending.set(validated.resigned_token, _cookie_expiry(session), anchor.clock())
                elif validated.extended and session.remember:
                    # A browser-session cookie has no lifetime to extend.
                    pending.set(credential.value, session.expires_at, anchor.clock())
            if fresh_within is not None and anchor.clock() - session.authenticated_at > fresh_within:
                raise HTTPException(
                    status_code=403,
                    detail="This action needs a recent login: please sign in again.",
                    headers={"X-Reauthenticate": "true"},
                )
            return session

        return dependency

    def require_fresh_login(self, max_age: timedelta) -> Callable[..., Awaitable[SessionT | None]]:
        """A dependency giving the session only if its last real login is within max_age."""
        return self.session_dependency(fresh_within=max_age)

    def _make_current_user(self) -> Callable[..., Awaitable[Any]]:
        relationship_key = self.model_info.user_relationship.key
        get_session = self.get_session

        async def current_user(session: Annotated[Any, Depends(get_session)]) -> Any:
            return getattr(session, relationship_key)

        return current_user

    def _make_sessions_dependency(self) -> Callable[..., Awaitable[RequestSessions[SessionT]]]:
        anchor = self
        db_annotation = self._db_annotation

        async def sessions(request: Request, db: db_annotation) -> RequestSessions[SessionT]:  # type: ignore[valid-type]
            # Logging out or revoking on the strength of a cookie is a write a forged
            # cross-site form could trigger: the same guard as get_session applies.
            credential = read_credential(request, anchor.cookie.name, bearer=anchor.bearer)
            if credential is not None and not credential.via_bearer:
                refusal = anchor.csrf_guard.refusal(request, request.method)
                if refusal is not None:
                    raise HTTPException(status_code=403, detail=refusal)
            return RequestSessions(anchor, db, request)

        return sessions

    def _make_csrf_dependency(self) -> Callable[[Request], Awaitable[None]]:
        guard = self.csrf_guard

        async def csrf_protect(request: Request) -> None:
            """For forms that run without a session, such as login: refuse cross-site posts."""
            refusal = guard.refusal(request, request.method)
            if refusal is not None:
                raise HTTPException(status_code=403, detail=refusal)

        return csrf_protect


@contextmanager
def _store_errors_as_503() -> Iterator[None]:
    try:
        yield
    except DATABASE_UNAVAILABLE_ERRORS as error:
        raise HTTPException(status_code=503, detail=STORE_UNAVAILABLE_DETAIL) from error


def when_transaction_ends(
    db: Any, *, on_commit: Callable[[], None] | None, on_rollback: Callable[[], None]
) -> None:
    """Runs one of the callbacks when ``db``'s current transaction commits or rolls back."""
    settled = False

    def committed(_: Any) -> None:
        nonlocal settled
        if not settled:
            settled = True
            if on_commit is not None:
                on_commit()

    def rolled_back(_: Any) -> None:
        nonlocal settled
        if not settled:
            settled = True
            on_rollback()

    sa.event.listen(db.sync_session, "after_commit", committed)
    sa.event.listen(db.sync_session, "after_rollback", rolled_back)


def _undo_touch_on_rollback(anchor: "Anchor[Any]", db: Any, session_id: str, pending: PendingCookie) -> None:
    # A touch that rolls back moved nothing: the cookie keeps its old lifetime, and
    # this process must not skip the next touch thinking it was done.
    def undo() -> None:
        pending.cancel_set()
        anchor._recent_touches.forget(session_id)

    when_transaction_ends(db, on_commit=None, on_rollback=undo)


def _cookie_expiry(session: AnchorSessionBase) -> datetime | None:
    """When the cookie should die: None makes a browser-session cookie (remember me: no)."""
    return session.expires_at if session.remember else None


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


def _pending_cookie(connection: HTTPConnection) -> PendingCookie:
    pending = connection.scope.get(PENDING_KEY)
    if pending is None:
        raise ConfigurationError(
            "anchor_orm's middleware is not installed: call anchor.install(app) once, "
            "right after creating the FastAPI app."
        )
    return pending  # type: ignore[no-any-return]


def _db_annotation(db: Any) -> Any:
    if get_origin(db) is Annotated and any(isinstance(arg, DependsMarker) for arg in get_args(db)[1:]):
        return db
    if isinstance(db, DependsMarker):
        return Annotated[SAAsyncSession, db]
    raise ConfigurationError(
        "db= takes your database dependency as routes declare it, for example "
        "db=Annotated[AsyncSession, Depends(get_db, scope='function')], so that the "
        "library and the route share one AsyncSession and one transaction."
    )
