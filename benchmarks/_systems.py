"""The same app for every system: GET /me gives the cookie's user (id and email), and
POST /login?user_id=N creates a session without any password hashing.

Each system is written the way its documentation shows.
"""

import asyncio
import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

import asyncpg
import sqlalchemy as sa
from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi_anchor.backends.implementations.postgres_backend import PostgresBackend, SessionData
from fastapi_anchor.frontends.implementations.cookie import CookieParameters, SessionCookie
from fastapi_anchor.session_verifier import SessionVerifier
from fastapi_users import BaseUserManager, FastAPIUsers, IntegerIDMixin
from fastapi_users.authentication import AuthenticationBackend, CookieTransport
from fastapi_users.authentication.strategy.db import DatabaseStrategy
from fastapi_users_db_sqlalchemy import SQLAlchemyUserDatabase
from fastapi_users_db_sqlalchemy.access_token import SQLAlchemyAccessTokenDatabase
from itsdangerous import BadSignature, Signer
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.ext.asyncio import AsyncSession as SAAsyncSession
from sqlalchemy.orm import contains_eager
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from anchor_orm import Anchor, AnchorSessionBase, CookieSettings, RequestSessions, create_engine
from anchor_orm._tokens import SIGNING_SALT
from benchmarks._counting import StatementCounter
from benchmarks._data import IDLE_TIMEOUT, asyncpg_dsn
from benchmarks._driver import SAME_ORIGIN_HEADERS, Headers
from benchmarks._driver import Response as DriverResponse
from benchmarks._models import BenchSession, BenchUser, FastapiUsersAccessToken, FastapiUsersUser

SECRET_KEY = "benchmark-secret-key-0123456789abcdef0123456789"
FOURTEEN_DAYS_SECONDS = int(IDLE_TIMEOUT.total_seconds())


@dataclass
class System:
    name: str
    app: FastAPI
    counter: StatementCounter
    cookie_name: str
    # The cookie value that carries session ``item`` of the loaded rows.
    cookie_value: Callable[[int], str]
    # Closes the system's database connections; a later request opens new ones. The
    # rounds call it after each turn, so that five systems' idle pools never hold
    # 80 of the server's (shared) connections at once.
    close: Callable[[], Awaitable[None]]
    _cookie_headers: dict[int, Headers] = field(default_factory=dict)

    def prepare(self, items: list[int]) -> None:
        """Signs the cookies of ``items`` ahead, so the client's work stays out of the timing."""
        for item in items:
            if item not in self._cookie_headers:
                cookie = f"{self.cookie_name}={self.cookie_value(item)}".encode("ascii")
                self._cookie_headers[item] = [(b"cookie", cookie)]

    def me_request(self, item: int) -> tuple[str, str, bytes, Headers]:
        return "GET", "/me", b"", self._cookie_headers[item]

    @staticmethod
    def login_request(user_id: int) -> tuple[str, str, bytes, Headers]:
        return "POST", "/login", f"user_id={user_id}".encode("ascii"), SAME_ORIGIN_HEADERS


def me_check(user_of: Callable[[int], int]) -> Callable[[int, DriverResponse], bool]:
    def check(item: int, response: DriverResponse) -> bool:
        if response.status != 200:
            return False
        body = json.loads(response.body)
        user_id = user_of(item)
        return bool(body["id"] == user_id and body["email"] == f"user{user_id}@bench.example")

    return check


def login_check(_: int, response: DriverResponse) -> bool:
    return response.status in (200, 204) and any(name == b"set-cookie" for name, _ in response.headers)


# --- anchor_orm ---------------------------------------------------------------------


