"""The example app in headless Chromium: two browsers, one user, one revokes the other.

Outside CI the test is skipped (with the reason) when Playwright or Debian's chromium
is missing; with CI=true it must run, and fails instead.
"""

import os
import time
from pathlib import Path

import httpx
import pytest

from examples.app.testing import PASSWORD, REPO_ROOT, SAFARI_ON_IPHONE, demo_server

pytestmark = pytest.mark.browser

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CHROME_ON_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
SCREENSHOT = REPO_ROOT / "docs" / "screenshots" / "sessions.png"
EMAIL = "ada@example.com"
FOURTEEN_DAYS_SECONDS = 14 * 24 * 3600


@pytest.fixture
def chromium():
    """Playwright's Chromium, launched from Debian's package (Playwright cannot download its own here)."""
    missing = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing = "Playwright is not installed (pip install playwright, or the dev extra)"
    if missing is None and not CHROMIUM.exists():
        missing = f"{CHROMIUM} is missing (apt-get install chromium)"
    if missing is not None:
        if IN_CI:
            pytest.fail(f"{missing}; CI=true requires the browser test to run")
        pytest.skip(f"browser test skipped: {missing}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def sign_in_rows(page) -> list[str]:
    return page.locator("tr.session").evaluate_all("rows => rows.map(row => row.dataset.sessionId)")


def test_two_browsers_one_user_a_revokes_b_and_b_lands_on_the_login_page(chromium, tmp_path):
    with demo_server(tmp_path) as (base_url, _):
        device_a = chromium.new_context(user_agent=CHROME_ON_MAC, viewport={"width": 1000, "height": 620})
        device_b = chromium.new_context(user_agent=SAFARI_ON_IPHONE)
        page_a = device_a.new_page()
        page_b = device_b.new_page()

        # A signs up over plain http://127.0.0.1 (a Secure cookie: Chromium keeps it there).
        page_a.goto(f"{base_url}/signup")
        page_a.fill("input[name=email]", EMAIL)
        page_a.fill("input[name=password]", PASSWORD)
        page_a.click("text=Create account")
        page_a.wait_for_url(f"{base_url}/?notice=signed-up")
        assert page_a.locator("#email").inner_text() == EMAIL

        # B logs in as the same user from another browser.
        page_b.goto(f"{base_url}/sessions")
        page_b.wait_for_url(f"{base_url}/login?next=%2Fsessions")
        page_b.fill("input[name=email]", EMAIL)
        page_b.fill("input[name=password]", PASSWORD)
        page_b.click("button:text('Log in')")
        page_b.wait_for_url(f"{base_url}/sessions")
        # And a script signs in through the API, to show a third kind of client.
        httpx.post(
            f"{base_url}/api/login",
            json={"email": EMAIL, "password": PASSWORD},
            headers={"user-agent": "curl/8.5.0"},
        ).raise_for_status()

        # The cookie as Chromium stored it: Secure, HttpOnly, SameSite=Lax, Path=/, 14 days.
        (cookie,) = [c for c in device_a.cookies() if c["name"] == "anchor_session"]
        assert (cookie["secure"], cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (
            True,
            True,
            "Lax",
            "/",
        )
        assert cookie["domain"] == "127.0.0.1"
        assert FOURTEEN_DAYS_SECONDS - 120 < cookie["expires"] - time.time() <= FOURTEEN_DAYS_SECONDS
        assert page_a.evaluate("document.cookie") == ""  # HttpOnly: no script can read it

        # A sees B (and the script) on its sessions page, its own row marked.
        page_a.goto(f"{base_url}/sessions")
        rows = page_a.locator("tr.session")
        assert rows.count() == 3
        current = page_a.locator("tr.session.current")
        assert current.count() == 1
        assert "Chrome 131" in current.inner_text() and "This device" in current.inner_text()
        device_b_row = rows.filter(has_text="Safari 18")
        assert "iOS" in device_b_row.inner_text()
        assert "127.0.0.1" in device_b_row.inner_text()
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page_a.screenshot(path=str(SCREENSHOT), full_page=True)

        # A signs B out.
        device_b_row.get_by_role("button", name="Sign out").click()
        page_a.wait_for_url(f"{base_url}/sessions?notice=revoked")
        assert page_a.locator("tr.session").count() == 2
        assert page_a.locator("tr.session", has_text="Safari 18").count() == 0
        # The audit log saw it: the newest "Recent activity" entry names B's device.
        newest = page_a.locator("table.activity tbody tr").first
        assert "Signed out" in newest.inner_text() and "Safari 18 on iOS" in newest.inner_text()

        # B's next page load lands on the login page. Its dead cookie may stay (a 401
        # never clears an authentic cookie, which could race a rotation) but opens nothing.
        page_b.reload()
        page_b.wait_for_url(f"{base_url}/login?notice=session-ended&next=%2Fsessions")
        assert "Your session ended" in page_b.inner_text("main")
        page_b.goto(f"{base_url}/sessions")
        page_b.wait_for_url(f"{base_url}/login?notice=session-ended&next=%2Fsessions")
        # A is still signed in.
        page_a.goto(f"{base_url}/")
        assert page_a.locator("#email").inner_text() == EMAIL

        device_a.close()
        device_b.close()
