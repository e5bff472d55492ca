"""The faults of ../shared/cases/CASES.md, each a named test, on SQLite and PostgreSQL."""

import asyncio
from datetime import timedelta
from http.cookies import SimpleCookie

import pytest
from itsdangerous.encoding import base64_decode, base64_encode
from sqlmodel import func, select

from anchor_orm import ConfigurationError, CookieSettings, ExpiryPolicy
from anchor_orm._tokens import TokenSigner
from tests.app import SAME_ORIGIN, build_app
from tests.models import AccountSession
from tests.sqlcount import count_statements

EMAIL = "a@example.com"


def parse_set_cookie(header: str) -> dict[str, str]:
    cookie = SimpleCookie()
    cookie.load(header)
    (morsel,) = cookie.values()
    attributes = {key: str(value) for key, value in morsel.items() if value}
    attributes["value"] = morsel.value
    attributes["name"] = morsel.key
    return attributes


async def logged_in(test_app, client, email: str = EMAIL, **params) -> dict:
    response = await client.post("/login", params={"email": email, **params}, headers=SAME_ORIGIN)
    assert response.status_code == 200, response.text
    return response.json()


async def session_rows(database) -> int:
    async with database.session() as db:
        return (await db.exec(select(func.count()).select_from(AccountSession))).one()


@pytest.mark.parametrize("junk", ["empty", "a.b", "flipped", "5kb", "nul", "foreign-key"])
async def test_c1_junk_cookie_gets_401_without_a_query(database, junk):
    test_app = build_app(database)
    await test_app.add_account(EMAIL)
    async with test_app.client() as client:
        token = (await logged_in(test_app, client))["token"]
    payload, signature = token.rsplit(".", 1)
    signature_bytes = bytearray(base64_decode(signature))
    signature_bytes[7] ^= 0x01  # one flipped bit in one signature byte
    flipped = f"{payload}.{base64_encode(bytes(signature_bytes)).decode()}"
    values = {
        "empty": "",
        "a.b": "a.b",
        "flipped": flipped,
        "5kb": "x" * 5000,
        "nul": token[:10] + "\x00" + token[10:],
        "foreign-key": TokenSigner(["another-app-key-that-we-never-had-0123"]).sign(token.rsplit(".", 1)[0]),
    }
    async with test_app.client() as client:
        with count_statements(database.engine) as log:
            response = await client.get("/me", headers={"cookie": f"anchor_session={values[junk]}"})
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert log.statements == []


async def test_c2_busy_session_stops_at_its_absolute_lifetime(database):
    policy = ExpiryPolicy(
        idle_timeout=timedelta(hours=1),
        absolute_lifetime=timedelta(hours=3),
        touch_interval=timedelta(seconds=30),
    )
    test_app = build_app(database, policy=policy)
    await test_app.add_account(EMAIL)
    async with test_app.client() as client:
        login = await logged_in(test_app, client)
        absolute = test_app.clock() + policy.absolute_lifetime
        while test_app.clock() < absolute - timedelta(seconds=5):
            test_app.clock.advance(seconds=5 * 60)
            response = await client.get("/me")
            if test_app.clock() < absolute:
                assert response.status_code == 200
        async with database.session() as db:
            row = await db.get(AccountSession, login["session_id"])
            assert row.expires_at <= row.absolute_expires_at == absolute
        test_app.clock.advance(minutes=5)
        assert (await client.get("/me")).status_code == 401


async def test_c2_idle_session_expires_one_second_past_its_timeout(database):
    policy = ExpiryPolicy(idle_timeout=timedelta(hours=1))
    test_app = build_app(database, policy=policy)
    await test_app.add_account(EMAIL)
    async with test_app.client() as client:
        await logged_in(test_app, client)
        test_app.clock.advance(policy.idle_timeout + timedelta(seconds=1))
        assert (await client.get("/me")).status_code == 401


