"""Cases of CASES.md run against the example app, as its users meet them (SQLite and PostgreSQL).

tests/test_cases.py runs the same cases against the small test app; these prove the
example app, with its own routes, templates and error pages, keeps them too.
"""

from datetime import timedelta
from http.cookies import SimpleCookie

import pytest
import sqlalchemy as sa
from sqlmodel import func, select

from anchor_orm import ExpiryPolicy
from examples.app.models import UserSession
from examples.app.testing import PASSWORD, build_example, log_in, sign_up
from tests.sqlcount import count_statements

EMAIL = "ada@example.com"
COOKIE = "anchor_session"
POLICY = ExpiryPolicy()  # the example app runs on the defaults
SESSION_ENDED = "/login?notice=session-ended"


@pytest.fixture
def example(database):
    return build_example(database)


def max_age_seconds(set_cookie: str) -> int:
    cookie = SimpleCookie()
    cookie.load(set_cookie)
    return int(cookie[COOKIE]["max-age"])


async def signed_out(example, cookie: str) -> bool:
    """What the person holding ``cookie`` sees: the login page, and a 401 from the API."""
    async with example.browser(cookies={COOKIE: cookie}) as browser:
        page = await browser.get("/")
    async with example.api_client() as client:
        api = await client.get("/api/me", headers={"cookie": f"{COOKIE}={cookie}"})
    if page.status_code == 303 and page.headers["location"] == SESSION_ENDED:
        assert api.status_code == 401
        return True
    assert page.status_code == 200 and api.status_code == 200, (page.status_code, api.status_code)
    return False


async def session_row_count(example) -> int:
    async with example.database.session() as db:
        return (await db.exec(select(func.count()).select_from(UserSession))).one()


async def test_c2_busy_session_stops_at_its_absolute_lifetime(example):
    absolute = example.clock() + POLICY.absolute_lifetime
    async with example.browser() as browser:
        assert (await log_in_new(example, browser)).status_code == 303
        # A visit every 13 days keeps it inside its 14-day idle timeout, again and again.
        while example.clock() + timedelta(days=13) < absolute:
            example.clock.advance(days=13)
            assert (await browser.get("/")).status_code == 200
        cookie = browser.cookies[COOKIE]
    async with example.database.session() as db:
        row = (await db.exec(select(UserSession))).one()
        assert row.expires_at <= row.absolute_expires_at == absolute
    example.clock.advance(absolute - example.clock() - timedelta(seconds=1))
    assert not await signed_out(example, cookie)
    example.clock.advance(seconds=1)
    assert await signed_out(example, cookie)


@pytest.mark.parametrize(
    ("remember", "idle_timeout"),
    [(True, POLICY.idle_timeout), (False, POLICY.browser_session_idle_timeout)],
)
async def test_c2_idle_session_ends_one_second_past_its_idle_timeout(example, remember, idle_timeout):
    async with example.browser() as browser:
        await log_in_new(example, browser, remember=remember)
        cookie = browser.cookies[COOKIE]
    example.clock.advance(idle_timeout - timedelta(seconds=1))
    assert not await signed_out(example, cookie)  # this visit restarts the idle timeout
    example.clock.advance(idle_timeout + timedelta(seconds=1))
    assert await signed_out(example, cookie)


async def log_in_new(example, browser, remember: bool = True):
    """Signs a new account up, logs out, and logs in (with or without "remember me")."""
    await sign_up(browser, EMAIL)
    await browser.post("/logout")
    if remember:
        return await log_in(browser, EMAIL)
    return await browser.post("/login", data={"email": EMAIL, "password": PASSWORD})


async def test_c5_every_response_setting_the_cookie_is_not_cacheable(example):
    async with example.browser() as browser:
        responses = {"sign-up": await sign_up(browser, EMAIL)}
        responses["logout"] = await browser.post("/logout")
        responses["login"] = await log_in(browser, EMAIL)
        example.clock.advance(POLICY.touch_interval)
        responses["rolling refresh"] = await browser.get("/")
        responses["password change (rotation)"] = await browser.post(
            "/password", data={"current_password": PASSWORD, "new_password": "a new long password"}
        )
        example.clock.advance(minutes=6)
        responses["re-authentication (rotation)"] = await browser.post(
            "/reauthenticate", data={"password": "a new long password", "next": "/"}
        )
        responses["sign out everywhere"] = await browser.post("/sessions/revoke-all")
    for what, response in responses.items():
        assert "set-cookie" in response.headers, what
        assert response.headers["cache-control"] == "no-store", what
        assert "cookie" in response.headers["vary"].lower(), what


@pytest.mark.parametrize("cookie", [None, "junk", "a.b.c"])
async def test_c6_junk_requests_create_no_row_and_run_no_query(example, cookie):
    routes = {"/": 303, "/sessions": 303, "/login": 200, "/api/me": 401, "/api/sessions": 401}
    async with example.api_client() as client:
        with count_statements(example.database.engine) as log:
            for number in range(1000):
                path = list(routes)[number % len(routes)]
                headers = {} if cookie is None else {"cookie": f"{COOKIE}={cookie}{number}"}
                response = await client.get(path, headers=headers)
                assert response.status_code == routes[path], path
        assert log.statements == []
    assert await session_row_count(example) == 0