def build_anchor_orm(
    url: sa.URL,
    token_of: Callable[[int], str],
    *,
    pool_size: int,
    session_model: type[AnchorSessionBase] = BenchSession,
    name: str = "anchor_orm",
) -> tuple[System, Anchor[Any], AsyncEngine]:
    engine = create_engine(url, pool_size=pool_size, max_overflow=0)
    counter = StatementCounter()
    counter.watch_engine(engine)

    async def get_db() -> AsyncIterator[AsyncSession]:
        async with AsyncSession(engine, expire_on_commit=False) as db, db.begin():
            yield db

    DB = Annotated[AsyncSession, Depends(get_db, scope="function")]
    anchor: Anchor[Any] = Anchor(
        session_model, db=DB, secret_keys=[SECRET_KEY], cookie=CookieSettings(name="anchor_session")
    )
    Session = Annotated[Any, Depends(anchor.get_session)]
    Sessions = Annotated[RequestSessions[Any], Depends(anchor.sessions)]
    app = FastAPI()
    anchor.install(app)

    @app.get("/me")
    async def me(session: Session) -> dict[str, Any]:
        return {"id": session.user.id, "email": session.user.email}

    @app.post("/login", dependencies=[Depends(anchor.csrf_protect)])
    async def login(user_id: int, db: DB, sessions: Sessions) -> dict[str, Any]:
        user = await db.get(BenchUser, user_id)
        if user is None:
            raise HTTPException(404)
        await sessions.login(user)
        return {"id": user.id}

    def cookie_value(item: int) -> str:
        return anchor.signer.sign(token_of(item))

    system = System(name, app, counter, "anchor_session", cookie_value, engine.dispose)
    return system, anchor, engine


def build_orm_reference(url: sa.URL, token_of: Callable[[int], str], *, pool_size: int) -> System:
    """Not a target: the app's own shape (its AsyncSession, transaction and one ORM SELECT
    of the session joined with its user) with no authentication at all, no signature,
    no hash, no expiry. What anchor_orm adds is the gap between this row and its own."""
    engine = create_engine(url, pool_size=pool_size, max_overflow=0)
    counter = StatementCounter()
    counter.watch_engine(engine)
    statement = (
        select(BenchSession)
        .join(BenchSession.user)  # type: ignore[arg-type]
        .options(contains_eager(BenchSession.user))  # type: ignore[arg-type]
        .where(BenchSession.id == sa.bindparam("session_id"))
    )

    async def get_db() -> AsyncIterator[AsyncSession]:
        async with AsyncSession(engine, expire_on_commit=False) as db, db.begin():
            yield db

    DB = Annotated[AsyncSession, Depends(get_db, scope="function")]

    async def unauthenticated_session(request: Request, db: DB) -> BenchSession:
        session_id = request.cookies.get("reference_session", "").partition(".")[0]
        session = (await db.exec(statement, params={"session_id": session_id})).first()
        if session is None:
            raise HTTPException(401)
        return session

    app = FastAPI()

    @app.get("/me")
    async def me(session: Annotated[BenchSession, Depends(unauthenticated_session)]) -> dict[str, Any]:
        return {"id": session.user.id, "email": session.user.email}

    return System(REFERENCE, app, counter, "reference_session", token_of, engine.dispose)


REFERENCE = "reference: app session + ORM SELECT"


# --- fastapi-anchor 0.1.1 -----------------------------------------------------------


