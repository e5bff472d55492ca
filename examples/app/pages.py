"""The HTML pages people use: sign up, log in, the sessions page, password, account.

Forms need no CSRF token field: a session-protected POST is checked by anchor_orm's
Origin / Sec-Fetch-Site guard automatically, and the forms that run without a
session (log in, sign up, log out) declare ``Depends(anchor.csrf_protect)``.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from anchor_orm import Anchor, RequestSessions
from examples.app.activity_rows import activity_rows
from examples.app.audit import audit_entries
from examples.app.config import FRESH_LOGIN_WINDOW
from examples.app.database import DB
from examples.app.models import User, UserSession
from examples.app.passwords import Passwords, password_problem
from examples.app.rendering import notice_text, redirect, render, safe_next
from examples.app.session_rows import session_rows
from examples.app.user_agents import parse_user_agent
from examples.app.users import email_problem, find_user, normalize_email

# The sessions page shows this many of the latest audit entries.
RECENT_ACTIVITY_ROWS = 10


def build_pages(anchor: Anchor[UserSession], passwords: Passwords, templates: Jinja2Templates) -> APIRouter:
    router = APIRouter()
    CurrentSession = Annotated[UserSession, Depends(anchor.get_session)]
    MaybeSession = Annotated[UserSession | None, Depends(anchor.get_optional_session)]
    # Built once and reused, so FastAPI runs it once per request.
    FreshSession = Annotated[UserSession, Depends(anchor.require_fresh_login(FRESH_LOGIN_WINDOW))]
    Sessions = Annotated[RequestSessions[UserSession], Depends(anchor.sessions)]
    no_cross_site_posts = [Depends(anchor.csrf_protect)]

    def page(request: Request, name: str, status_code: int = 200, **context: object) -> Response:
        return render(templates, request, name, context, status_code=status_code)

    @router.get("/")
    async def home(request: Request, session: CurrentSession, notice: str | None = None) -> Response:
        """The "me" page."""
        return page(
            request,
            "home.html",
            user=session.user,
            session=session,
            device=parse_user_agent(session.user_agent),
            notice=notice_text(notice, None),
        )

    # --- sign up, log in, log out ------------------------------------------------

    @router.get("/signup")
    async def signup_form(request: Request, session: MaybeSession) -> Response:
        if session is not None:
            return redirect("/")
        return page(request, "signup.html")

    @router.post("/signup", dependencies=no_cross_site_posts)
    async def signup(
        request: Request,
        db: DB,
        sessions: Sessions,
        email: Annotated[str, Form()],
        password: Annotated[str, Form()],
    ) -> Response:
        email = normalize_email(email)
        problem = email_problem(email) or password_problem(password)
        if problem is None and await find_user(db, email) is not None:
            problem = "An account with this email already exists. Log in instead?"
        if problem is not None:
            return page(request, "signup.html", status_code=400, error=problem, email=email)
        user = User(email=email, password_hash=await passwords.hash(password))
        db.add(user)
        await db.flush()
        await sessions.login(user)
        return redirect("/", notice="signed-up")

    @router.get("/login")
    async def login_form(
        request: Request,
        session: MaybeSession,
        next: str = "/",
        notice: str | None = None,
        count: int | None = None,
    ) -> Response:
        if session is not None:
            return redirect(safe_next(next))
        return page(request, "login.html", next=safe_next(next), notice=notice_text(notice, count))

    @router.post("/login", dependencies=no_cross_site_posts)
    async def login(
        request: Request,
        db: DB,
        sessions: Sessions,
        email: Annotated[str, Form()],
        password: Annotated[str, Form()],
        remember: Annotated[bool, Form()] = False,
        next: Annotated[str, Form()] = "/",
    ) -> Response:
        user = await find_user(db, email)
        if not await passwords.verify(user.password_hash if user else None, password) or user is None:
            # One message for both cases: the form does not tell who has an account.
            return page(
                request,
                "login.html",
                status_code=400,
                error="Wrong email or password.",
                email=normalize_email(email),
                next=safe_next(next),
            )
        if passwords.needs_rehash(user.password_hash):
            user.password_hash = await passwords.hash(password)
        # A new session with a new token, whatever cookie the browser had before.
        await sessions.login(user, remember=remember)
        return redirect(safe_next(next))

    @router.post("/logout", dependencies=no_cross_site_posts)
    async def logout(sessions: Sessions) -> Response:
        await sessions.logout()
        return redirect("/login", notice="signed-out")

    # --- your sessions -----------------------------------------------------------

    @router.get("/sessions")
    async def sessions_page(
        request: Request,
        db: DB,
        session: CurrentSession,
        sessions: Sessions,
        notice: str | None = None,
        count: int | None = None,
    ) -> Response:
        live = await sessions.list(session.user)
        activity = activity_rows(await audit_entries(db, session.user, limit=RECENT_ACTIVITY_ROWS), live)
        return page(
            request,
            "sessions.html",
            user=session.user,
            rows=session_rows(live, current=session),
            activity=activity,
            notice=notice_text(notice, count),
        )

    @router.post("/sessions/{session_id}/revoke")
    async def revoke_session(session_id: str, session: CurrentSession, sessions: Sessions) -> Response:
        # owner= makes sure nobody signs out a session of another user by guessing ids.
        revoked = await sessions.revoke(session_id, owner=session.user)
        if session_id == session.id:
            return redirect("/login", notice="signed-out")
        return redirect("/sessions", notice="revoked" if revoked else "already-gone")

    @router.post("/sessions/revoke-others")
    async def revoke_other_sessions(session: CurrentSession, sessions: Sessions) -> Response:
        count = await sessions.revoke_all(session.user, keep=session)
        return redirect("/sessions", notice="others-signed-out", count=count)

    @router.post("/sessions/revoke-all")
    async def sign_out_everywhere(session: CurrentSession, sessions: Sessions) -> Response:
        await sessions.revoke_all(session.user)
        return redirect("/login", notice="signed-out-everywhere")

    # --- password ------------------------------------------------------------------

    @router.get("/password")
    async def password_form(request: Request, session: CurrentSession) -> Response:
        return page(request, "password.html", user=session.user)

    @router.post("/password")
    async def change_password(
        request: Request,
        session: CurrentSession,
        sessions: Sessions,
        current_password: Annotated[str, Form()],
        new_password: Annotated[str, Form()],
    ) -> Response:
        user = session.user
        if not await passwords.verify(user.password_hash, current_password):
            problem: str | None = "Your current password is not right."
        else:
            problem = password_problem(new_password)
        if problem is not None:
            return page(request, "password.html", status_code=400, user=user, error=problem)
        user.password_hash = await passwords.hash(new_password)
        # Whoever else holds a session (perhaps the reason for the change) is out now;
        # this device stays in, with a new token and a fresh login time. The audit log
        # says "password_change". All in this request's transaction: the password, the
        # sign-outs and their audit rows commit together.
        signed_out = await sessions.password_changed(session)
        return redirect("/sessions", notice="password-changed", count=signed_out)

    # --- an action that needs a fresh login ------------------------------------------

    @router.get("/reauthenticate")
    async def reauthenticate_form(request: Request, session: CurrentSession, next: str = "/") -> Response:
        return page(request, "reauthenticate.html", user=session.user, next=safe_next(next))

    @router.post("/reauthenticate")
    async def reauthenticate(
        request: Request,
        session: CurrentSession,
        sessions: Sessions,
        password: Annotated[str, Form()],
        next: Annotated[str, Form()] = "/",
    ) -> Response:
        if not await passwords.verify(session.user.password_hash, password):
            return page(
                request,
                "reauthenticate.html",
                status_code=400,
                user=session.user,
                next=safe_next(next),
                error="That password is not right.",
            )
        # A new token too: a privilege change is a reason to rotate.
        await sessions.rotate(session, reauthenticated=True)
        return redirect(safe_next(next))

    @router.get("/account/delete")
    async def delete_account_form(request: Request, session: FreshSession) -> Response:
        return page(request, "delete_account.html", user=session.user)

    @router.post("/account/delete")
    async def delete_account(session: FreshSession, sessions: Sessions, db: DB) -> Response:
        user = session.user
        # Signs out every session (and clears this cookie), then deletes the user.
        await sessions.revoke_all(user)
        await db.delete(user)
        return redirect("/login", notice="account-deleted")

    return router
