"""The example app's whole story, as a person in a browser lives it (SQLite and PostgreSQL)."""

import re
from contextlib import asynccontextmanager

import pytest
from sqlmodel import select

from examples.app.models import User, UserSession
from examples.app.testing import (
    PASSWORD,
    SAFARI_ON_IPHONE,
    build_example,
    log_in,
    sign_up,
)

EMAIL = "ada@example.com"


@pytest.fixture
def example(database):
    return build_example(database)


def session_ids(page_html: str) -> list[str]:
    return re.findall(r'data-session-id="([^"]+)"', page_html)


def current_session_id(page_html: str) -> str:
    return re.findall(r'class="session current" data-session-id="([^"]+)"', page_html)[0]


@asynccontextmanager
async def two_devices(example):
    """Device A signs up; device B (an iPhone) logs in as the same user."""
    async with example.browser() as device_a, example.browser(user_agent=SAFARI_ON_IPHONE) as device_b:
        assert (await sign_up(device_a, EMAIL)).status_code == 303
        assert (await log_in(device_b, EMAIL)).status_code == 303
        yield device_a, device_b


async def test_sign_up_logs_in_and_shows_me(example):
    async with example.browser() as browser:
        response = await sign_up(browser, "  Ada@Example.com ")
        assert response.status_code == 303
        assert response.headers["location"] == "/?notice=signed-up"
        me = await browser.get(response.headers["location"])
        assert me.status_code == 200
        assert '<span id="email">ada@example.com</span>' in me.text
        assert "Firefox 133 on macOS" in me.text
        assert "Your account is ready" in me.text


async def test_signup_refuses_a_taken_email_and_a_short_password(example):
    async with example.browser() as first, example.browser() as second:
        await sign_up(first, EMAIL)
        taken = await sign_up(second, EMAIL)
        assert taken.status_code == 400
        assert "already exists" in taken.text
        short = await sign_up(second, "bob@example.com", "short")
        assert short.status_code == 400
        assert "at least 8 characters" in short.text
        assert "set-cookie" not in taken.headers and "set-cookie" not in short.headers
    async with example.database.session() as db:
        assert len((await db.exec(select(User))).all()) == 1


async def test_wrong_password_or_unknown_email_gets_one_message_and_no_cookie(example):
    async with example.browser() as browser:
        await sign_up(browser, EMAIL)
        await browser.post("/logout")
        for email, password in ((EMAIL, "not the password"), ("nobody@example.com", PASSWORD)):
            response = await log_in(browser, email, password)
            assert response.status_code == 400
            assert "Wrong email or password." in response.text
            assert "set-cookie" not in response.headers
        assert (await browser.get("/")).headers["location"] == "/login"


async def test_signed_out_pages_go_to_the_login_page_and_back_after_it(example):
    async with example.browser() as browser:
        await sign_up(browser, EMAIL)
        await browser.post("/logout")
        response = await browser.get("/sessions")
        assert response.status_code == 303
        assert response.headers["location"] == "/login?next=%2Fsessions"
        login_page = await browser.get("/login?next=/sessions")
        assert 'name="next" value="/sessions"' in login_page.text
        logged_in = await log_in(browser, EMAIL, next="/sessions")
        assert logged_in.headers["location"] == "/sessions"
        assert (await browser.get("/sessions")).status_code == 200


async def test_login_never_sends_the_browser_to_another_site(example):
    async with example.browser() as browser:
        await sign_up(browser, EMAIL)
        await browser.post("/logout")
        for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
            response = await log_in(browser, EMAIL, next=target)
            assert response.headers["location"] == "/"


async def test_log_out_ends_the_session_even_for_a_copied_cookie(example):
    async with example.browser() as browser:
        await sign_up(browser, EMAIL)
        copied_cookie = browser.cookies["anchor_session"]
        response = await browser.post("/logout")
        assert response.headers["location"] == "/login?notice=signed-out"
        assert "Max-Age=0" in response.headers["set-cookie"]
    async with example.browser(cookies={"anchor_session": copied_cookie}) as thief:
        response = await thief.get("/")
        assert response.status_code == 303
        assert response.headers["location"] == "/login?notice=session-ended"
        assert "You are signed out" not in (await thief.get("/login?notice=session-ended")).text


async def test_the_session_cookie_is_secure_httponly_and_lax(example):
    async with example.browser() as browser:
        login_cookie = (await sign_up(browser, EMAIL)).headers["set-cookie"]
        logout_cookie = (await browser.post("/logout")).headers["set-cookie"]
    for header in (login_cookie, logout_cookie):
        attributes = [part.strip() for part in header.split(";")]
        assert {"Path=/", "Secure", "HttpOnly", "SameSite=Lax"} <= set(attributes)
    assert re.search(r"Max-Age=\d{6,}", login_cookie)  # 14 days, kept across restarts
    assert "Max-Age=0" in logout_cookie


