"""The example app's audit log as people see it: "Recent activity" on the sessions page.

Every login, sign-out and password change writes its audit row in the request's own
transaction (SQLite and PostgreSQL).
"""

import re

import pytest
from fastapi import Depends, HTTPException
from sqlmodel import col, select

from anchor_orm import RequestSessions
from examples.app.audit import AuditLog
from examples.app.models import UserSession
from examples.app.testing import PASSWORD, SAFARI_ON_IPHONE, build_example, log_in, sign_up

EMAIL = "ada@example.com"
NEW_PASSWORD = "a new long password"


@pytest.fixture
def example(database):
    return build_example(database)


def activity(page_html: str) -> list[tuple[str, str]]:
    """The (event, reason) of each "Recent activity" row, newest first."""
    return re.findall(r'<tr data-event="([^"]*)" data-reason="([^"]*)">', page_html)


def activity_cells(page_html: str) -> list[list[str]]:
    """The text of each "Recent activity" row's cells (when, what, why, device), newest first."""
    rows = re.findall(r"<tr data-event=[^>]*>(.*?)</tr>", page_html, flags=re.DOTALL)
    return [
        [
            re.sub(r"<[^>]+>", "", cell).strip()
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.DOTALL)
        ]
        for row in rows
    ]


def session_ids(page_html: str) -> list[str]:
    return re.findall(r'data-session-id="([^"]+)"', page_html)


def current_session_id(page_html: str) -> str:
    return re.findall(r'class="session current" data-session-id="([^"]+)"', page_html)[0]


async def audit_rows(example) -> list[tuple[str, str, str | None]]:
    """(session id, event, reason) of every audit row, oldest first."""
    async with example.database.session() as db:
        entries = (await db.exec(select(AuditLog).order_by(col(AuditLog.id)))).all()
    return [(entry.session_id, entry.event, entry.reason) for entry in entries]


async def test_login_revoke_password_change_and_logout_each_leave_their_audit_row(example):
    clock = example.clock
    async with (
        example.browser() as laptop,
        example.browser(user_agent=SAFARI_ON_IPHONE) as phone,
        example.browser() as other_laptop,
    ):
        await sign_up(laptop, EMAIL)
        laptop_id = current_session_id((await laptop.get("/sessions")).text)
        clock.advance(minutes=1)
        await log_in(phone, EMAIL)
        phone_id = current_session_id((await phone.get("/sessions")).text)

        clock.advance(minutes=1)
        revoked = await laptop.post(f"/sessions/{phone_id}/revoke")
        assert revoked.headers["location"] == "/sessions?notice=revoked"

        clock.advance(minutes=1)
        await log_in(other_laptop, EMAIL)
        other_id = current_session_id((await other_laptop.get("/sessions")).text)
        clock.advance(minutes=1)
        changed = await laptop.post(
            "/password", data={"current_password": PASSWORD, "new_password": NEW_PASSWORD}
        )
        assert changed.headers["location"] == "/sessions?notice=password-changed&count=1"

        clock.advance(minutes=1)
        assert (await laptop.post("/logout")).headers["location"] == "/login?notice=signed-out"
        clock.advance(minutes=1)
        await log_in(laptop, EMAIL, NEW_PASSWORD)
        page = (await laptop.get("/sessions")).text
        back_id = current_session_id(page)

    assert await audit_rows(example) == [
        (laptop_id, "created", None),
        (phone_id, "created", None),
        (phone_id, "revoked", "revoke"),
        (other_id, "created", None),
        (other_id, "revoked", "password_change"),
        (laptop_id, "rotated", None),
        (laptop_id, "revoked", "logout"),
        (back_id, "created", None),
    ]
    # The same story on the page, newest first, in words a person reads.
    assert activity(page) == [
        ("created", ""),
        ("revoked", "logout"),
        ("rotated", ""),
        ("revoked", "password_change"),
        ("created", ""),
        ("revoked", "revoke"),
        ("created", ""),
        ("created", ""),
    ]
    # The phone's sign-out names the phone, though its session is gone. anchor_orm calls
    # a device new when none of the user's live sessions has its browser and address:
    # after the logout above, this laptop had none left.
    assert activity_cells(page) == [
        ["just now", "Signed in", "new device", "Firefox 133 on macOS"],
        ["1 minute ago", "Signed out", "logged out", "Firefox 133 on macOS"],
        ["2 minutes ago", "Session renewed", "", "Firefox 133 on macOS"],
        ["2 minutes ago", "Signed out", "password changed", "Firefox 133 on macOS"],
        ["3 minutes ago", "Signed in", "", "Firefox 133 on macOS"],
        ["4 minutes ago", "Signed out", "signed out from another session", "Safari 18 on iOS"],
        ["5 minutes ago", "Signed in", "new device", "Safari 18 on iOS"],
        ["6 minutes ago", "Signed in", "new device", "Firefox 133 on macOS"],
    ]


async def test_the_page_lists_the_ten_latest_entries(example):
    async with example.browser() as browser:
        await sign_up(browser, EMAIL)
        for _ in range(6):
            example.clock.advance(minutes=1)
            # Logging in over a live cookie ends that session first: two rows each time.
            await log_in(browser, EMAIL)
        page = (await browser.get("/sessions")).text
    assert len(await audit_rows(example)) == 13
    assert activity(page) == [("created", ""), ("revoked", "logout")] * 5
    assert "4 minutes ago" in page and "5 minutes ago" not in page


async def test_a_rolled_back_request_leaves_no_audit_row(example):
    anchor = example.app.state.anchor

    # A route that signs out the other devices, then fails before its transaction commits.
    @example.app.post("/sessions/revoke-others-then-fail")
    async def revoke_others_then_fail(
        session: UserSession = Depends(anchor.get_session),
        sessions: RequestSessions[UserSession] = Depends(anchor.sessions),
    ) -> None:
        await sessions.revoke_all(session.user, keep=session)
        raise HTTPException(409, "Something else went wrong.")

    async with example.browser() as laptop, example.browser(user_agent=SAFARI_ON_IPHONE) as phone:
        await sign_up(laptop, EMAIL)
        await log_in(phone, EMAIL)
        before = await audit_rows(example)

        failed = await laptop.post("/sessions/revoke-others-then-fail")
        assert failed.status_code == 409

        assert await audit_rows(example) == before
        assert (await phone.get("/")).status_code == 200  # the phone was never signed out
        page = (await laptop.get("/sessions")).text
    assert len(session_ids(page)) == 2
    assert activity(page) == [("created", ""), ("created", "")]


async def test_an_api_password_change_is_audited_like_the_pages_one(example):
    async with example.api_client() as client:
        signed_up = (await client.post("/api/signup", json={"email": EMAIL, "password": PASSWORD})).json()
        other = (await client.post("/api/login", json={"email": EMAIL, "password": PASSWORD})).json()
    async with example.api_client(signed_up["token"]) as client:
        response = await client.post(
            "/api/password", json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}
        )
    assert response.status_code == 200
    assert response.json()["revoked"] == 1
    assert (await audit_rows(example))[-2:] == [
        (other["session_id"], "revoked", "password_change"),
        (signed_up["session_id"], "rotated", None),
    ]