@pytest.mark.parametrize("how", ["logout", "revoke-one", "revoke-all"])
async def test_c3_captured_cookie_is_refused_after_logout(database, how):
    test_app = build_app(database)
    await test_app.add_account(EMAIL)
    async with test_app.client() as victim, test_app.client() as other_device:
        login = await logged_in(test_app, victim)
        await logged_in(test_app, other_device)
        captured = victim.cookies["anchor_session"]
        if how == "logout":
            assert (await victim.post("/logout", headers=SAME_ORIGIN)).status_code == 200
        elif how == "revoke-one":
            url = f"/sessions/{login['session_id']}/revoke"
            assert (await other_device.post(url, headers=SAME_ORIGIN)).json() == {"revoked": True}
        else:
            assert (await other_device.post("/logout-everywhere", headers=SAME_ORIGIN)).status_code == 200
    async with test_app.client() as attacker:
        response = await attacker.get("/me", headers={"cookie": f"anchor_session={captured}"})
        assert response.status_code == 401


async def test_c4_logout_clears_the_cookie_it_set(database):
    cookie = CookieSettings(name="__Host-session")
    test_app = build_app(database, cookie=cookie)
    await test_app.add_account(EMAIL)
    async with test_app.client() as client:
        login = await client.post("/login", params={"email": EMAIL}, headers=SAME_ORIGIN)
        logout = await client.post("/logout", headers=SAME_ORIGIN)
    set_attributes = parse_set_cookie(login.headers["set-cookie"])
    clear_attributes = parse_set_cookie(logout.headers["set-cookie"])
    for attribute in ("name", "path", "domain", "secure", "samesite", "httponly"):
        assert set_attributes.get(attribute) == clear_attributes.get(attribute), attribute
    assert set_attributes["name"] == "__Host-session"
    assert set_attributes["path"] == "/" and "domain" not in set_attributes
    assert clear_attributes["max-age"] == "0"
    assert clear_attributes["value"] == ""


async def test_c5_every_response_setting_the_cookie_is_not_cacheable(database):
    test_app = build_app(database)
    await test_app.add_account(EMAIL)
    async with test_app.client() as client:
        responses = {"login": await client.post("/login", params={"email": EMAIL}, headers=SAME_ORIGIN)}
        test_app.clock.advance(test_app.anchor.policy.touch_interval)
        responses["rolling refresh"] = await client.get("/me")
        responses["rotation"] = await client.post("/change-password", headers=SAME_ORIGIN)
        responses["logout"] = await client.post("/logout", headers=SAME_ORIGIN)
    for what, response in responses.items():
        assert "set-cookie" in response.headers, what
        assert response.headers["cache-control"] == "no-store", what
        assert "Cookie" in response.headers["vary"], what


async def test_c6_junk_requests_create_no_row_and_run_no_query(database):
    test_app = build_app(database)
    async with test_app.client() as client:
        with count_statements(database.engine) as log:
            for number in range(3000):
                headers = {} if number % 3 == 0 else {"cookie": f"anchor_session=junk{number}.x.y"}
                response = await client.get("/me", headers=headers)
                assert response.status_code == 401
        assert log.statements == []
    assert await session_rows(database) == 0


async def test_c7_login_always_issues_a_new_token(database):
    test_app = build_app(database)
    await test_app.add_account("a@example.com")
    await test_app.add_account("b@example.com")
    async with test_app.client() as client:
        await logged_in(test_app, client, "a@example.com")
        cookie_x = client.cookies["anchor_session"]
        # Logging in as B on a browser that carries A's cookie X.
        await logged_in(test_app, client, "b@example.com")
        cookie_y = client.cookies["anchor_session"]
        assert cookie_y != cookie_x
        assert (await client.get("/me")).json()["email"] == "b@example.com"
    async with test_app.client() as attacker:
        response = await attacker.get("/me", headers={"cookie": f"anchor_session={cookie_x}"})
        assert response.status_code == 401  # X gained nothing, not even A's old session


