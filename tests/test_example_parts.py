"""The example app's small parts: the User-Agent parser, redirects, settings."""

import os
import stat
from datetime import UTC, datetime, timedelta

import pytest

from examples.app.config import Config, async_database_url, load_or_create_secret
from examples.app.rendering import safe_next, time_ago
from examples.app.user_agents import parse_user_agent

USER_AGENTS = [
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        "Chrome 131 on Windows",
        "desktop",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86",
        "Edge 131 on Windows",
        "desktop",
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/18.1 Safari/605.1.15",
        "Safari 18 on macOS",
        "desktop",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
        "Safari 18 on iOS",
        "mobile",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
        "Chrome 131 on iOS",
        "mobile",
    ),
    (
        "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.0 Mobile/15E148 Safari/604.1",
        "Safari 17 on iPadOS",
        "tablet",
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.6778.81 Mobile Safari/537.36",
        "Chrome 131 on Android",
        "mobile",
    ),
    (
        "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/26.0 Chrome/122.0.0.0 Safari/537.36",
        "Samsung Internet 26 on Android",
        "tablet",
    ),
    (
        "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        "Firefox 133 on Linux",
        "desktop",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36 OPR/116.0.0.0",
        "Opera 116 on Windows",
        "desktop",
    ),
    (
        "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        "Chrome 131 on ChromeOS",
        "desktop",
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "HeadlessChrome/156.0.0.0 Safari/537.36",
        "Headless Chrome 156 on Linux",
        "desktop",
    ),
    ("curl/8.5.0", "curl 8.5", "script"),
    ("python-httpx/0.29.0", "HTTPX 0.29", "script"),
    (
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Unknown browser on Unknown system",
        "bot",
    ),
    ("", "Unknown browser on Unknown system", "unknown"),
    (None, "Unknown browser on Unknown system", "unknown"),
    ("something else entirely", "Unknown browser on Unknown system", "unknown"),
]


@pytest.mark.parametrize(("user_agent", "label", "kind"), USER_AGENTS)
def test_user_agent_gives_browser_system_and_kind(user_agent, label, kind):
    device = parse_user_agent(user_agent)
    assert (device.label, device.kind) == (label, kind)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/sessions", "/sessions"),
        ("/sessions?notice=revoked", "/sessions?notice=revoked"),
        ("", "/"),
        (None, "/"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("/\r\nSet-Cookie: x=1", "/"),
        ("javascript:alert(1)", "/"),
    ],
)
def test_after_login_only_local_paths_are_followed(target, expected):
    assert safe_next(target) == expected


def test_time_ago_reads_like_a_person_would_say_it():
    now = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    assert time_ago(now - timedelta(seconds=20), now) == "just now"
    assert time_ago(now - timedelta(minutes=1), now) == "1 minute ago"
    assert time_ago(now - timedelta(minutes=59), now) == "59 minutes ago"
    assert time_ago(now - timedelta(hours=3, minutes=5), now) == "3 hours ago"
    assert time_ago(now - timedelta(days=2), now) == "2 days ago"
    assert time_ago(now + timedelta(minutes=5), now) == "just now"  # a clock a little ahead


def test_database_urls_get_an_async_driver():
    assert async_database_url("postgresql://u:p@db/app") == "postgresql+asyncpg://u:p@db/app"
    assert async_database_url("sqlite:///x.db") == "sqlite+aiosqlite:///x.db"
    assert async_database_url("postgresql+asyncpg://db/app") == "postgresql+asyncpg://db/app"


def test_the_generated_key_is_made_once_kept_private_and_reused(tmp_path):
    path = tmp_path / "state" / "session-secret"
    first = load_or_create_secret(path)
    assert len(first) >= 32
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_or_create_secret(path) == first


def test_settings_come_from_the_environment_first(tmp_path, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("SESSION_SECRET", raising=False)
    demo = Config.from_env(tmp_path)
    assert demo.database_url == f"sqlite+aiosqlite:///{tmp_path}/anchor_demo.db"
    assert demo.secret_source == str(tmp_path / ".anchor_demo_secret")
    assert Config.from_env(tmp_path).secret_keys == demo.secret_keys

    monkeypatch.setenv("DATABASE_URL", "postgresql://app@db.internal/app")
    monkeypatch.setenv("SESSION_SECRET", "k" * 40)
    configured = Config.from_env(tmp_path)
    assert configured.database_url == "postgresql+asyncpg://app@db.internal/app"
    assert configured.secret_keys == ["k" * 40]
    assert configured.secret_source == "SESSION_SECRET"
