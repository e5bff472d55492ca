"""CSRF, freshness, key rotation, bad input, faults and concurrency (issue 6)."""

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import func, select

from anchor_orm import ConfigurationError, ExpiryPolicy, create_engine
from anchor_orm._csrf import CSRFGuard
from anchor_orm._engine import async_url
from anchor_orm._tokens import TokenSigner
from anchor_orm.testing import TestDatabase
from tests.app import BASE_URL, SAME_ORIGIN, SECRET_KEY, build_app
from tests.models import AccountSession
from tests.sqlcount import count_statements

EMAIL = "a@example.com"
OLD_KEY = SECRET_KEY
NEW_KEY = "new-secret-key-abcdefghijklmnopqrstuvwxyz012345"


async def log_in(client: httpx.AsyncClient, email: str = EMAIL) -> dict:
    response = await client.post("/login", params={"email": email}, headers=SAME_ORIGIN)
    assert response.status_code == 200, response.text
    return response.json()


async def session_rows(database) -> int:
    async with database.session() as db:
        return (await db.exec(select(func.count()).select_from(AccountSession))).one()


# --- CSRF (case C13) ---------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize(
    "headers",
    [
        {"sec-fetch-site": "cross-site", "origin": "https://evil.example"},
        {"sec-fetch-site": "same-site", "origin": "https://sub.testserver"},
        {"origin": "https://evil.example"},
        {},
    ],
    ids=["cross-site", "same-site-untrusted", "untrusted-origin", "no-headers"],
)
async def test_c13_cookie_authenticated_write_from_elsewhere_is_403(database, method, headers):
    test_app = build_app(database)
    await test_app.add_account(EMAIL)

    async with test_app.client() as client:
        await log_in(client)
        with count_statements(database.engine) as log:
            response = await client.request(method, "/note", headers=headers)
        assert response.status_code == 403
        assert "refused" in response.json()["detail"]
        assert log.statements == []
    assert await session_rows(database) == 1


@pytest.mark.parametrize("route", ["/logout", "/logout-everywhere", "/change-password"])
@pytest.mark.parametrize(
    "headers",
    [{"sec-fetch-site": "same-site"}, {"origin": "https://evil.example"}, {}],
    ids=["same-site", "untrusted-origin", "no-headers"],
)
async def test_c13_forged_logout_and_revocation_are_403_and_write_nothing(database, route, headers):
    """A sibling site's auto-submitted form must not even log the victim out."""
    test_app = build_app(database)
    await test_app.add_account(EMAIL)
    async with test_app.client() as client:
        await log_in(client)
        with count_statements(database.engine) as log:
            response = await client.post(route, headers=headers)
        assert response.status_code == 403
        assert "set-cookie" not in response.headers
        assert log.writes == []
        assert (await client.get("/me")).status_code == 200
    assert await session_rows(database) == 1


async def test_c13_same_origin_write_and_bearer_write_are_allowed(database):
    test_app = build_app(database)
    await test_app.add_account(EMAIL)
    async with test_app.client() as client:
        token = (await log_in(client))["token"]
        assert (await client.post("/note", headers=SAME_ORIGIN)).status_code == 200
        assert (await client.post("/note", headers={"origin": BASE_URL})).status_code == 200
    async with test_app.client() as api_client:
        cross_site = {"sec-fetch-site": "cross-site", "authorization": f"Bearer {token}"}
        response = await api_client.post("/note", headers=cross_site)
        assert response.status_code == 200 and response.json() == {"written_by": EMAIL}


async def test_trusted_origin_may_write(database):
    test_app = build_app(database, trusted_origins=["https://app.example.com"])
    await test_app.add_account(EMAIL)
    async with test_app.client() as client:
        await log_in(client)
        headers = {"sec-fetch-site": "same-site", "origin": "https://app.example.com"}
        assert (await client.post("/note", headers=headers)).status_code == 200
        assert (await client.post("/note", headers={"origin": "https://app.example.com/"})).status_code == 200


async def test_route_can_opt_out_of_the_csrf_guard(database):
    test_app = build_app(database)
    await test_app.add_account(EMAIL)
    async with test_app.client() as client:
        await log_in(client)
        assert (await client.post("/note", headers={"sec-fetch-site": "cross-site"})).status_code == 403
        assert (await client.post("/webhook", headers={"sec-fetch-site": "cross-site"})).status_code == 200