async def test_without_remember_me_the_cookie_dies_with_the_browser(example):
    async with example.browser() as browser:
        await sign_up(browser, EMAIL)
        await browser.post("/logout")
        response = await browser.post("/login", data={"email": EMAIL, "password": PASSWORD})
        assert response.status_code == 303
        assert "Max-Age" not in response.headers["set-cookie"]
        assert "or when the browser closes" in (await browser.get("/")).text


async def test_sessions_page_shows_each_device_and_marks_this_one(example):
    async with two_devices(example) as (device_a, device_b):
        example.clock.advance(minutes=3)
        page_a = (await device_a.get("/sessions")).text
        page_b = (await device_b.get("/sessions")).text
    assert len(session_ids(page_a)) == 2
    assert session_ids(page_a) == session_ids(page_b)
    assert current_session_id(page_a) != current_session_id(page_b)
    assert page_a.count("This device") == 1
    for expected in ("Firefox 133", "macOS", "Safari 18", "iOS", "127.0.0.1", "3 minutes ago"):
        assert expected in page_a
    # The row of this device offers "Log out"; the other one "Sign out".
    assert page_a.count('action="/logout"><button class="secondary">') == 1
    assert page_a.count('/revoke"><button class="danger"') == 1


async def test_device_a_signs_out_device_b(example):
    async with two_devices(example) as (device_a, device_b):
        page_a = (await device_a.get("/sessions")).text
        this_device = current_session_id(page_a)
        (device_b_id,) = [sid for sid in session_ids(page_a) if sid != this_device]

        response = await device_a.post(f"/sessions/{device_b_id}/revoke")
        assert response.headers["location"] == "/sessions?notice=revoked"
        page_a = (await device_a.get("/sessions?notice=revoked")).text
        assert session_ids(page_a) == [this_device]
        assert "That session is signed out." in page_a

        # Device B's next page load lands on the login page. Its dead cookie is left
        # alone (clearing it could race a rotation's new cookie); it opens nothing.
        response = await device_b.get("/sessions")
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?notice=session-ended")
        assert "set-cookie" not in response.headers
        assert (await device_a.get("/")).status_code == 200
        # Revoking it again tells A that it was already gone.
        again = await device_a.post(f"/sessions/{device_b_id}/revoke")
        assert again.headers["location"] == "/sessions?notice=already-gone"


async def test_nobody_can_sign_out_a_session_of_another_user(example):
    async with example.browser() as ada, example.browser() as bob:
        await sign_up(ada, EMAIL)
        await sign_up(bob, "bob@example.com")
        ada_session = current_session_id((await ada.get("/sessions")).text)
        response = await bob.post(f"/sessions/{ada_session}/revoke")
        assert response.headers["location"] == "/sessions?notice=already-gone"
        assert (await ada.get("/")).status_code == 200


async def test_sign_out_all_other_sessions_keeps_this_one(example):
    async with two_devices(example) as (device_a, device_b), example.browser() as device_c:
        await log_in(device_c, EMAIL)
        response = await device_a.post("/sessions/revoke-others")
        assert response.headers["location"] == "/sessions?notice=others-signed-out&count=2"
        page = await device_a.get(response.headers["location"])
        assert "Signed out of 2 other session(s)." in page.text
        assert len(session_ids(page.text)) == 1
        assert (await device_b.get("/")).status_code == 303
        assert (await device_c.get("/")).status_code == 303


async def test_sign_out_everywhere_includes_this_device(example):
    async with two_devices(example) as (device_a, device_b):
        response = await device_a.post("/sessions/revoke-all")
        assert response.headers["location"] == "/login?notice=signed-out-everywhere"
        assert "Max-Age=0" in response.headers["set-cookie"]
        assert (await device_a.get("/")).status_code == 303
        assert (await device_b.get("/")).status_code == 303
    async with example.database.session() as db:
        assert (await db.exec(select(UserSession))).all() == []


async def test_changing_the_password_signs_out_other_devices_and_rotates_this_one(example):
    async with two_devices(example) as (device_a, device_b):
        old_cookie_a = device_a.cookies["anchor_session"]
        response = await device_a.post(
            "/password", data={"current_password": PASSWORD, "new_password": "a new long password"}
        )
        assert response.status_code == 303
        assert response.headers["location"] == "/sessions?notice=password-changed&count=1"
        assert response.headers["cache-control"] == "no-store"
        assert device_a.cookies["anchor_session"] != old_cookie_a
        page = await device_a.get("/sessions?notice=password-changed&count=1")
        assert "1 other session(s) signed out" in page.text
        assert (await device_b.get("/")).status_code == 303
    async with example.browser(cookies={"anchor_session": old_cookie_a}) as old_copy:
        assert (await old_copy.get("/")).status_code == 303
    async with example.browser() as fresh:
        assert (await log_in(fresh, EMAIL, PASSWORD)).status_code == 400
        assert (await log_in(fresh, EMAIL, "a new long password")).status_code == 303


