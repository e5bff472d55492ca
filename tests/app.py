"""A small app on the library's dependencies, built per test on a TestDatabase."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, Literal

import anyio
import httpx
from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from anchor_orm import Anchor, CookieSettings, ExpiryPolicy, RequestSessions
from anchor_orm.testing import MovableClock, TestDatabase
from tests.models import Account, AccountSession

SECRET_KEY = "test-secret-key-0123456789abcdef0123456789"
BASE_URL = "https://testserver"
# What a browser adds to a same-origin form post or fetch.
SAME_ORIGIN = {"origin": BASE_URL, "sec-fetch-site": "same-origin"}


@dataclass
class TestApp:
    __test__ = False

    app: FastAPI
    anchor: Anchor[AccountSession]
    clock: MovableClock
    database: TestDatabase

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=BASE_URL, **kwargs)

    async def add_account(self, email: str) -> Account:
        async with self.database.session() as db:
            account = Account(email=email)
            db.add(account)
            await db.commit()
            return account


def build_app(
    database: TestDatabase,
    *,
    clock: MovableClock | None = None,
    policy: ExpiryPolicy | None = None,
    secret_keys: list[str] | None = None,
    cookie: CookieSettings | None = None,
    db_scope: Literal["function", "request"] = "function",
    **anchor_options: Any,
) -> TestApp:
    clock = clock or MovableClock()

    async def get_db() -> AsyncIterator[AsyncSession]:
        async with database.session() as db, db.begin():
            yield db

    DB = Annotated[AsyncSession, Depends(get_db, scope=db_scope)]
    anchor = Anchor(
        AccountSession,
        db=DB,
        secret_keys=secret_keys or [SECRET_KEY],
        clock=clock,
        policy=policy,
        cookie=cookie,
        **anchor_options,
    )
    get_session = anchor.get_session
    Session = Annotated[AccountSession, Depends(get_session)]
    Sessions = Annotated[RequestSessions[AccountSession], Depends(anchor.sessions)]

    app = FastAPI()
    anchor.install(app)

    async def find_account(db: AsyncSession, email: str) -> Account:
        account = (await db.exec(select(Account).where(Account.email == email))).first()
        if account is None:
            raise HTTPException(404, "no such account")
        return account

    @app.post("/login", dependencies=[Depends(anchor.csrf_protect)])
    async def login(email: str, db: DB, sessions: Sessions, remember: bool = True) -> dict[str, Any]:
        issued = await sessions.login(await find_account(db, email), remember=remember)
        return {"session_id": issued.session.id, "token": issued.token}

    @app.post("/login-redirect", dependencies=[Depends(anchor.csrf_protect)])
    async def login_redirect(email: str, db: DB, sessions: Sessions) -> RedirectResponse:
        await sessions.login(await find_account(db, email))
        return RedirectResponse("/me", status_code=303)

    @app.get("/me")
    async def me(session: Session) -> dict[str, Any]:
        return {"email": session.user.email, "session_id": session.id}

    @app.get("/page", response_class=HTMLResponse)
    async def page(session: Session) -> HTMLResponse:
        return HTMLResponse(f"<p>{session.user.email}</p>")

    @app.get("/maybe")
    async def maybe(session: Annotated[AccountSession | None, Depends(anchor.get_optional_session)]) -> Any:
        return {"email": session.user.email if session else None}

    async def write_note(session: Session) -> dict[str, str]:
        return {"written_by": session.user.email}

    for method in ("POST", "PUT", "PATCH", "DELETE"):
        app.add_api_route("/note", write_note, methods=[method], operation_id=f"write_note_{method.lower()}")

    @app.get("/sessions")
    async def list_sessions(session: Session, sessions: Sessions) -> list[str]:
        return [s.id for s in await sessions.list(session.user)]

    @app.post("/sessions/{session_id}/revoke")
    async def revoke(session_id: str, session: Session, sessions: Sessions) -> dict[str, bool]:
        return {"revoked": await sessions.revoke(session_id, owner=session.user)}

    @app.post("/logout")
    async def logout(sessions: Sessions) -> dict[str, bool]:
        return {"revoked": await sessions.logout()}

    @app.post("/logout-everywhere")
    async def logout_everywhere(session: Session, sessions: Sessions) -> dict[str, int]:
        return {"revoked": await sessions.revoke_all(session.user)}

    @app.post("/logout-others")
    async def logout_others(session: Session, sessions: Sessions) -> dict[str, int]:
        return {"revoked": await sessions.revoke_all(session.user, keep=session)}

    @app.post("/change-password")
    async def change_password(session: Session, sessions: Sessions) -> dict[str, int]:
        session.user.password_version += 1
        revoked = await sessions.revoke_all(session.user, keep=session)
        await sessions.rotate(session, reauthenticated=True)
        return {"revoked": revoked}

    @app.get("/whoami")
    async def whoami(user: Annotated[Account, Depends(anchor.current_user)]) -> dict[str, str]:
        return {"email": user.email}

    @app.post("/logout-everywhere-then-fail")
    async def logout_everywhere_then_fail(session: Session, sessions: Sessions, db: DB) -> None:
        assert db is sessions.db  # one AsyncSession for the route and the library
        await sessions.revoke_all(session.user)
        raise HTTPException(500, "the rest of the work failed")

    @app.post("/webhook")
    async def webhook(
        session: Annotated[AccountSession, Depends(anchor.session_dependency(csrf=False))],
    ) -> dict[str, str]:
        return {"written_by": session.user.email}

    @app.post("/delete-account")
    async def delete_account(
        session: Annotated[AccountSession, Depends(anchor.require_fresh_login(timedelta(minutes=5)))],
    ) -> dict[str, str]:
        return {"deleted": session.user.email}

    @app.post("/reauthenticate")
    async def reauthenticate(session: Session, sessions: Sessions) -> dict[str, bool]:
        await sessions.rotate(session, reauthenticated=True)
        return {"ok": True}

    @app.post("/login-then-fail", dependencies=[Depends(anchor.csrf_protect)])
    async def login_then_fail(email: str, db: DB, sessions: Sessions) -> dict[str, str]:
        await sessions.login(await find_account(db, email))
        raise HTTPException(409, "something else failed after the login")

    # A route that holds the request open until the test releases it.
    app.state.slow_started = anyio.Event()
    app.state.slow_release = anyio.Event()

    @app.get("/slow")
    async def slow(session: Session) -> dict[str, str]:
        app.state.slow_started.set()
        await app.state.slow_release.wait()
        return {"email": session.user.email}

    return TestApp(app, anchor, clock, database)