async def test_c7_login_as_same_user_with_valid_cookie_rotates(database):
    test_app = build_app(database)
    await test_app.add_account(EMAIL)
    async with test_app.client() as client:
        first = await logged_in(test_app, client)
        second = await logged_in(test_app, client)
        assert first["session_id"] != second["session_id"]
        assert first["token"] != second["token"]
    assert await session_rows(database) == 1


async def test_c8_table_holds_nothing_that_rebuilds_the_cookie(database):
    test_app = build_app(database)
    await test_app.add_account(EMAIL)
    async with test_app.client() as client:
        await logged_in(test_app, client)
        cookie_value = client.cookies["anchor_session"]
    secret = test_app.anchor.signer.unsign(cookie_value)[0].split(".")[1]
    async with database.session() as db:
        row = (await db.exec(select(AccountSession))).one()
        dumped = str(row.model_dump())
    assert secret not in dumped and cookie_value not in dumped


async def test_c10_server_refuses_a_cookie_kept_past_max_age(database):
    policy = ExpiryPolicy(idle_timeout=timedelta(hours=2))
    test_app = build_app(database, policy=policy)
    await test_app.add_account(EMAIL)
    async with test_app.client() as client:
        login = await client.post("/login", params={"email": EMAIL}, headers=SAME_ORIGIN)
        max_age = int(parse_set_cookie(login.headers["set-cookie"])["max-age"])
        assert max_age == 2 * 3600
        test_app.clock.advance(seconds=max_age + 1)
        # httpx ignores Max-Age against our moved clock: it keeps sending the cookie.
        assert (await client.get("/me")).status_code == 401


async def test_c11_expired_session_is_not_extended_then_accepted(database):
    policy = ExpiryPolicy(idle_timeout=timedelta(hours=1))
    test_app = build_app(database, policy=policy)
    await test_app.add_account(EMAIL)
    async with test_app.client() as client:
        login = await logged_in(test_app, client)
        test_app.clock.advance(hours=1)  # exactly at the idle timeout: expired
        with count_statements(database.engine) as log:
            assert (await client.get("/me")).status_code == 401
        assert log.writes == []
    async with database.session() as db:
        row = await db.get(AccountSession, login["session_id"])
        assert row.expires_at <= test_app.clock()


@pytest.mark.parametrize(
    ("settings", "fix"),
    [
        ({"name": "__Host-s", "secure": False}, "__Host- cookie needs secure=True"),
        ({"name": "__Host-s", "path": "/app"}, "__Host- cookie needs"),
        ({"name": "__Host-s", "domain": "example.com"}, "__Host- cookie needs"),
        ({"samesite": "none", "secure": False}, "set secure=True"),
        ({"samesite": "sometimes"}, "use 'lax'"),
        ({"name": "bad name"}, "not a valid cookie name"),
        ({"name": "nul\x00name"}, "not a valid cookie name"),
        ({"name": "__host-s", "secure": False}, "__Host- cookie needs secure=True"),
        ({"name": "__HOST-s", "domain": "example.com"}, "__Host- cookie needs"),
        ({"name": "__secure-s", "secure": False}, "__Secure- cookie needs secure=True"),
        ({"samesite": None}, "use 'lax'"),
        ({"path": "/; Domain=evil.example"}, "would split the Set-Cookie header"),
        ({"domain": "example.com; SameSite=None"}, "would split the Set-Cookie header"),
    ],
)
def test_c12_contradictory_cookie_settings_are_refused(settings, fix):
    with pytest.raises(ConfigurationError, match=fix):
        CookieSettings(**settings)


@pytest.mark.parametrize(
    ("keys", "fix"),
    [
        ([], "secret_keys is empty"),
        (["short"], "at least 32"),
        ([" " * 40], "at least 32"),
        ("a" * 40, "takes a list"),
        (None, "secret_keys is None"),
        ([None], "is that variable set"),
    ],
)
def test_c12_empty_or_short_secret_key_is_refused(keys, fix):
    with pytest.raises(ConfigurationError, match=fix):
        TokenSigner(keys)