def build_fastapi_anchor(url: sa.URL, session_ids: list[uuid.UUID], *, pool_size: int) -> System:
    # Its backend opens a session of its own beside the app's: at login a request holds
    # two connections (the app's, after loading the user, and the backend's insert).
    engine = sa.ext.asyncio.create_async_engine(url, pool_size=pool_size, max_overflow=pool_size)
    counter = StatementCounter()
    counter.watch_engine(engine)
    session_factory = async_sessionmaker(engine, class_=SAAsyncSession, expire_on_commit=False)
    from benchmarks._models import fastapi_anchor_sessions

    backend = PostgresBackend(
        session_factory, table=fastapi_anchor_sessions, expire_seconds=FOURTEEN_DAYS_SECONDS
    )
    cookie = SessionCookie(
        cookie_name="fa_session",
        identifier="general_verifier",
        secret_key=SECRET_KEY,
        cookie_params=CookieParameters(secure=True),
    )

    verifier = _FastapiAnchorVerifier(backend)

    async def get_db() -> AsyncIterator[SAAsyncSession]:
        async with session_factory() as db:
            yield db

    app = FastAPI()

    @app.get("/me", dependencies=[Depends(cookie)])
    async def me(
        data: Annotated[SessionData, Depends(verifier)], db: Annotated[SAAsyncSession, Depends(get_db)]
    ) -> dict[str, Any]:
        # The user is the app's entity, loaded through the app's own session.
        user = await db.get(FastapiUsersUser, int(data.user_id))
        if user is None:
            raise HTTPException(401)
        return {"id": user.id, "email": user.email}

    @app.post("/login")
    async def login(
        user_id: int, response: Response, db: Annotated[SAAsyncSession, Depends(get_db)]
    ) -> dict[str, Any]:
        user = await db.get(FastapiUsersUser, user_id)
        if user is None:
            raise HTTPException(404)
        session_id = uuid.uuid4()
        now = datetime.now(UTC)
        await backend.create(
            session_id, SessionData(user_id=str(user.id), expires_at=now + IDLE_TIMEOUT, created_at=now)
        )
        cookie.attach_to_response(response, session_id)
        return {"id": user.id}

    def cookie_value(item: int) -> str:
        return str(cookie.signer.dumps(session_ids[item].hex))

    return System("fastapi-anchor 0.1.1", app, counter, "fa_session", cookie_value, engine.dispose)


class _FastapiAnchorVerifier(SessionVerifier[uuid.UUID, SessionData]):
    """The verifier of fastapi-anchor's README: every stored session is accepted."""

    def __init__(self, backend: PostgresBackend) -> None:
        self._backend = backend
        self._exception = HTTPException(status_code=401, detail="invalid session")

    @property
    def identifier(self) -> str:
        return "general_verifier"

    @property
    def backend(self) -> PostgresBackend:
        return self._backend

    @property
    def auto_error(self) -> bool:
        return True

    @property
    def auth_http_exception(self) -> HTTPException:
        return self._exception

    def verify_session(self, model: SessionData) -> bool:
        return True


# --- fastapi-users ------------------------------------------------------------------


def build_fastapi_users(url: sa.URL, tokens: list[str], *, pool_size: int) -> System:
    engine = sa.ext.asyncio.create_async_engine(url, pool_size=pool_size, max_overflow=0)
    counter = StatementCounter()
    counter.watch_engine(engine)
    session_maker = async_sessionmaker(engine, expire_on_commit=False)

    async def get_async_session() -> AsyncIterator[SAAsyncSession]:
        async with session_maker() as session:
            yield session

    async def get_user_db(
        session: Annotated[SAAsyncSession, Depends(get_async_session)],
    ) -> AsyncIterator[SQLAlchemyUserDatabase[FastapiUsersUser, int]]:
        yield SQLAlchemyUserDatabase(session, FastapiUsersUser)

    async def get_access_token_db(
        session: Annotated[SAAsyncSession, Depends(get_async_session)],
    ) -> AsyncIterator[SQLAlchemyAccessTokenDatabase[FastapiUsersAccessToken]]:
        yield SQLAlchemyAccessTokenDatabase(session, FastapiUsersAccessToken)

    class UserManager(IntegerIDMixin, BaseUserManager[FastapiUsersUser, int]):
        reset_password_token_secret = SECRET_KEY
        verification_token_secret = SECRET_KEY

    async def get_user_manager(
        user_db: Annotated[SQLAlchemyUserDatabase[FastapiUsersUser, int], Depends(get_user_db)],
    ) -> AsyncIterator[UserManager]:
        yield UserManager(user_db)

    def get_database_strategy(
        access_token_db: Annotated[
            SQLAlchemyAccessTokenDatabase[FastapiUsersAccessToken], Depends(get_access_token_db)
        ],
    ) -> DatabaseStrategy[FastapiUsersUser, int, FastapiUsersAccessToken]:
        return DatabaseStrategy(access_token_db, lifetime_seconds=FOURTEEN_DAYS_SECONDS)

    transport = CookieTransport(cookie_name="fu_session", cookie_max_age=FOURTEEN_DAYS_SECONDS)
    auth_backend = AuthenticationBackend(
        name="database", transport=transport, get_strategy=get_database_strategy
    )
    fastapi_users = FastAPIUsers[FastapiUsersUser, int](get_user_manager, [auth_backend])
    current_active_user = fastapi_users.current_user(active=True)

    app = FastAPI()

    @app.get("/me")
    async def me(user: Annotated[FastapiUsersUser, Depends(current_active_user)]) -> dict[str, Any]:
        return {"id": user.id, "email": user.email}

    @app.post("/login")
    async def login(
        user_id: int,
        user_manager: Annotated[UserManager, Depends(get_user_manager)],
        strategy: Annotated[Any, Depends(auth_backend.get_strategy)],
    ) -> Response:
        user = await user_manager.get(user_id)
        return await auth_backend.login(strategy, user)

    return System("fastapi-users", app, counter, "fu_session", tokens.__getitem__, engine.dispose)


