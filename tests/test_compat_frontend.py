"""SessionCookie and SessionVerifier of the fastapi-anchor API: 0.1.1's bugs, fixed."""

import logging
import time
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from fastapi import Depends, FastAPI, HTTPException, Response
from hypothesis import given, settings
from hypothesis import strategies as st
from itsdangerous import URLSafeTimedSerializer
from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from anchor_orm import ConfigurationError, FrontendError, SessionVerifier
from anchor_orm.backends.implementations import InMemoryBackend
from anchor_orm.frontends.implementations import CookieParameters, SessionCookie

SECRET = "legacy-secret"


class SessionData(BaseModel):
    user_id: str


def make_cookie(**params: Any) -> SessionCookie:
    auto_error = params.pop("auto_error", True)
    name = params.pop("cookie_name", "session")
    return SessionCookie(
        cookie_name=name,
        identifier="auth",
        auto_error=auto_error,
        secret_key=SECRET,
        cookie_params=CookieParameters(**params),
    )


class Verifier(SessionVerifier[UUID, SessionData]):
    def __init__(
        self, backend: InMemoryBackend[UUID, SessionData], *, auto_error: bool = True, verdict: Any = True
    ):
        self._backend = backend
        self._auto_error = auto_error
        self._verdict = verdict

    @property
    def identifier(self) -> str:
        return "auth"

    @property
    def backend(self) -> InMemoryBackend[UUID, SessionData]:
        return self._backend

    @property
    def auto_error(self) -> bool:
        return self._auto_error

    @property
    def auth_http_exception(self) -> HTTPException:
        return HTTPException(status_code=401, detail="Invalid session")

    def verify_session(self, model: SessionData) -> Any:
        return self._verdict(model) if callable(self._verdict) else self._verdict


def build_app(cookie: SessionCookie, verifier: Verifier) -> FastAPI:
    app = FastAPI()
    backend = verifier.backend

    @app.post("/login")
    async def login(user_id: str, response: Response) -> dict[str, bool]:
        session_id = uuid4()
        await backend.create(session_id, SessionData(user_id=user_id))
        cookie.attach_to_response(response, session_id)
        return {"ok": True}

    @app.get("/me", dependencies=[Depends(cookie)])
    async def me(session_data: SessionData | None = Depends(verifier)) -> dict[str, Any]:
        return {"type": type(session_data).__name__, "data": session_data}

    @app.get("/id")
    async def session_id(session_id: UUID | None = Depends(cookie)) -> dict[str, Any]:
        return {"type": type(session_id).__name__}

    @app.get("/forgot-the-cookie-dependency")
    async def forgot(session_data: SessionData | None = Depends(verifier)) -> dict[str, Any]:
        return {"type": type(session_data).__name__}

    @app.post("/logout")
    async def logout(response: Response, session_id: UUID = Depends(cookie)) -> dict[str, bool]:
        await backend.delete(session_id)
        cookie.delete_from_response(response)
        return {"ok": True}

    return app


def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://testserver")


def signed(session_id: UUID, cookie_name: str = "session", secret: str = SECRET) -> str:
    """A cookie value made the way fastapi-anchor 0.1.1 made it."""
    return URLSafeTimedSerializer(secret, salt=cookie_name).dumps(session_id.hex)


@pytest.mark.parametrize(("samesite", "written"), [("lax", "Lax"), ("strict", "Strict"), ("none", "None")])
def test_samesite_is_written_as_browsers_read_it(samesite, written):
    response = Response()
    make_cookie(samesite=samesite, secure=True).attach_to_response(response, uuid4())
    header = response.headers["set-cookie"]
    assert f"SameSite={written}" in header.split("; ")
    assert "SameSiteEnum" not in header


def test_cookie_attributes_and_no_store():
    response = Response()
    make_cookie(secure=True, domain="example.com", path="/app", max_age=60).attach_to_response(
        response, uuid4()
    )
    attributes = response.headers["set-cookie"].split("; ")[1:]
    assert attributes == [
        "Max-Age=60",
        "Path=/app",
        "Domain=example.com",
        "Secure",
        "HttpOnly",
        "SameSite=Lax",
    ]
    assert response.headers["cache-control"] == "no-store"