async def test_login_form_is_csrf_protected(database):
    test_app = build_app(database)
    await test_app.add_account(EMAIL)
    async with test_app.client() as client:
        forged = await client.post(
            "/login", params={"email": EMAIL}, headers={"origin": "https://evil.example"}
        )
        assert forged.status_code == 403
        assert "set-cookie" not in forged.headers
    assert await session_rows(database) == 0


# --- Freshness -----------------------------------------------------------------------


async def test_fresh_login_required_and_renewed_by_reauthentication(database):
    test_app = build_app(database)
    await test_app.add_account(EMAIL)
    async with test_app.client() as client:
        login = await log_in(client)
        assert (await client.post("/delete-account", headers=SAME_ORIGIN)).status_code == 200
        test_app.clock.advance(minutes=6)
        stale = await client.post("/delete-account", headers=SAME_ORIGIN)
        assert stale.status_code == 403
        assert "recent login" in stale.json()["detail"]
        assert (await client.post("/reauthenticate", headers=SAME_ORIGIN)).status_code == 200
        assert (await client.post("/delete-account", headers=SAME_ORIGIN)).status_code == 200
    async with database.session() as db:
        row = await db.get(AccountSession, login["session_id"])
        assert row.created_at == row.authenticated_at - timedelta(minutes=6)
        assert row.absolute_expires_at == row.created_at + test_app.anchor.policy.absolute_lifetime


# --- Key rotation --------------------------------------------------------------------


async def test_key_rotation_old_and_new_verify_and_old_cookies_are_resigned(database):
    before = build_app(database, secret_keys=[OLD_KEY])
    await before.add_account(EMAIL)
    async with before.client() as client:
        await log_in(client)
        old_cookie = client.cookies["anchor_session"]
    during = build_app(database, secret_keys=[OLD_KEY, NEW_KEY], clock=before.clock)
    async with during.client() as client:
        response = await client.get("/me", headers={"cookie": f"anchor_session={old_cookie}"})
        assert response.status_code == 200
        resigned = response.headers["set-cookie"].split(";")[0].split("=", 1)[1]
        assert resigned != old_cookie
        assert TokenSigner([NEW_KEY]).unsign(resigned) is not None
        assert TokenSigner([NEW_KEY]).unsign(old_cookie) is None
    after = build_app(database, secret_keys=[NEW_KEY], clock=before.clock)
    async with after.client() as client:
        assert (
            await client.get("/me", headers={"cookie": f"anchor_session={old_cookie}"})
        ).status_code == 401
        assert (await client.get("/me", headers={"cookie": f"anchor_session={resigned}"})).status_code == 200


# --- Bad input (C1 and more) -----------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer",
        "Bearer ",
        "Bearer a.b",
        "Basic dXNlcjpwYXNz",
        "bearer " + "x" * 10000,
        "Bearer \u00e9t\u00e9".encode(),
        "Token abc",
    ],
)
async def test_malformed_bearer_is_401_without_a_query(database, authorization):
    test_app = build_app(database)
    async with test_app.client() as client:
        with count_statements(database.engine) as log:
            response = await client.get("/me", headers={"authorization": authorization})
        assert response.status_code == 401
        assert log.statements == []


async def test_duplicate_and_non_ascii_cookies_are_401(database):
    test_app = build_app(database)
    await test_app.add_account(EMAIL)
    async with test_app.client() as client:
        token = (await log_in(client))["token"]
    async with test_app.client() as client:
        duplicate = await client.get("/me", headers={"cookie": "anchor_session=junk; anchor_session=junk2"})
        assert duplicate.status_code == 401
        non_ascii = await client.get("/me", headers={"cookie": "anchor_session=caf\u00e9".encode()})
        assert non_ascii.status_code == 401
        huge = await client.get(
            "/me", headers={"cookie": "anchor_session=" + "a" * 60_000, "x-pad": "b" * 60_000}
        )
        assert huge.status_code == 401
        # A good token in the last duplicate still works (Starlette keeps the last).
        good = await client.get("/me", headers={"cookie": f"anchor_session=junk; anchor_session={token}"})
        assert good.status_code == 200


