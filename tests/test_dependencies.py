"""The FastAPI dependencies: variants, Bearer, remember-me, OpenAPI, transactions."""

from datetime import timedelta

import pytest
from fastapi import Depends, FastAPI

from anchor_orm import ConfigurationError, ExpiryPolicy
from tests.app import SAME_ORIGIN, build_app
from tests.test_cases import parse_set_cookie

EMAIL = "a@example.com"


async def test_optional_session_gives_none_without_a_session(database):
    test_app = build_app(database)
    await test_app.add_account(EMAIL)
    async with test_app.client() as client:
        assert (await client.get("/maybe")).json() == {"email": None}
        junk = await client.get("/maybe", headers={"cookie": "anchor_session=junk"})
        assert junk.status_code == 200 and junk.json() == {"email": None}
        await client.post("/login", params={"email": EMAIL}, headers=SAME_ORIGIN)
        assert (await client.get("/maybe")).json() == {"email": EMAIL}


async def test_current_user_dependency(database):
    test_app = build_app(database)
    await test_app.add_account(EMAIL)
    async with test_app.client() as client:
        assert (await client.get("/whoami")).status_code == 401
        await client.post("/login", params={"email": EMAIL}, headers=SAME_ORIGIN)
        assert (await client.get("/whoami")).json() == {"email": EMAIL}


async def test_bearer_token_works_on_the_same_sessions(database):
    test_app = build_app(database)
    await test_app.add_account(EMAIL)
    async with test_app.client() as browser:
        token = (await browser.post("/login", params={"email": EMAIL}, headers=SAME_ORIGIN)).json()["token"]
    async with test_app.client() as api:
        bearer = {"authorization": f"Bearer {token}"}
        me = await api.get("/me", headers=bearer)
        assert me.status_code == 200 and me.json()["email"] == EMAIL
        assert "set-cookie" not in me.headers  # API clients get no cookie
        assert (await api.post("/logout", headers=bearer)).json() == {"revoked": True}
        assert (await api.get("/me", headers=bearer)).status_code == 401


async def test_remember_me_no_gives_a_browser_session_cookie_with_a_shorter_idle(database):
    policy = ExpiryPolicy(idle_timeout=timedelta(days=14), browser_session_idle_timeout=timedelta(hours=2))
    test_app = build_app(database, policy=policy)
    await test_app.add_account(EMAIL)
    async with test_app.client() as client:
        login = await client.post("/login", params={"email": EMAIL, "remember": "false"}, headers=SAME_ORIGIN)
        attributes = parse_set_cookie(login.headers["set-cookie"])
        assert "max-age" not in attributes and "expires" not in attributes
        test_app.clock.advance(hours=1)
        refreshed = await client.get("/me")
        assert refreshed.status_code == 200
        assert "set-cookie" not in refreshed.headers  # nothing to extend in a browser-session cookie
        test_app.clock.advance(hours=2, seconds=1)
        assert (await client.get("/me")).status_code == 401


async def test_library_writes_join_the_routes_transaction(database):
    test_app = build_app(database)
    await test_app.add_account(EMAIL)
    async with test_app.client() as client:
        await client.post("/login", params={"email": EMAIL}, headers=SAME_ORIGIN)
        failed = await client.post("/logout-everywhere-then-fail", headers=SAME_ORIGIN)
        assert failed.status_code == 500
        assert (await client.get("/me")).status_code == 200  # the revoke_all rolled back


async def test_openapi_shows_the_cookie_and_bearer_schemes(database):
    test_app = build_app(database)
    schema = test_app.app.openapi()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["session cookie"] == {"type": "apiKey", "in": "cookie", "name": "anchor_session"}
    assert schemes["session bearer token"] == {"type": "http", "scheme": "bearer"}
    me_security = schema["paths"]["/me"]["get"]["security"]
    assert {"session cookie": []} in me_security


async def test_forgetting_install_names_the_fix(database):
    test_app = build_app(database)
    bare = FastAPI()

    @bare.get("/me")
    async def me(session=Depends(test_app.anchor.get_session)):
        return {}

    import httpx

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=bare), base_url="https://x") as client:
        with pytest.raises(ConfigurationError, match=r"anchor.install\(app\)"):
            await client.get("/me", headers={"cookie": "anchor_session=x"})
