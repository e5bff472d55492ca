"""The example app's JSON routes, as an API client with a Bearer token sees them."""

import pytest

from examples.app.testing import PASSWORD, build_example

EMAIL = "ada@example.com"


@pytest.fixture
def example(database):
    return build_example(database)


async def sign_up_token(example) -> str:
    async with example.api_client() as client:
        response = await client.post("/api/signup", json={"email": EMAIL, "password": PASSWORD})
    assert response.status_code == 201
    return response.json()["token"]


async def log_in_token(example, user_agent="example-cli/1.0", password=PASSWORD) -> str:
    async with example.api_client(user_agent=user_agent) as client:
        response = await client.post("/api/login", json={"email": EMAIL, "password": password})
    assert response.status_code == 200
    return response.json()["token"]


async def status_of_me(example, token: str) -> int:
    async with example.api_client(token) as client:
        return (await client.get("/api/me")).status_code


async def test_login_returns_a_token_and_sets_no_cookie(example):
    await sign_up_token(example)
    async with example.api_client() as client:
        response = await client.post("/api/login", json={"email": EMAIL, "password": PASSWORD})
    assert response.status_code == 200
    assert "set-cookie" not in response.headers
    body = response.json()
    assert set(body) == {"token", "session_id", "expires_at"}
    async with example.api_client(body["token"]) as client:
        me = (await client.get("/api/me")).json()
    assert me["email"] == EMAIL
    assert me["session_id"] == body["session_id"]


async def test_wrong_password_and_no_token_are_401_json_not_redirects(example):
    await sign_up_token(example)
    async with example.api_client() as client:
        wrong = await client.post("/api/login", json={"email": EMAIL, "password": "guess"})
        assert wrong.status_code == 401
        assert wrong.json() == {"detail": "Wrong email or password."}
        anonymous = await client.get("/api/me")
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"] == "Bearer"
    assert await status_of_me(example, "not-a-token") == 401


async def test_signup_refuses_a_taken_email(example):
    await sign_up_token(example)
    async with example.api_client() as client:
        response = await client.post("/api/signup", json={"email": EMAIL, "password": PASSWORD})
    assert response.status_code == 409


async def test_listing_and_revoking_sessions_with_tokens(example):
    token_a = await sign_up_token(example)
    token_b = await log_in_token(example, user_agent="curl/8.5.0")
    async with example.api_client(token_a) as device_a:
        listed = (await device_a.get("/api/sessions")).json()
        assert len(listed) == 2
        (current,) = [row for row in listed if row["current"]]
        (other,) = [row for row in listed if not row["current"]]
        assert other["device"] == "curl 8.5"
        assert other["kind"] == "script"
        assert current["ip_address"] == "127.0.0.1"

        assert (await device_a.delete(f"/api/sessions/{other['id']}")).status_code == 204
        assert await status_of_me(example, token_b) == 401
        assert (await device_a.delete(f"/api/sessions/{other['id']}")).status_code == 404
        assert len((await device_a.get("/api/sessions")).json()) == 1


async def test_logout_ends_the_token_and_is_safe_to_repeat(example):
    token = await sign_up_token(example)
    async with example.api_client(token) as client:
        assert (await client.post("/api/logout")).json() == {"revoked": 1}
        assert (await client.get("/api/me")).status_code == 401
        assert (await client.post("/api/logout")).json() == {"revoked": 0}
    async with example.api_client() as anonymous:
        assert (await anonymous.post("/api/logout")).json() == {"revoked": 0}


async def test_revoke_others_then_everywhere(example):
    token_a = await sign_up_token(example)
    token_b = await log_in_token(example)
    token_c = await log_in_token(example)
    async with example.api_client(token_a) as device_a:
        assert (await device_a.post("/api/sessions/revoke-others")).json() == {"revoked": 2}
        assert await status_of_me(example, token_b) == 401
        assert await status_of_me(example, token_c) == 401
        assert (await device_a.get("/api/me")).status_code == 200
        assert (await device_a.post("/api/sessions/revoke-all")).json() == {"revoked": 1}
        assert (await device_a.get("/api/me")).status_code == 401


async def test_password_change_gives_a_new_token_and_ends_the_others(example):
    token_a = await sign_up_token(example)
    token_b = await log_in_token(example)
    async with example.api_client(token_a) as device_a:
        wrong = await device_a.post(
            "/api/password", json={"current_password": "guess", "new_password": "a new long password"}
        )
        assert wrong.status_code == 403
        assert await status_of_me(example, token_b) == 200
        changed = await device_a.post(
            "/api/password", json={"current_password": PASSWORD, "new_password": "a new long password"}
        )
    assert changed.status_code == 200
    new_token = changed.json()["token"]
    assert changed.json()["revoked"] == 1
    assert await status_of_me(example, token_a) == 401
    assert await status_of_me(example, token_b) == 401
    assert await status_of_me(example, new_token) == 200
    await log_in_token(example, password="a new long password")


async def test_deleting_the_account_needs_a_fresh_login(example):
    token = await sign_up_token(example)
    example.clock.advance(minutes=6)
    async with example.api_client(token) as client:
        stale = await client.delete("/api/me")
        assert stale.status_code == 403
        assert stale.headers["x-reauthenticate"] == "true"
        assert (await client.post("/api/reauthenticate", json={"password": "guess"})).status_code == 403
        confirmed = await client.post("/api/reauthenticate", json={"password": PASSWORD})
    fresh_token = confirmed.json()["token"]
    assert await status_of_me(example, token) == 401  # rotated: the old token is gone
    async with example.api_client(fresh_token) as client:
        assert (await client.delete("/api/me")).status_code == 204
    assert await status_of_me(example, fresh_token) == 401
    async with example.api_client() as client:
        response = await client.post("/api/login", json={"email": EMAIL, "password": PASSWORD})
    assert response.status_code == 401
