"""Where the example app's settings come from: the environment, else demo defaults."""

import os
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

# The demo's local state, in the folder it is started from. The SQLite file is the
# one `alembic -c migrations/alembic.ini upgrade head` migrates when DATABASE_URL is unset.
DEFAULT_STATE_DIR = Path()
SQLITE_FILE_NAME = "anchor_demo.db"
SECRET_FILE_NAME = ".anchor_demo_secret"
# How recent a login must be for the most sensitive action (deleting the account).
FRESH_LOGIN_WINDOW = timedelta(minutes=5)


@dataclass(frozen=True)
class Config:
    database_url: str
    # Oldest first, newest last: to rotate, append a new key and drop the old one later.
    secret_keys: list[str]
    # Where the key came from, to say so at start-up ("SESSION_SECRET" or a file path).
    secret_source: str

    @classmethod
    def from_env(cls, state_dir: Path = DEFAULT_STATE_DIR) -> "Config":
        """DATABASE_URL and SESSION_SECRET from the environment, or the demo defaults.

        Without SESSION_SECRET a random key is generated once and kept in
        ``state_dir/.anchor_demo_secret``, so restarts (and every worker) share it and
        nobody is logged out. Production sets SESSION_SECRET instead.
        """
        url = os.environ.get("DATABASE_URL") or f"sqlite+aiosqlite:///{state_dir / SQLITE_FILE_NAME}"
        env_secret = os.environ.get("SESSION_SECRET")
        if env_secret:
            return cls(async_database_url(url), [env_secret], "SESSION_SECRET")
        secret_file = state_dir / SECRET_FILE_NAME
        return cls(async_database_url(url), [load_or_create_secret(secret_file)], str(secret_file))


def async_database_url(url: str) -> str:
    """The URL with an async driver: ``postgresql://`` means asyncpg, ``sqlite://`` aiosqlite."""
    parsed = sa.make_url(url)
    driver = {"postgresql": "postgresql+asyncpg", "sqlite": "sqlite+aiosqlite"}.get(parsed.drivername)
    if driver is not None:
        parsed = parsed.set(drivername=driver)
    return parsed.render_as_string(hide_password=False)


def load_or_create_secret(path: Path) -> str:
    """The key stored in ``path``; the first caller creates it (readable by its owner only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: when several workers start at once, exactly one writes the key.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_secret(path)
    key = secrets.token_urlsafe(32)
    with os.fdopen(descriptor, "w") as secret_file:
        secret_file.write(key + "\n")
    return key


def _read_secret(path: Path) -> str:
    # Another worker may have created the file and not written the key yet.
    for _ in range(50):
        key = path.read_text().strip()
        if key:
            return key
        time.sleep(0.02)
    raise RuntimeError(f"{path} is empty: delete it and start again, or set SESSION_SECRET.")


def redacted(url: str) -> str:
    return sa.make_url(url).render_as_string(hide_password=True)
