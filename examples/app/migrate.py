"""Brings the example app's database to the newest schema before the app starts.

The same as ``alembic -c migrations/alembic.ini upgrade head`` from the repository root.
"""

import os
from pathlib import Path

from alembic import command
from alembic.config import Config

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./anchor_demo.db"
ALEMBIC_INI = Path(__file__).resolve().parents[2] / "migrations" / "alembic.ini"


def database_url() -> str:
    """DATABASE_URL from the environment, else a SQLite file in the current folder."""
    return os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL


def alembic_config(url: str | None = None, *, configure_logging: bool = True) -> Config:
    """The example app's Alembic configuration, pointed at ``url`` (default: database_url())."""
    config = Config(str(ALEMBIC_INI))
    # Passed as an attribute, not as sqlalchemy.url: the ini parser would read a "%"
    # of a URL-encoded password as interpolation.
    config.attributes["database_url"] = url or database_url()
    config.attributes["configure_logging"] = configure_logging
    return config


def upgrade_to_head(url: str | None = None, *, configure_logging: bool = True) -> None:
    """Runs every migration not yet applied to ``url`` (default: database_url()).

    Call it before the server starts, from synchronous code: env.py runs its own event
    loop. From inside a running loop, use ``await asyncio.to_thread(upgrade_to_head, url)``.
    """
    command.upgrade(alembic_config(url, configure_logging=configure_logging), "head")
