"""Test helpers for the example app: build it on a test database, act like a browser.

Only the test suite imports this (it needs httpx, a dev dependency).
"""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from argon2 import PasswordHasher, profiles
from fastapi import FastAPI

from anchor_orm.testing import MovableClock, TestDatabase
from examples.app.app import create_app
from examples.app.config import Config
from examples.app.passwords import Passwords

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_SECONDS = 60
BASE_URL = "https://testserver"
SECRET_KEY = "example-test-secret-key-0123456789abcdef"
PASSWORD = "correct horse battery staple"
# What a browser adds to a request made from one of our own pages.
SAME_ORIGIN = {"sec-fetch-site": "same-origin", "origin": BASE_URL}
FIREFOX_ON_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:133.0) Gecko/20100101 Firefox/133.0"
SAFARI_ON_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)


@dataclass
class ExampleApp:
    __test__ = False

    app: FastAPI
    clock: MovableClock
    database: TestDatabase

    def browser(self, user_agent: str = FIREFOX_ON_MAC, **kwargs: Any) -> httpx.AsyncClient:
        """A client that sends what a browser sends on its own pages (and keeps cookies)."""
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url=BASE_URL,
            headers={**SAME_ORIGIN, "user-agent": user_agent},
            **kwargs,
        )

    def api_client(self, token: str | None = None, user_agent: str = "example-cli/1.0") -> httpx.AsyncClient:
        """A client like a script: no cookies kept, no browser headers, maybe a token."""
        headers = {"user-agent": user_agent}
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url=BASE_URL,
            headers=headers,
            cookies=None,
        )


def build_example(database: TestDatabase, clock: MovableClock | None = None) -> ExampleApp:
    """The example app on ``database`` with a movable clock and a fast (weak) hasher."""
    clock = clock or MovableClock()
    config = Config(database.url.render_as_string(hide_password=False), [SECRET_KEY], "tests")
    # The cheapest argon2 parameters: fine for tests, never for real passwords.
    passwords = Passwords(PasswordHasher.from_parameters(profiles.CHEAPEST))
    app = create_app(config, engine=database.engine, clock=clock, passwords=passwords)
    return ExampleApp(app, clock, database)


async def sign_up(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/signup", data={"email": email, "password": password})


async def log_in(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD, **fields: str
) -> httpx.Response:
    return await client.post(
        "/login", data={"email": email, "password": password, "remember": "true", **fields}
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def demo_server(work_dir: Path, *args: str, **env: str) -> Iterator[tuple[str, Path]]:
    """Runs ``python -m examples.app`` from ``work_dir`` until the block ends; (base URL, log)."""
    port = free_port()
    log_path = work_dir / f"server-{port}.log"
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **env}
    for name in ("DATABASE_URL", "SESSION_SECRET"):
        if name not in env:
            environment.pop(name, None)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "examples.app", "--port", str(port), *args],
            cwd=work_dir,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base_url, process, log_path)
        yield base_url, log_path
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until_serving(base_url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{base_url}/login", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(
        f"the server did not answer within {STARTUP_TIMEOUT_SECONDS}s:\n{log_path.read_text()}"
    )