def test_c12_cookie_defaults_are_the_safe_ones():
    header = CookieSettings().set_cookie_header("v", 10)
    attributes = parse_set_cookie(header)
    assert attributes["secure"] and attributes["httponly"]
    assert attributes["samesite"] == "Lax" and attributes["path"] == "/"


@pytest.mark.parametrize(
    ("samesite", "written"), [("lax", "Lax"), ("strict", "Strict"), ("none", "None"), ("LAX", "Lax")]
)
def test_c14_samesite_is_written_as_browsers_read_it(samesite, written):
    header = CookieSettings(samesite=samesite).set_cookie_header("v", 10)
    assert f"SameSite={written}" in header.split("; ")


async def test_c15_logout_twice_or_without_cookie_is_fine(database):
    test_app = build_app(database)
    await test_app.add_account(EMAIL)
    async with test_app.client() as client:
        await logged_in(test_app, client)
        captured = client.cookies["anchor_session"]
        first = await client.post("/logout", headers=SAME_ORIGIN)
        assert first.status_code == 200 and first.json() == {"revoked": True}
        again = await client.post("/logout", headers={**SAME_ORIGIN, "cookie": f"anchor_session={captured}"})
        assert again.status_code == 200 and again.json() == {"revoked": False}
    async with test_app.client() as anonymous:
        response = await anonymous.post("/logout", headers=SAME_ORIGIN)
        assert response.status_code == 200 and response.json() == {"revoked": False}


async def test_c16_cookie_reaches_the_client_through_a_redirect(database):
    test_app = build_app(database)
    await test_app.add_account(EMAIL)
    async with test_app.client() as client:
        response = await client.post("/login-redirect", params={"email": EMAIL}, headers=SAME_ORIGIN)
        assert response.status_code == 303
        assert "anchor_session=" in response.headers["set-cookie"]
        assert (await client.get("/me")).status_code == 200


async def test_c16_rolling_refresh_reaches_the_client_through_an_html_response(database):
    test_app = build_app(database)
    await test_app.add_account(EMAIL)
    async with test_app.client() as client:
        await logged_in(test_app, client)
        not_due = await client.get("/page")
        assert "set-cookie" not in not_due.headers  # sent again only when extended
        test_app.clock.advance(test_app.anchor.policy.touch_interval)
        due = await client.get("/page")
        assert due.headers["content-type"].startswith("text/html")
        assert int(parse_set_cookie(due.headers["set-cookie"])["max-age"]) == int(
            test_app.anchor.policy.idle_timeout.total_seconds()
        )


async def test_c17_password_change_ends_other_devices_and_keeps_this_one(database):
    test_app = build_app(database)
    await test_app.add_account(EMAIL)
    async with test_app.client() as device_a, test_app.client() as device_b:
        await logged_in(test_app, device_a)
        await logged_in(test_app, device_b)
        old_cookie_a = device_a.cookies["anchor_session"]
        response = await device_a.post("/change-password", headers=SAME_ORIGIN)
        assert response.json() == {"revoked": 1}
        assert device_a.cookies["anchor_session"] != old_cookie_a
        assert (await device_b.get("/me")).status_code == 401
        assert (await device_a.get("/me")).status_code == 200
    async with test_app.client() as attacker:
        stale = await attacker.get("/me", headers={"cookie": f"anchor_session={old_cookie_a}"})
        assert stale.status_code == 401


async def test_c9_parallel_requests_at_a_due_touch(database):
    test_app = build_app(database)
    await test_app.add_account(EMAIL)
    async with test_app.client() as client:
        login = await logged_in(test_app, client)
        async with database.session() as db:
            before = (await db.get(AccountSession, login["session_id"])).expires_at
        test_app.clock.advance(test_app.anchor.policy.touch_interval)
        with count_statements(database.engine) as log:
            responses = await asyncio.gather(*(client.get("/me") for _ in range(50)))
        assert [r.status_code for r in responses] == [200] * 50
        assert len(log.of_kind("UPDATE")) <= 1
    async with database.session() as db:
        rows = (await db.exec(select(AccountSession))).all()
        assert len(rows) == 1
        assert rows[0].expires_at > before