async def test_a_wrong_current_password_changes_nothing(example):
    async with two_devices(example) as (device_a, device_b):
        response = await device_a.post(
            "/password", data={"current_password": "guess", "new_password": "a new long password"}
        )
        assert response.status_code == 400
        assert "current password is not right" in response.text
        assert (await device_b.get("/")).status_code == 200
    async with example.browser() as fresh:
        assert (await log_in(fresh, EMAIL, PASSWORD)).status_code == 303


async def test_deleting_the_account_needs_a_fresh_login(example):
    async with two_devices(example) as (device_a, device_b):
        assert (await device_a.get("/account/delete")).status_code == 200
        example.clock.advance(minutes=6)
        response = await device_a.get("/account/delete")
        assert response.status_code == 303
        assert response.headers["location"] == "/reauthenticate?next=%2Faccount%2Fdelete"
        refused = await device_a.post("/account/delete")
        assert refused.headers["location"] == "/reauthenticate"

        wrong = await device_a.post("/reauthenticate", data={"password": "guess", "next": "/account/delete"})
        assert wrong.status_code == 400
        confirmed = await device_a.post(
            "/reauthenticate", data={"password": PASSWORD, "next": "/account/delete"}
        )
        assert confirmed.headers["location"] == "/account/delete"
        assert (await device_a.get("/account/delete")).status_code == 200

        deleted = await device_a.post("/account/delete")
        assert deleted.headers["location"] == "/login?notice=account-deleted"
        assert (await device_b.get("/")).status_code == 303
    async with example.database.session() as db:
        assert (await db.exec(select(User))).all() == []
        assert (await db.exec(select(UserSession))).all() == []


async def test_cross_site_form_posts_are_refused(example):
    cross_site = {"sec-fetch-site": "cross-site", "origin": "https://evil.example"}
    async with two_devices(example) as (device_a, device_b), example.browser() as stranger:
        page_a = (await device_a.get("/sessions")).text
        (other,) = [sid for sid in session_ids(page_a) if sid != current_session_id(page_a)]
        refused = await device_a.post(f"/sessions/{other}/revoke", headers=cross_site)
        assert refused.status_code == 403
        assert "cross-site request refused" in refused.text
        assert (await device_a.post("/sessions/revoke-all", headers=cross_site)).status_code == 403
        assert (await device_b.get("/")).status_code == 200
        # Login CSRF: a foreign page must not log this browser in to some account.
        login = await stranger.post("/login", data={"email": EMAIL, "password": PASSWORD}, headers=cross_site)
        assert login.status_code == 403
        assert "set-cookie" not in login.headers


async def test_junk_cookies_send_the_browser_to_the_login_page_never_an_error(example):
    async with example.browser() as browser:
        await sign_up(browser, EMAIL)
        real = browser.cookies["anchor_session"]
    # A changed first signature character: the last one may be only padding bits.
    head, signature = real.rsplit(".", 1)
    flipped = f"{head}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"
    for junk in ("", "a.b", flipped, "x" * 5000, real.split(".")[0] + ".forged.signature"):
        async with example.browser() as browser:
            response = await browser.get("/sessions", headers={"cookie": f"anchor_session={junk}"})
            assert response.status_code == 303, junk[:40]
            assert response.headers["location"].startswith("/login")
        async with example.api_client() as client:
            response = await client.get("/api/me", headers={"cookie": f"anchor_session={junk}"})
            assert response.status_code == 401


async def test_logging_in_over_another_users_cookie_starts_a_new_session(example):
    async with example.browser() as ada, example.browser() as bob:
        await sign_up(ada, EMAIL)
        await sign_up(bob, "bob@example.com")
        ada_cookie = ada.cookies["anchor_session"]
        # Ada's browser is handed to Bob, who logs in without logging Ada out first.
        assert (await log_in(ada, "bob@example.com")).status_code == 303
        assert ada.cookies["anchor_session"] != ada_cookie
        assert '<span id="email">bob@example.com</span>' in (await ada.get("/")).text
    async with example.browser(cookies={"anchor_session": ada_cookie}) as old:
        assert (await old.get("/")).status_code == 303  # login ended the session it replaced


async def test_logging_out_twice_or_without_a_cookie_is_fine(example):
    async with example.browser() as browser:
        await sign_up(browser, EMAIL)
        for _ in range(2):
            response = await browser.post("/logout")
            assert response.status_code == 303
            assert response.headers["location"] == "/login?notice=signed-out"
    async with example.browser() as never_logged_in:
        assert (await never_logged_in.post("/logout")).status_code == 303


async def test_what_a_client_says_about_itself_is_shown_escaped(example):
    async with example.browser(user_agent='<script>alert("hi")</script> Firefox/1') as browser:
        await sign_up(browser, EMAIL)
        page = (await browser.get("/sessions")).text
    assert "<script>" not in page
    assert "Firefox 1" in page
