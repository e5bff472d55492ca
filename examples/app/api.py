"""JSON routes for API clients, authenticated with ``Authorization: Bearer <token>``.

The token comes from POST /api/login (or /api/signup). Bearer requests are exempt from
the CSRF guard: a browser never adds that header to a forged cross-site request.
"""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel

from anchor_orm import Anchor, RequestSessions, RevokeReason
from examples.app.config import FRESH_LOGIN_WINDOW
from examples.app.database import DB
from examples.app.models import User, UserSession
from examples.app.passwords import Passwords, password_problem
from examples.app.session_rows import session_rows
from examples.app.users import email_problem, find_user, normalize_email


class Credentials(BaseModel):
    email: str
    password: str


class IssuedToken(BaseModel):
    token: str
    session_id: str
    expires_at: datetime


class Me(BaseModel):
    id: int
    email: str
    created_at: datetime
    session_id: str
    authenticated_at: datetime


class SessionOut(BaseModel):
    id: str
    device: str
    browser: str
    system: str
    kind: str
    ip_address: str | None
    created_at: datetime
    last_seen_at: datetime
    current: bool


class Revoked(BaseModel):
    revoked: int


class PasswordChange(BaseModel):
    current_password: str
    new_password: str


class NewToken(BaseModel):
    # The old token of this session stops working: use this one from now on.
    token: str
    revoked: int = 0


class Password(BaseModel):
    password: str


def build_api(anchor: Anchor[UserSession], passwords: Passwords) -> APIRouter:
    router = APIRouter(tags=["api"])
    CurrentSession = Annotated[UserSession, Depends(anchor.get_session)]
    FreshSession = Annotated[UserSession, Depends(anchor.require_fresh_login(FRESH_LOGIN_WINDOW))]
    Sessions = Annotated[RequestSessions[UserSession], Depends(anchor.sessions)]

    async def issue_token(request: Request, sessions: Sessions, user: User) -> IssuedToken:
        # create() rather than login(): an API client carries the token itself, so
        # no cookie is set (login() would set one for browsers).
        client = request.client
        issued = await sessions.create(
            user,
            ip_address=client.host if client else None,
            user_agent=request.headers.get("user-agent"),
        )
        return IssuedToken(
            token=issued.token, session_id=issued.session.id, expires_at=issued.session.expires_at
        )

    @router.post("/signup", status_code=status.HTTP_201_CREATED)
    async def signup(body: Credentials, request: Request, db: DB, sessions: Sessions) -> IssuedToken:
        email = normalize_email(body.email)
        problem = email_problem(email) or password_problem(body.password)
        if problem is not None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, problem)
        if await find_user(db, email) is not None:
            raise HTTPException(status.HTTP_409_CONFLICT, "An account with this email already exists.")
        user = User(email=email, password_hash=await passwords.hash(body.password))
        db.add(user)
        await db.flush()
        return await issue_token(request, sessions, user)

    @router.post("/login")
    async def login(body: Credentials, request: Request, db: DB, sessions: Sessions) -> IssuedToken:
        user = await find_user(db, body.email)
        if not await passwords.verify(user.password_hash if user else None, body.password) or user is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "Wrong email or password.",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if passwords.needs_rehash(user.password_hash):
            user.password_hash = await passwords.hash(body.password)
        return await issue_token(request, sessions, user)

    @router.post("/logout")
    async def logout(sessions: Sessions) -> Revoked:
        """Ends the session of the token sent; succeeds even when there is none."""
        return Revoked(revoked=int(await sessions.logout()))

    @router.get("/me")
    async def me(session: CurrentSession) -> Me:
        user = session.user
        assert user.id is not None
        return Me(
            id=user.id,
            email=user.email,
            created_at=user.created_at,
            session_id=session.id,
            authenticated_at=session.authenticated_at,
        )

    @router.get("/sessions")
    async def list_sessions(session: CurrentSession, sessions: Sessions) -> list[SessionOut]:
        return [
            SessionOut(
                id=row.id,
                device=row.device.label,
                browser=row.device.browser,
                system=row.device.system,
                kind=row.device.kind,
                ip_address=row.ip_address,
                created_at=row.created_at,
                last_seen_at=row.last_seen_at,
                current=row.is_current,
            )
            for row in session_rows(await sessions.list(session.user), current=session)
        ]

    @router.delete("/sessions/{session_id}", status_code=status.HTTP_204_NO_CONTENT)
    async def revoke_session(session_id: str, session: CurrentSession, sessions: Sessions) -> None:
        if not await sessions.revoke(session_id, owner=session.user):
            raise HTTPException(status.HTTP_404_NOT_FOUND, "No such session of yours.")

    @router.post("/sessions/revoke-others")
    async def revoke_other_sessions(session: CurrentSession, sessions: Sessions) -> Revoked:
        return Revoked(revoked=await sessions.revoke_all(session.user, keep=session))

    @router.post("/sessions/revoke-all")
    async def sign_out_everywhere(session: CurrentSession, sessions: Sessions) -> Revoked:
        return Revoked(revoked=await sessions.revoke_all(session.user))

    @router.post("/password")
    async def change_password(body: PasswordChange, session: CurrentSession, sessions: Sessions) -> NewToken:
        user = session.user
        if not await passwords.verify(user.password_hash, body.current_password):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "The current password is not right.")
        problem = password_problem(body.new_password)
        if problem is not None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, problem)
        user.password_hash = await passwords.hash(body.new_password)
        # What sessions.password_changed(session) does, in two steps because the client
        # needs the rotated token back: the audit log records "password_change".
        revoked = await sessions.revoke_all(user, keep=session, reason=RevokeReason.PASSWORD_CHANGE)
        token = await sessions.rotate(session, reauthenticated=True)
        return NewToken(token=token, revoked=revoked)

    @router.post("/reauthenticate")
    async def reauthenticate(body: Password, session: CurrentSession, sessions: Sessions) -> NewToken:
        if not await passwords.verify(session.user.password_hash, body.password):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "That password is not right.")
        return NewToken(token=await sessions.rotate(session, reauthenticated=True))

    @router.delete("/me", status_code=status.HTTP_204_NO_CONTENT)
    async def delete_account(session: FreshSession, sessions: Sessions, db: DB) -> None:
        """Needs a login within the last 5 minutes (403 with X-Reauthenticate otherwise)."""
        user = session.user
        await sessions.revoke_all(user)
        await db.delete(user)

    return router
