"""Test helpers for the example app: build it on a test database, act like a browser.

Only the test suite imports this (it needs httpx, a dev dependency).
"""

from dataclasses import dataclass
from typing import Any

import httpx
from argon2 import PasswordHasher, profiles
from fastapi import FastAPI

from anchor_orm.testing import MovableClock, TestDatabase
from examples.app.app import create_app
from examples.app.config import Config
from examples.app.passwords import Passwords

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