def test_clearing_the_cookie_repeats_secure_samesite_path_and_domain():
    cookie = make_cookie(secure=True, samesite="strict", domain="example.com", path="/app")
    set_response, clear_response = Response(), Response()
    cookie.attach_to_response(set_response, uuid4())
    cookie.delete_from_response(clear_response)
    set_attributes = set(set_response.headers["set-cookie"].split("; ")[1:])
    clear_attributes = set(clear_response.headers["set-cookie"].split("; ")[1:])
    assert clear_response.headers["set-cookie"].startswith("session=;")
    assert "Max-Age=0" in clear_attributes
    assert set_attributes - {"Max-Age=1209600"} <= clear_attributes


@pytest.mark.parametrize(
    ("params", "cookie_name"),
    [
        ({"samesite": "none", "secure": False}, "session"),
        ({"secure": False}, "__Host-session"),
        ({"secure": True, "path": "/app"}, "__Host-session"),
        ({"secure": False}, "__Secure-session"),
        ({"max_age": 0}, "session"),
        ({}, "bad name;"),
    ],
)
def test_settings_browsers_would_drop_are_refused_with_the_fix(params, cookie_name):
    with pytest.raises(
        (ConfigurationError, ValidationError), match=r"secure|max_age|cookie name|cookie_name"
    ):
        SessionCookie(
            cookie_name=cookie_name,
            identifier="auth",
            secret_key=SECRET,
            cookie_params=CookieParameters(**params),
        )


def test_empty_secret_key_is_refused():
    with pytest.raises(ConfigurationError, match="secret_key"):
        SessionCookie(cookie_name="s", identifier="a", secret_key="", cookie_params=CookieParameters())


def test_legacy_default_stays_secure_false_and_samesite_any_case():
    # 0.1.1's default, kept so upgraded apps behave the same (see docs/readme/compat.md).
    assert CookieParameters().secure is False
    assert CookieParameters(samesite="Strict").samesite == "strict"


async def test_no_cookie_is_401_not_403():
    app = build_app(make_cookie(), Verifier(InMemoryBackend()))
    async with client_for(app) as client:
        response = await client.get("/me")
        assert response.status_code == 401
        assert response.json() == {"detail": "No session provided"}


@pytest.mark.parametrize(
    "value",
    [
        "junk",
        "a.b",
        "x" * 5000,
        signed(uuid4(), secret="another-secret"),
        signed(uuid4(), cookie_name="other-cookie"),
        URLSafeTimedSerializer(SECRET, salt="session").dumps("not-a-uuid"),
        URLSafeTimedSerializer(SECRET, salt="session").dumps({"id": 1}),
    ],
)
async def test_forged_or_malformed_cookie_is_401(value):
    app = build_app(make_cookie(), Verifier(InMemoryBackend()))
    async with client_for(app) as client:
        client.cookies.set("session", value)
        assert (await client.get("/me")).status_code == 401


async def test_cookie_signed_longer_ago_than_max_age_is_401(monkeypatch):
    backend: InMemoryBackend[UUID, SessionData] = InMemoryBackend()
    session_id = uuid4()
    await backend.create(session_id, SessionData(user_id="u"))
    app = build_app(make_cookie(max_age=60), Verifier(backend))
    value = signed(session_id)
    async with client_for(app) as client:
        client.cookies.set("session", value)
        assert (await client.get("/me")).status_code == 200
        monkeypatch.setattr(time, "time", lambda real=time.time: real() + 61)
        assert (await client.get("/me")).status_code == 401


async def test_cookie_issued_by_fastapi_anchor_0_1_1_still_works():
    backend: InMemoryBackend[UUID, SessionData] = InMemoryBackend()
    session_id = uuid4()
    await backend.create(session_id, SessionData(user_id="existing"))
    app = build_app(make_cookie(), Verifier(backend))
    async with client_for(app) as client:
        client.cookies.set("session", signed(session_id))
        response = await client.get("/me")
        assert response.status_code == 200
        assert response.json()["data"] == {"user_id": "existing"}


