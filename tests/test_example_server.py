"""The example app as deployed: the demo command, and several server processes on one
PostgreSQL database sharing their sessions."""

import httpx
import pytest

from anchor_orm import testing as anchor_testing
from examples.app.testing import PASSWORD, demo_server
from tests.conftest import require_backend

SECRET_KEY = "server-test-secret-key-0123456789abcdef"
WORKERS = 2


@pytest.fixture
def postgres_server() -> None:
    """Skips (or in CI fails) when PostgreSQL is not reachable; outside the event loop."""
    require_backend("postgresql")


def browser_headers(base_url: str, cookie: str | None = None) -> dict[str, str]:
    """What a browser on ``base_url`` sends with a form post (httpx keeps no Secure
    cookie over http, so the cookie is passed by hand)."""
    headers = {"origin": base_url, "sec-fetch-site": "same-origin"}
    if cookie is not None:
        headers["cookie"] = cookie
    return headers


def session_cookie(response: httpx.Response) -> str:
    return response.headers["set-cookie"].split(";")[0]


def test_demo_command_migrates_prints_its_address_and_keeps_logins_across_restarts(tmp_path):
    with demo_server(tmp_path) as (base_url, log_path):
        output = log_path.read_text()
        assert f"anchor_orm example app: open {base_url}" in output
        assert "signing key from .anchor_demo_secret" in output
        signup = httpx.post(
            f"{base_url}/signup",
            data={"email": "ada@example.com", "password": PASSWORD},
            headers=browser_headers(base_url),
        )
        assert signup.status_code == 303
        cookie = session_cookie(signup)
    assert (tmp_path / "anchor_demo.db").exists()
    # A restart reads the same generated key: nobody is logged out.
    with demo_server(tmp_path) as (base_url, _):
        me = httpx.get(f"{base_url}/", headers=browser_headers(base_url, cookie))
        assert me.status_code == 200
        assert "ada@example.com" in me.text


async def test_a_logout_handled_by_one_server_process_is_refused_by_another(tmp_path, postgres_server):
    async with anchor_testing.test_database("postgresql") as database:
        env = {
            "DATABASE_URL": database.url.render_as_string(hide_password=False),
            "SESSION_SECRET": SECRET_KEY,
        }
        # One after the other: the second start finds the schema already up to date.
        with demo_server(tmp_path, **env) as (worker_a, _), demo_server(tmp_path, **env) as (worker_b, _):
            async with httpx.AsyncClient() as http:
                # A browser logs in through worker A; worker B knows the session.
                await http.post(
                    f"{worker_a}/signup",
                    data={"email": "ada@example.com", "password": PASSWORD},
                    headers=browser_headers(worker_a),
                )
                login = await http.post(
                    f"{worker_a}/login",
                    data={"email": "ada@example.com", "password": PASSWORD, "remember": "true"},
                    headers=browser_headers(worker_a),
                )
                cookie = session_cookie(login)
                assert (
                    await http.get(f"{worker_b}/", headers=browser_headers(worker_b, cookie))
                ).status_code == 200

                # It logs out through worker B; worker A refuses the cookie from then on.
                logout = await http.post(f"{worker_b}/logout", headers=browser_headers(worker_b, cookie))
                assert logout.headers["location"] == "/login?notice=signed-out"
                after = await http.get(f"{worker_a}/", headers=browser_headers(worker_a, cookie))
                assert after.status_code == 303
                assert after.headers["location"].startswith("/login")

                # The same with a Bearer token: log in on B, log out on A, refused on B.
                token = (
                    await http.post(
                        f"{worker_b}/api/login", json={"email": "ada@example.com", "password": PASSWORD}
                    )
                ).json()["token"]
                bearer = {"authorization": f"Bearer {token}"}
                assert (await http.get(f"{worker_a}/api/me", headers=bearer)).status_code == 200
                assert (await http.post(f"{worker_a}/api/logout", headers=bearer)).json() == {"revoked": 1}
                assert (await http.get(f"{worker_b}/api/me", headers=bearer)).status_code == 401


async def test_workers_of_one_server_share_the_generated_key_and_the_sessions(tmp_path, postgres_server):
    """``--workers 2`` without SESSION_SECRET: the key generated before the workers start
    is the one every worker signs with, and a revoked token is refused by all of them.
    (The kernel picks the worker of each connection; the two-process test above is the
    one that pins which process handles what.)"""
    async with anchor_testing.test_database("postgresql") as database:
        env = {"DATABASE_URL": database.url.render_as_string(hide_password=False)}
        with demo_server(tmp_path, "--workers", str(WORKERS), **env) as (base_url, log_path):
            async with httpx.AsyncClient(base_url=base_url) as http:
                await http.post("/api/signup", json={"email": "ada@example.com", "password": PASSWORD})
                token = (
                    await http.post("/api/login", json={"email": "ada@example.com", "password": PASSWORD})
                ).json()["token"]
                bearer = {"authorization": f"Bearer {token}"}
                # New connections spread over the workers.
                statuses = []
                for _ in range(10):
                    async with httpx.AsyncClient(base_url=base_url) as one_off:
                        statuses.append((await one_off.get("/api/me", headers=bearer)).status_code)
                assert statuses == [200] * 10
                await http.post("/api/logout", headers=bearer)
                statuses = []
                for _ in range(10):
                    async with httpx.AsyncClient(base_url=base_url) as one_off:
                        statuses.append((await one_off.get("/api/me", headers=bearer)).status_code)
                assert statuses == [401] * 10
            assert log_path.read_text().count("Started server process") == WORKERS