async def test_c8_session_table_holds_nothing_that_rebuilds_the_cookie(example):
    async with example.browser() as browser:
        await sign_up(browser, EMAIL)
        cookie = browser.cookies[COOKIE]
    signed_token = example.app.state.anchor.signer.unsign(cookie)[0]
    session_id, secret = signed_token.split(".", 1)
    async with example.database.engine.connect() as connection:
        rows = (await connection.execute(sa.text("SELECT * FROM user_session"))).all()
    stored = " ".join(str(value) for row in rows for value in row)
    assert session_id in stored  # the row is there, found by its id...
    for value in (secret, cookie, signed_token):
        assert value not in stored  # ...but what proves the cookie is not


async def test_c10_a_cookie_kept_past_max_age_is_refused_on_the_servers_clock(example):
    async with example.browser() as browser:
        response = await log_in_new(example, browser)
        max_age = max_age_seconds(response.headers["set-cookie"])
        assert max_age == POLICY.idle_timeout.total_seconds()
        example.clock.advance(seconds=max_age + 1)
        # httpx judges Max-Age by the real clock, so it keeps sending the cookie.
        response = await browser.get("/sessions")
        assert response.status_code == 303
        assert response.headers["location"].startswith(SESSION_ENDED)
        assert (await browser.get("/api/me")).status_code == 401


async def test_c11_an_expired_session_is_not_extended_then_accepted(example):
    async with example.browser() as browser:
        await log_in_new(example, browser)
        example.clock.advance(POLICY.idle_timeout)  # exactly at the idle timeout: expired
        with count_statements(example.database.engine) as log:
            assert (await browser.get("/api/me")).status_code == 401
            page = await browser.get("/")
        assert page.headers["location"] == SESSION_ENDED
        assert log.writes == []
    async with example.database.session() as db:
        row = (await db.exec(select(UserSession))).one()
        assert row.expires_at <= example.clock()


FORGED_HEADERS = {
    "cross-site": {"sec-fetch-site": "cross-site"},
    "untrusted origin": {"origin": "https://evil.example"},
    "neither header": {},
}


@pytest.mark.parametrize("forged", list(FORGED_HEADERS))
async def test_c13_cookie_writes_without_proof_of_origin_are_refused(example, forged):
    async with example.browser() as device_a, example.browser() as device_b:
        await sign_up(device_a, EMAIL)
        await log_in(device_b, EMAIL)
        sessions = (await device_a.get("/api/sessions")).json()
        (other,) = [row["id"] for row in sessions if not row["current"]]
        cookie = device_a.cookies[COOKIE]
        writes = [
            ("POST", "/api/sessions/revoke-all"),
            ("POST", "/api/sessions/revoke-others"),
            ("DELETE", f"/api/sessions/{other}"),
            ("DELETE", "/api/me"),
            ("POST", "/api/logout"),
            ("POST", "/sessions/revoke-all"),
            ("POST", f"/sessions/{other}/revoke"),
            ("POST", "/logout"),
            ("POST", "/password"),
        ]
        # A client that sends only the cookie and the forged headers, as a foreign page would.
        async with example.api_client() as attacker:
            with count_statements(example.database.engine) as log:
                for method, path in writes:
                    response = await attacker.request(
                        method, path, headers={"cookie": f"{COOKIE}={cookie}", **FORGED_HEADERS[forged]}
                    )
                    assert response.status_code == 403, (method, path)
                    assert "set-cookie" not in response.headers, (method, path)
            assert log.writes == []
        assert (await device_a.get("/")).status_code == 200
        assert (await device_b.get("/")).status_code == 200
    assert await session_row_count(example) == 2


@pytest.mark.parametrize("forged", list(FORGED_HEADERS))
async def test_c13_the_same_writes_with_a_bearer_token_are_allowed(example, forged):
    async with example.browser() as device_b:
        await sign_up(device_b, EMAIL)
        async with example.api_client() as anonymous:
            token = (await anonymous.post("/api/login", json={"email": EMAIL, "password": PASSWORD})).json()[
                "token"
            ]
        async with example.api_client(token) as script:
            headers = FORGED_HEADERS[forged]
            (other,) = [row["id"] for row in (await script.get("/api/sessions")).json() if not row["current"]]
            assert (await script.delete(f"/api/sessions/{other}", headers=headers)).status_code == 204
            assert (await device_b.get("/")).status_code == 303  # device B was signed out
            response = await script.post("/api/sessions/revoke-all", headers=headers)
            assert response.json() == {"revoked": 1}
            assert (await script.get("/api/me")).status_code == 401
    assert await session_row_count(example) == 0