async def test_route_never_gets_an_error_object_as_session_id_or_data():
    backend: InMemoryBackend[UUID, SessionData] = InMemoryBackend()
    app = build_app(make_cookie(auto_error=False), Verifier(backend, auto_error=False))
    async with client_for(app) as client:
        for cookie_value in (None, "junk", signed(uuid4())):
            client.cookies.clear()
            if cookie_value is not None:
                client.cookies.set("session", cookie_value)
            assert (await client.get("/id")).json()["type"] in ("NoneType", "UUID")
            assert (await client.get("/me")).json() == {"type": "NoneType", "data": None}
            assert (await client.get("/forgot-the-cookie-dependency")).json() == {"type": "NoneType"}
        client.cookies.set("session", "junk")
        assert (await client.get("/id")).json() == {"type": "NoneType"}


async def test_logging_out_twice_or_with_an_unknown_id_is_fine():
    backend: InMemoryBackend[UUID, SessionData] = InMemoryBackend()
    app = build_app(make_cookie(), Verifier(backend))
    async with client_for(app) as client:
        assert (await client.post("/login", params={"user_id": "u"})).status_code == 200
        captured = client.cookies["session"]
        assert (await client.post("/logout")).status_code == 200
        client.cookies.set("session", captured)
        assert (await client.post("/logout")).status_code == 200
        client.cookies.set("session", signed(uuid4()))  # validly signed, never created
        assert (await client.post("/logout")).status_code == 200


async def test_verifier_without_the_cookie_dependency_is_401_and_logs_the_fix(caplog):
    backend: InMemoryBackend[UUID, SessionData] = InMemoryBackend()
    app = build_app(make_cookie(), Verifier(backend))
    async with client_for(app) as client:
        await client.post("/login", params={"user_id": "u"})
        with caplog.at_level(logging.ERROR, logger="anchor_orm"):
            response = await client.get("/forgot-the-cookie-dependency")
    assert response.status_code == 401
    assert "dependencies=[Depends(cookie)]" in caplog.text


@pytest.mark.parametrize("is_async", [False, True])
async def test_verify_session_may_be_async(is_async):
    async def async_verdict(model: SessionData) -> bool:
        return model.user_id == "admin"

    def sync_verdict(model: SessionData) -> bool:
        return model.user_id == "admin"

    backend: InMemoryBackend[UUID, SessionData] = InMemoryBackend()
    app = build_app(make_cookie(), Verifier(backend, verdict=async_verdict if is_async else sync_verdict))
    async with client_for(app) as client:
        await client.post("/login", params={"user_id": "admin"})
        assert (await client.get("/me")).status_code == 200
        await client.post("/login", params={"user_id": "guest"})
        assert (await client.get("/me")).status_code == 401


def test_frontend_error_is_an_anchor_error_exported_from_the_root():
    import anchor_orm

    assert issubclass(FrontendError, anchor_orm.AnchorError)
    for name in ("FrontendError", "BackendError", "SessionBackend", "SessionFrontend", "SessionVerifier"):
        assert name in anchor_orm.__all__ and getattr(anchor_orm, name)


def test_verifier_missing_a_method_fails_at_construction():
    class Incomplete(SessionVerifier[UUID, SessionData]):
        @property
        def identifier(self) -> str:
            return "auth"

    with pytest.raises(TypeError, match="abstract"):
        Incomplete()  # type: ignore[abstract]