class _LazyPool:
    """An asyncpg pool opened on first use and closed by close(), like an engine's."""

    def __init__(self, dsn: str, size: int) -> None:
        self._dsn = dsn
        self._size = size
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(self._dsn, min_size=1, max_size=self._size)
        return self._pool

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()


# --- the floor: a signed cookie and one raw asyncpg query ----------------------------

FLOOR_QUERY = """
SELECT s.secret_hash, s.expires_at, s.absolute_expires_at, u.id, u.email
FROM anchor_orm_session AS s JOIN bench_user AS u ON u.id = s.user_id
WHERE s.id = $1
"""
FLOOR_INSERT = """
INSERT INTO anchor_orm_session (id, secret_hash, created_at, last_seen_at, expires_at,
    absolute_expires_at, authenticated_at, remember, user_id)
VALUES ($1, $2, $3, $3, $4, $5, $3, true, $6)
"""


async def build_floor(url: sa.URL, token_of: Callable[[int], str], *, pool_size: int) -> System:
    """The least a server-side session can cost: what every system above does, by hand."""
    pool = _LazyPool(asyncpg_dsn(url), pool_size)
    counter = StatementCounter()
    signer = Signer(SECRET_KEY, salt=SIGNING_SALT, digest_method=hashlib.sha256)

    async def current_user(request: Request) -> asyncpg.Record:
        signed = request.cookies.get("floor_session")
        if signed is None:
            raise HTTPException(401)
        try:
            token = signer.unsign(signed).decode("ascii")
        except BadSignature:
            raise HTTPException(401) from None
        session_id, _, secret = token.partition(".")
        counter.reads += 1
        row = await (await pool.get()).fetchrow(FLOOR_QUERY, session_id)
        now = datetime.now(UTC)
        secret_hash = hashlib.sha256(secret.encode("ascii")).hexdigest()
        if (
            row is None
            or not hmac.compare_digest(secret_hash, row["secret_hash"])
            or not (now < row["expires_at"] and now < row["absolute_expires_at"])
        ):
            raise HTTPException(401)
        return row

    app = FastAPI()

    @app.get("/me")
    async def me(row: Annotated[asyncpg.Record, Depends(current_user)]) -> dict[str, Any]:
        return {"id": row["id"], "email": row["email"]}

    @app.post("/login")
    async def login(user_id: int, response: Response) -> dict[str, Any]:
        import secrets

        session_id, secret = secrets.token_urlsafe(16), secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        counter.writes += 1
        await (await pool.get()).execute(
            FLOOR_INSERT,
            session_id,
            hashlib.sha256(secret.encode("ascii")).hexdigest(),
            now,
            now + IDLE_TIMEOUT,
            now + (IDLE_TIMEOUT * 90 / 14),
            user_id,
        )
        value = signer.sign(f"{session_id}.{secret}").decode("ascii")
        response.set_cookie("floor_session", value, max_age=FOURTEEN_DAYS_SECONDS, secure=True, httponly=True)
        return {"id": user_id}

    def cookie_value(item: int) -> str:
        return signer.sign(token_of(item)).decode("ascii")

    return System("floor (signed cookie + asyncpg)", app, counter, "floor_session", cookie_value, pool.close)