header_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=300
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cookie_value=header_text, authorization=st.one_of(st.none(), header_text))
async def test_arbitrary_cookie_and_header_values_never_give_500(database, cookie_value, authorization):
    test_app = build_app(database)
    headers = {"cookie": f"anchor_session={cookie_value}".encode("latin-1")}
    if authorization is not None:
        headers["authorization"] = authorization.encode("latin-1")
    async with test_app.client() as client:
        with count_statements(database.engine) as log:
            response = await client.get("/me", headers=headers)
            written = await client.post("/note", headers={**headers, **SAME_ORIGIN})
    assert response.status_code == 401
    assert written.status_code == 401
    assert log.statements == []


async def test_another_authorization_scheme_does_not_hide_the_cookie(database):
    """A staging proxy's Basic auth header must not log the user out."""
    test_app = build_app(database)
    await test_app.add_account(EMAIL)
    async with test_app.client() as client:
        await log_in(client)
        response = await client.get("/me", headers={"authorization": "Basic dXNlcjpwYXNz"})
        assert response.status_code == 200
    async with test_app.client() as anonymous:
        assert (
            await anonymous.get("/me", headers={"authorization": "Basic dXNlcjpwYXNz"})
        ).status_code == 401


async def test_a_touch_that_rolls_back_keeps_the_cookie_and_is_retried(database):
    policy = ExpiryPolicy(idle_timeout=timedelta(hours=1), touch_interval=timedelta(minutes=50))
    test_app = build_app(database, policy=policy)
    await test_app.add_account(EMAIL)
    async with test_app.client() as client:
        await log_in(client)
        test_app.clock.advance(minutes=50)
        failed = await client.post("/logout-everywhere-then-fail", headers=SAME_ORIGIN)
        assert failed.status_code == 500
        assert "set-cookie" not in failed.headers  # the extension rolled back with the rest
        test_app.clock.advance(minutes=5)
        retried = await client.get("/me")
        assert retried.status_code == 200 and "set-cookie" in retried.headers
        test_app.clock.advance(minutes=11)  # 66 minutes after login, 11 after the touch
        assert (await client.get("/me")).status_code == 200


async def test_authenticated_responses_are_private_to_the_cookie(database):
    test_app = build_app(database)
    await test_app.add_account(EMAIL)
    async with test_app.client() as client:
        await log_in(client)
        response = await client.get("/me")
        assert "set-cookie" not in response.headers
        assert response.headers["cache-control"] == "private"
        assert response.headers["vary"] == "Cookie"


# --- Faults ----------------------------------------------------------------------------