# What fastapi-anchor 0.1.1 offered: module, name, and the parameters of the callable
# (keyword-only ones marked with "*"). New parameters may follow, with defaults.
API_0_1_1 = [
    (
        "anchor_orm.frontends.implementations",
        "SessionCookie",
        ["*cookie_name", "*identifier", "*secret_key", "*cookie_params", "*scheme_name", "*auto_error"],
    ),
    (
        "anchor_orm.frontends.implementations",
        "CookieParameters",
        ["*max_age", "*path", "*domain", "*secure", "*httponly", "*samesite"],
    ),
    ("anchor_orm.frontends.implementations.cookie", "SameSiteEnum", None),
    ("anchor_orm.frontends.session_frontend", "SessionFrontend", None),
    ("anchor_orm.frontends.session_frontend", "FrontendError", None),
    ("anchor_orm.frontends.session_frontend", "ID", None),
    ("anchor_orm.backends", "SessionBackend", None),
    ("anchor_orm.backends.session_backend", "BackendError", None),
    ("anchor_orm.backends.session_backend", "SessionModel", None),
    ("anchor_orm.backends.implementations", "InMemoryBackend", []),
    (
        "anchor_orm.backends.implementations",
        "PostgresBackend",
        ["async_session_factory", "*table", "*expire_seconds"],
    ),
    (
        "anchor_orm.backends.implementations",
        "PostgresSessionData",
        ["*user_id", "*expires_at", "*created_at"],
    ),
    ("anchor_orm.backends.implementations", "anchor_sessions_table", ["metadata"]),
    ("anchor_orm.backends.implementations.in_memory_backend", "InMemoryBackend", []),
    (
        "anchor_orm.backends.implementations.postgres_backend",
        "SessionData",
        ["*user_id", "*expires_at", "*created_at"],
    ),
    ("anchor_orm.session_verifier", "SessionVerifier", None),
]


@pytest.mark.parametrize(
    ("module_name", "name", "parameters"), API_0_1_1, ids=[f"{m}.{n}" for m, n, _ in API_0_1_1]
)
def test_fastapi_anchor_0_1_1_names_and_parameters_are_kept(module_name, name, parameters):
    import importlib
    import inspect

    found = getattr(importlib.import_module(module_name), name)
    if parameters is None:
        return
    signature = inspect.signature(found)
    ours = [
        ("*" if parameter.kind is inspect.Parameter.KEYWORD_ONLY else "") + parameter.name
        for parameter in signature.parameters.values()
    ]
    assert ours[: len(parameters)] == parameters
    for added in list(signature.parameters.values())[len(parameters) :]:
        optional = (
            added.default is not inspect.Parameter.empty or added.kind is inspect.Parameter.VAR_POSITIONAL
        )
        assert optional, f"new parameter {added.name} needs a default"


def test_legacy_methods_are_kept():
    methods = {
        SessionCookie: [
            "__call__",
            "attach_to_response",
            "delete_from_response",
            "attach_id_state",
            "identifier",
        ],
        InMemoryBackend: ["create", "read", "update", "delete"],
        SessionVerifier: [
            "__call__",
            "identifier",
            "backend",
            "auto_error",
            "auth_http_exception",
            "verify_session",
        ],
    }
    for cls, names in methods.items():
        assert all(hasattr(cls, method) for method in names), cls
    cookie = make_cookie()
    assert (cookie.scheme_name, cookie.auto_error, cookie.model.name) == ("SessionCookie", True, "session")
    assert cookie.cookie_params == CookieParameters()


def test_openapi_shows_the_cookie_scheme():
    app = build_app(make_cookie(), Verifier(InMemoryBackend()))
    schemes = app.openapi()["components"]["securitySchemes"]
    assert schemes == {"SessionCookie": {"type": "apiKey", "in": "cookie", "name": "session"}}


COOKIE_TEXT = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0xFF, exclude_characters=";,"), max_size=300
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(COOKIE_TEXT, st.uuids().map(signed), st.uuids().map(signed).map(lambda v: v[:-1] + "A")))
def test_any_cookie_value_is_a_401_or_a_session_id_never_a_crash(value):
    cookie = make_cookie()
    header = f"session={value}".encode("latin-1")
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": [(b"cookie", header)]})
    try:
        assert isinstance(cookie(request), UUID)
    except HTTPException as refusal:
        assert refusal.status_code == 401


async def test_legacy_api_emits_no_deprecation_warning():
    # 0.1.1 called pydantic's deprecated .copy(); pytest's -W error would turn it into
    # a failure anywhere, this records every warning to name the offender.
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cookie = make_cookie(secure=True, samesite="strict")
        backend: InMemoryBackend[UUID, SessionData] = InMemoryBackend()
        session_id = uuid4()
        await backend.create(session_id, SessionData(user_id="u"))
        await backend.update(session_id, SessionData(user_id="v"))
        assert await backend.read(session_id) is not None
        response = Response()
        cookie.attach_to_response(response, session_id)
        cookie.delete_from_response(response)
    assert [str(warning.message) for warning in caught] == []
