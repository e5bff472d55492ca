"""The application factory: one FastAPI app, HTML pages at /, JSON routes at /api."""

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import RedirectResponse, Response

from anchor_orm import Anchor, create_engine, utc_now
from examples.app.api import build_api
from examples.app.audit import register_audit_log
from examples.app.config import Config
from examples.app.database import DB
from examples.app.models import UserSession
from examples.app.pages import build_pages
from examples.app.passwords import Passwords
from examples.app.rendering import make_templates, render

STATIC_DIR = Path(__file__).parent / "static"


def create_app(
    config: Config,
    *,
    engine: AsyncEngine | None = None,
    clock: Callable[[], datetime] = utc_now,
    passwords: Passwords | None = None,
) -> FastAPI:
    """The app on ``config``; tests pass their own engine, clock and a cheap hasher."""
    owns_engine = engine is None
    app_engine = engine if engine is not None else create_engine(config.database_url)

    anchor = Anchor(UserSession, db=DB, secret_keys=config.secret_keys, clock=clock)
    # Every login, rotation and sign-out adds an audit_log row to the transaction that
    # makes the change: both commit, or neither.
    register_audit_log(anchor)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Expired sessions are deleted hourly, off the request path (each one purged is
        # audited as "expiry_purge"); of several workers on PostgreSQL, one purges at a time.
        async with anchor.purge_in_background(app_engine, interval=timedelta(hours=1)):
            yield
        if owns_engine:
            await app_engine.dispose()

    app = FastAPI(title="anchor_orm example app", lifespan=lifespan)
    app.state.engine = app_engine
    # For code that runs next to the routes (scripts, tests): anchor.repository(db)...
    app.state.anchor = anchor
    anchor.install(app)

    templates = make_templates(clock)
    hasher = passwords or Passwords()
    app.include_router(build_pages(anchor, hasher, templates), include_in_schema=False)
    app.include_router(build_api(anchor, hasher), prefix="/api")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_exception_handler(StarletteHTTPException, page_errors(templates, anchor.cookie.name))  # type: ignore[arg-type]
    return app


def app_from_env() -> FastAPI:
    """What uvicorn imports in each worker (``factory=True``)."""
    return create_app(Config.from_env())


def page_errors(
    templates: Jinja2Templates, cookie_name: str
) -> Callable[[Request, StarletteHTTPException], Awaitable[Response]]:
    """People get pages, API clients get JSON: a 401 on a page sends the browser to
    the login page; a 403 asking for a fresh login sends it to re-enter the password."""

    async def handle(request: Request, error: StarletteHTTPException) -> Response:
        if request.url.path.startswith("/api/") or request.url.path in ("/api", "/openapi.json"):
            return await http_exception_handler(request, error)
        headers = error.headers or {}
        come_back_to = request.url.path if request.method == "GET" else None
        if error.status_code == 401:
            # A cookie that no longer works: say why the person has to sign in again.
            query = {"notice": "session-ended"} if cookie_name in request.cookies else {}
            if come_back_to and come_back_to != "/":
                query["next"] = come_back_to
            return RedirectResponse(_with_query("/login", query), status_code=303)
        if error.status_code == 403 and headers.get("X-Reauthenticate"):
            query = {"next": come_back_to} if come_back_to else {}
            return RedirectResponse(_with_query("/reauthenticate", query), status_code=303)
        return render(
            templates,
            request,
            "error.html",
            {"status_code": error.status_code, "detail": error.detail},
            status_code=error.status_code,
        )

    return handle


def _with_query(path: str, query: dict[str, str]) -> str:
    return f"{path}?{urlencode(query)}" if query else path