@asynccontextmanager
async def unreachable_database(kind: str) -> AsyncIterator[TestDatabase]:
    if kind == "refused":
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        url = sa.make_url(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/test")
        engine = create_engine(url, connect_args={"timeout": 2})
        yield TestDatabase("postgresql", url, engine)
        await engine.dispose()
        return
    # A server that accepts connections and never answers: the driver times out.
    accepted: list[asyncio.StreamWriter] = []

    async def never_answer(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    url = sa.make_url(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/test")
    engine = create_engine(url, connect_args={"timeout": 1})
    try:
        yield TestDatabase("postgresql", url, engine)
    finally:
        await engine.dispose()
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("fault", ["refused", "hangs"])
async def test_database_down_during_validation_is_503_with_a_message(fault):
    async with unreachable_database(fault) as database:
        test_app = build_app(database)
        token = test_app.anchor.signer.sign(
            "AAAAAAAAAAAAAAAAAAAAAA.BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
        )
        async with test_app.client() as client:
            response = await client.get("/me", headers={"cookie": f"anchor_session={token}"})
    assert response.status_code == 503
    assert response.json() == {"detail": "The session store is unavailable; please try again shortly."}
    assert "Traceback" not in response.text


async def test_no_cookie_for_a_login_whose_transaction_rolled_back(database):
    test_app = build_app(database)
    await test_app.add_account(EMAIL)
    async with test_app.client() as client:
        response = await client.post("/login-then-fail", params={"email": EMAIL}, headers=SAME_ORIGIN)
        assert response.status_code == 409
        assert "set-cookie" not in response.headers
    assert await session_rows(database) == 0


async def test_commit_after_the_response_is_refused_with_the_fix(database):
    """With get_db's default scope the commit runs after the response is sent: the cookie
    would name a row that may never be saved, so the login fails loudly instead."""
    test_app = build_app(database, db_scope="request")
    await test_app.add_account(EMAIL)
    # The refused late commit is raised after the response, as a server would log it.
    transport = httpx.ASGITransport(app=test_app.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        response = await client.post("/login", params={"email": EMAIL}, headers=SAME_ORIGIN)
    assert response.status_code == 500
    assert "set-cookie" not in response.headers
    assert 'Depends(get_db, scope="function")' in response.json()["detail"]
    # The late commit was refused too: the database agrees with what the client was told.
    assert await session_rows(database) == 0


async def test_logout_while_the_database_is_down_is_503():
    async with unreachable_database("refused") as database:
        test_app = build_app(database)
        token = test_app.anchor.signer.sign(
            "AAAAAAAAAAAAAAAAAAAAAA.BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
        )
        async with test_app.client() as client:
            headers = {**SAME_ORIGIN, "cookie": f"anchor_session={token}"}
            response = await client.post("/logout", headers=headers)
    assert response.status_code == 503
    assert "set-cookie" not in response.headers  # nothing was revoked: keep the cookie


@pytest.mark.parametrize("origins", [["*"], ["a.example"], ["https://a.example/path"], "https://a.example"])
def test_trusted_origins_that_can_never_match_are_refused(origins):
    with pytest.raises(ConfigurationError, match="trusted"):
        CSRFGuard(origins)


def test_plain_database_urls_get_the_async_driver():
    assert async_url("postgresql://u@h/db").drivername == "postgresql+asyncpg"
    assert async_url("sqlite:///./x.db").drivername == "sqlite+aiosqlite"
    assert async_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"


# --- Concurrency -------------------------------------------------------------------------


async def test_logout_during_a_slow_request_stays_revoked(database):
    test_app = build_app(database)
    await test_app.add_account(EMAIL)
    async with test_app.client() as client:
        await log_in(client)
        cookie = client.cookies["anchor_session"]
        slow = asyncio.create_task(client.get("/slow"))
        await test_app.app.state.slow_started.wait()
        assert (await client.post("/logout", headers=SAME_ORIGIN)).status_code == 200
        test_app.app.state.slow_release.set()
        assert (await slow).status_code == 200
    async with test_app.client() as client:
        assert (await client.get("/me", headers={"cookie": f"anchor_session={cookie}"})).status_code == 401
    assert await session_rows(database) == 0


async def test_concurrent_rotations_hand_out_exactly_one_working_cookie(database):
    test_app = build_app(database)
    await test_app.add_account(EMAIL)
    async with test_app.client() as client:
        await log_in(client)
        cookie = client.cookies["anchor_session"]
    headers = {**SAME_ORIGIN, "cookie": f"anchor_session={cookie}"}
    async with test_app.client() as racer:
        responses = await asyncio.gather(*(racer.post("/reauthenticate", headers=headers) for _ in range(8)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 1, statuses
    assert set(statuses) <= {200, 401, 409}
    (winner,) = [r for r in responses if r.status_code == 200]
    new_cookie = winner.headers["set-cookie"].split(";")[0].split("=", 1)[1]
    async with test_app.client() as client:
        assert (
            await client.get("/me", headers={"cookie": f"anchor_session={new_cookie}"})
        ).status_code == 200
        assert (await client.get("/me", headers={"cookie": f"anchor_session={cookie}"})).status_code == 401


async def test_interleaved_requests_of_two_users_each_see_their_own(database):
    test_app = build_app(database)
    await test_app.add_account("a@example.com")
    await test_app.add_account("b@example.com")
    async with test_app.client() as alice, test_app.client() as bob:
        await log_in(alice, "a@example.com")
        await log_in(bob, "b@example.com")
        requests = [(alice, "a@example.com") if n % 2 else (bob, "b@example.com") for n in range(500)]
        semaphore = asyncio.Semaphore(32)

        async def check(client: httpx.AsyncClient, email: str) -> bool:
            async with semaphore:
                response = await client.get("/me")
            return response.status_code == 200 and response.json()["email"] == email

        results = await asyncio.gather(*(check(client, email) for client, email in requests))
    assert all(results)
