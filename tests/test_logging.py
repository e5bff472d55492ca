"""The "anchor_orm" logger: created, refused (and why), revoked; never a token or a secret."""

import logging
from typing import Any

import pytest
from sqlmodel import select

from anchor_orm import purge_expired_sessions
from anchor_orm._tokens import split_token
from tests.app import SAME_ORIGIN, SECRET_KEY, build_app
from tests.models import AccountSession


def anchor_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "anchor_orm"]


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in anchor_records(caplog)]


async def login(client: Any) -> dict[str, str]:
    response = await client.post("/login", params={"email": "a@example.com"}, headers=SAME_ORIGIN)
    assert response.status_code == 200
    return response.json()


async def test_created_refused_and_revoked_are_logged_with_the_public_id_and_why(database, caplog):
    caplog.set_level(logging.INFO, logger="anchor_orm")
    test_app = build_app(database)
    await test_app.add_account("a@example.com")
    signer = test_app.anchor.signer
    async with test_app.client() as client:
        first = await login(client)
        assert lines(caplog)[-1] == f"session created: {first['session_id']}"

        async def refused_with(cookie: str) -> str:
            caplog.clear()
            client.cookies.set("anchor_session", cookie)
            assert (await client.get("/me")).status_code == 401
            (line,) = lines(caplog)
            return line

        assert await refused_with("junk") == "session refused (bad signature)"
        assert await refused_with(signer.sign("no-dot-here")) == "session refused (malformed token)"
        unknown_id = "A" * 22
        assert (
            await refused_with(signer.sign(f"{unknown_id}.secret"))
            == f"session refused (unknown id): {unknown_id}"
        )
        wrong_secret = signer.sign(f"{first['session_id']}.not-the-secret")
        assert await refused_with(wrong_secret) == f"session refused (wrong secret): {first['session_id']}"

        client.cookies.set("anchor_session", first["token"])
        caplog.clear()
        assert (await client.post("/logout", headers=SAME_ORIGIN)).status_code == 200
        assert lines(caplog) == [f"session revoked (logout): {first['session_id']}"]
        # A revoked session's row is gone: its token is refused as an unknown id.
        assert await refused_with(first["token"]) == f"session refused (unknown id): {first['session_id']}"

        client.cookies.clear()
        second = await login(client)
        test_app.clock.advance(days=15)
        assert await refused_with(second["token"]) == f"session refused (expired): {second['session_id']}"

    refusals = [
        record for record in anchor_records(caplog) if record.getMessage().startswith("session refused")
    ]
    assert all(record.levelno == logging.INFO for record in refusals)
    assert refusals[-1].session_id == second["session_id"]  # type: ignore[attr-defined]
    assert refusals[-1].reason == "expired"  # type: ignore[attr-defined]


async def test_no_token_secret_hash_or_key_ever_reaches_a_log_record(database, caplog):
    caplog.set_level(logging.DEBUG)
    test_app = build_app(database)
    await test_app.add_account("a@example.com")
    tokens: list[str] = []
    async with test_app.client() as client, test_app.client() as other:

        def use(token: str) -> None:
            client.cookies.clear()
            client.cookies.set("anchor_session", token)

        tokens.append((await login(client))["token"])
        tokens.append((await login(other))["token"])
        assert (await client.get("/me")).status_code == 200
        use(tokens[0][:-3] + "xyz")  # a tampered signature
        assert (await client.get("/me")).status_code == 401
        use(tokens[0])
        changed = await client.post("/change-password", headers=SAME_ORIGIN)
        assert changed.status_code == 200
        tokens.append(changed.cookies["anchor_session"])  # the rotated token
        use(tokens[0])
        assert (await client.get("/me")).status_code == 401  # rotated away: wrong secret
        use(tokens[-1])
        assert (await client.post("/logout-everywhere", headers=SAME_ORIGIN)).status_code == 200
        client.cookies.clear()
        tokens.append((await login(client))["token"])
    async with database.session() as db:
        secret_hashes = list((await db.exec(select(AccountSession.secret_hash))).all())
    test_app.clock.advance(days=15)
    await purge_expired_sessions(database.engine, AccountSession, clock=test_app.clock)

    secrets: set[str] = {SECRET_KEY, *tokens, *secret_hashes}
    for token in tokens:
        unsigned = test_app.anchor.signer.unsign(token)
        assert unsigned is not None
        parts = split_token(unsigned[0])
        assert parts is not None
        secrets.update({unsigned[0], parts.secret})
    kinds = {line.split(":")[0].split(" (")[0] for line in lines(caplog)}
    assert kinds == {
        "session created",
        "session refused",
        "session revoked",
        "session rotated",
        "expired sessions purged",
    }
    for record in anchor_records(caplog):
        text = " ".join([record.getMessage(), repr(record.args), repr(vars(record)), record.exc_text or ""])
        leaked = [secret for secret in secrets if secret in text]
        assert leaked == [], f"{record.getMessage()!r} holds a secret"
    # Other loggers (the driver's DEBUG log prints SQL parameters) may show a secret's
    # hash, which is in the SQL, but never a token or a secret: those never reach SQL.
    never_in_sql = secrets - set(secret_hashes) - {SECRET_KEY}
    for record in caplog.records:
        text = " ".join([record.getMessage(), repr(vars(record))])
        assert [secret for secret in never_in_sql if secret in text] == [], record.name
