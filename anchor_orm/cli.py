"""The ``anchor-orm`` command: purge expired sessions, list and revoke a user's sessions.

    anchor-orm purge  --model app.models:UserSession [--batch-size 1000]
    anchor-orm list   42 --model app.models:UserSession [--json]
    anchor-orm revoke SESSION_ID --model app.models:UserSession
    anchor-orm revoke --user 42 --model app.models:UserSession

The database URL comes from --database-url or DATABASE_URL; the model from --model or
ANCHOR_ORM_MODEL. --model may also name the app's Anchor (app.auth:anchor), so its
event handlers (an audit log) see what the command revokes. A wrong model, URL or
database ends with one line saying what to fix and exit status 2.
"""

import argparse
import asyncio
import importlib
import json
import logging
import os
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from anchor_orm._anchor import Anchor
from anchor_orm._engine import async_url, create_engine
from anchor_orm._errors import ConfigurationError
from anchor_orm._events import RevokeReason, SessionEvents
from anchor_orm._purge import DEFAULT_BATCH_SIZE, PurgeBatch, purge_expired_sessions
from anchor_orm._repository import SessionRepository
from anchor_orm._schema import SessionModelInfo, inspect_session_model

PROGRAM = "anchor-orm"
EXIT_OK = 0
EXIT_NOT_FOUND = 1
EXIT_USAGE = 2
# How long to wait for a database server that does not answer.
CONNECT_TIMEOUT_SECONDS = 10
USER_AGENT_COLUMN_WIDTH = 50


class CommandError(Exception):
    """Ends the command with a one-line message and an exit status."""

    def __init__(self, message: str, exit_status: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_status = exit_status


@dataclass(frozen=True)
class Target:
    """What the command works on: the session model, its database, the app's events."""

    model_info: SessionModelInfo[Any]
    engine: AsyncEngine
    display_url: str
    events: SessionEvents | None

    @property
    def table_name(self) -> str:
        name: str = self.model_info.model.__table__.name
        return name


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command; the exit status is returned (the console script exits with it)."""
    arguments = build_parser().parse_args(argv)
    if arguments.verbose:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # A console script's sys.path starts at its bin folder, not where the user stands:
    # without this, `--model app.models:UserSession` would not import from the project.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        status: int = asyncio.run(arguments.run(arguments))
    except CommandError as error:
        print(f"{PROGRAM}: error: {error}", file=sys.stderr)
        return error.exit_status
    except KeyboardInterrupt:
        print(f"{PROGRAM}: interrupted", file=sys.stderr)
        return 130
    return status


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL"),
        help="the app's database, e.g. postgresql+asyncpg://user@host/db (default: $DATABASE_URL)",
    )
    common.add_argument(
        "--model",
        default=os.environ.get("ANCHOR_ORM_MODEL"),
        help="the app's session model as module:Class, e.g. app.models:UserSession, or its "
        "Anchor as module:name (default: $ANCHOR_ORM_MODEL)",
    )
    common.add_argument("-v", "--verbose", action="store_true", help="also print anchor_orm's log")

    parser = argparse.ArgumentParser(prog=PROGRAM, description="Operate on anchor_orm sessions.")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    purge = commands.add_parser(
        "purge", parents=[common], help="delete expired sessions in batches, a transaction each"
    )
    purge.add_argument("--batch-size", type=_positive_int, default=DEFAULT_BATCH_SIZE, help="rows per batch")
    purge.add_argument("--max-batches", type=_positive_int, default=None, help="stop after this many batches")
    purge.set_defaults(run=run_purge)

    list_ = commands.add_parser("list", parents=[common], help="list a user's live sessions, newest first")
    list_.add_argument("user_id", help="the user's id (the value the session's foreign key holds)")
    list_.add_argument("--json", action="store_true", help="print JSON instead of a table")
    list_.set_defaults(run=run_list)

    revoke = commands.add_parser(
        "revoke", parents=[common], help="revoke one session by id, or all of a user's with --user"
    )
    revoke.add_argument("session_id", nargs="?", help="the public id of the session to revoke")
    revoke.add_argument("--user", dest="user_id", help="revoke every session of this user instead")
    revoke.set_defaults(run=run_revoke)
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


# The commands.


async def run_purge(arguments: argparse.Namespace) -> int:
    target = await open_target(arguments)
    started = time.monotonic()
    print(f"purging expired sessions from {target.table_name} in batches of {arguments.batch_size}")

    def report(batch: PurgeBatch) -> None:
        print(
            f"batch {batch.number}: {batch.purged_count} purged ({batch.total_purged_count} so far)",
            flush=True,
        )

    try:
        result = await purge_expired_sessions(
            target.engine,
            target.model_info.model,
            batch_size=arguments.batch_size,
            max_batches=arguments.max_batches,
            events=target.events,
            on_batch=report,
        )
    finally:
        await close_target(target)
    if result.skipped:
        print(f"skipped: another process is purging {target.table_name} (it holds the purge lock)")
        return EXIT_OK
    elapsed_seconds = time.monotonic() - started
    batches = "batch" if result.batch_count == 1 else "batches"
    print(
        f"done: {result.purged_count} expired sessions purged in {result.batch_count} {batches} "
        f"({elapsed_seconds:.1f} s)"
    )
    return EXIT_OK


async def run_list(arguments: argparse.Namespace) -> int:
    target = await open_target(arguments)
    try:
        async with AsyncSession(target.engine, expire_on_commit=False) as db:
            user = await find_user(db, target.model_info, arguments.user_id)
            sessions = await repository(db, target).list(user)
    finally:
        await close_target(target)
    rows = [
        {
            "id": session.id,
            "created_at": _iso(session.created_at),
            "last_seen_at": _iso(session.last_seen_at),
            "expires_at": _iso(session.expires_at),
            "ip_address": session.ip_address,
            "user_agent": session.user_agent,
        }
        for session in sessions
    ]
    if arguments.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    user_label = f"{target.model_info.user_model.__name__} {arguments.user_id}"
    if not rows:
        print(f"{user_label} has no live sessions")
        return EXIT_OK
    print(f"{len(rows)} live session{'s' if len(rows) != 1 else ''} of {user_label}, newest first:")
    print(_table(rows))
    return EXIT_OK


async def run_revoke(arguments: argparse.Namespace) -> int:
    if (arguments.session_id is None) == (arguments.user_id is None):
        raise CommandError("give either a SESSION_ID or --user USER_ID (one of the two)")
    target = await open_target(arguments)
    try:
        async with AsyncSession(target.engine, expire_on_commit=False) as db:
            sessions = repository(db, target)
            if arguments.session_id is not None:
                revoked = await sessions.revoke(arguments.session_id, owner=None, reason=RevokeReason.REVOKE)
                await db.commit()
                if not revoked:
                    raise CommandError(f"no session with id {arguments.session_id!r}", EXIT_NOT_FOUND)
                print(f"revoked session {arguments.session_id}")
            else:
                user = await find_user(db, target.model_info, arguments.user_id)
                count = await sessions.revoke_all(user, reason=RevokeReason.REVOKE_ALL)
                await db.commit()
                user_label = f"{target.model_info.user_model.__name__} {arguments.user_id}"
                print(f"revoked {count} session{'s' if count != 1 else ''} of {user_label}")
        if target.events is not None:
            await target.events.drain()
    finally:
        await close_target(target)
    return EXIT_OK


def repository(db: AsyncSession, target: Target) -> SessionRepository[Any]:
    return SessionRepository(db, target.model_info, signer=None, events=target.events)


async def find_user(db: AsyncSession, model_info: SessionModelInfo[Any], raw_user_id: str) -> Any:
    user_model = model_info.user_model
    key_attribute = getattr(user_model, model_info.user_key_attribute)
    user_id = _parse_user_id(
        raw_user_id, key_attribute, f"{user_model.__name__}.{model_info.user_key_attribute}"
    )
    user = (await db.exec(select(user_model).where(key_attribute == user_id))).first()
    if user is None:
        raise CommandError(
            f"no {user_model.__name__} with {model_info.user_key_attribute} {raw_user_id}", EXIT_NOT_FOUND
        )
    return user


def _parse_user_id(raw: str, attribute: Any, label: str) -> Any:
    try:
        python_type = attribute.property.columns[0].type.python_type
    except (AttributeError, NotImplementedError, IndexError):
        return raw
    try:
        if python_type is int:
            return int(raw)
        if python_type is uuid.UUID:
            return uuid.UUID(raw)
    except ValueError:
        raise CommandError(f"{raw!r} is not a valid {python_type.__name__} for {label}") from None
    return raw


# Finding the model and the database, with messages that name the fix.


async def open_target(arguments: argparse.Namespace) -> Target:
    model_info, events = load_model(arguments.model)
    engine, display_url = make_engine(arguments.database_url)
    target = Target(model_info, engine, display_url, events)
    try:
        await check_table(target)
    except BaseException:
        await engine.dispose()
        raise
    return target


async def close_target(target: Target) -> None:
    await target.engine.dispose()


def load_model(spec: str | None) -> tuple[SessionModelInfo[Any], SessionEvents | None]:
    """The session model (and the app's events, when given an Anchor) named by module:Class."""
    if not spec:
        raise CommandError("no session model: pass --model module:Class (e.g. app.models:UserSession)")
    module_name, colon, attribute_path = spec.partition(":")
    if not colon or not module_name or not attribute_path:
        raise CommandError(f"--model takes module:Class, e.g. app.models:UserSession; got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name is not None and module_name.startswith(error.name):
            raise CommandError(
                f"cannot import {module_name!r} (no module named {error.name!r}): run the command "
                "from your project's folder, or add it to PYTHONPATH"
            ) from None
        raise CommandError(f"importing {module_name!r} failed: {type(error).__name__}: {error}") from None
    except Exception as error:  # noqa: BLE001 - whatever the app's module raises, one line
        raise CommandError(f"importing {module_name!r} failed: {type(error).__name__}: {error}") from None
    found: Any = module
    for name in attribute_path.split("."):
        if not hasattr(found, name):
            raise CommandError(f"module {module_name!r} has no {attribute_path!r}")
        found = getattr(found, name)
    if isinstance(found, Anchor):
        return found.model_info, found.events
    try:
        return inspect_session_model(found), None
    except ConfigurationError as error:
        raise CommandError(f"{spec} is not a usable session model: {error}") from None


def make_engine(raw_url: str | None) -> tuple[AsyncEngine, str]:
    """An engine on the URL, and the URL as printable (its password hidden)."""
    if not raw_url:
        raise CommandError("no database URL: pass --database-url or set DATABASE_URL")
    try:
        url = sa.make_url(raw_url)
    except sa.exc.ArgumentError:
        # Not shown: a URL that does not parse may still hold a password.
        raise CommandError(
            "the database URL does not parse (e.g. postgresql+asyncpg://user@host/db)"
        ) from None
    url = async_url(url)
    display_url = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database in ("", ":memory:") or database.startswith("file:"):
            raise CommandError(f"{display_url} is not a SQLite database file")
        if not Path(database).is_file():
            # aiosqlite would create an empty file and every query would fail later.
            raise CommandError(f"no SQLite database file at {database!r}")
    connect_args: dict[str, Any] = {}
    if url.get_backend_name() == "postgresql":
        connect_args["timeout"] = CONNECT_TIMEOUT_SECONDS
    try:
        engine = create_engine(url, poolclass=sa.NullPool, connect_args=connect_args)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, sa.exc.InvalidRequestError, ImportError) as error:
        raise CommandError(
            f"cannot use {display_url}: {error} (use an async driver: postgresql+asyncpg:// or sqlite+aiosqlite://)"
        ) from None
    return engine, display_url


async def check_table(target: Target) -> None:
    table_name = target.table_name
    schema = target.model_info.model.__table__.schema
    try:
        async with target.engine.connect() as connection:
            exists = await connection.run_sync(
                lambda sync: sa.inspect(sync).has_table(table_name, schema=schema)
            )
    except (sa.exc.DBAPIError, OSError, TimeoutError) as error:
        raise CommandError(f"cannot connect to {target.display_url}: {_first_line(error)}") from None
    if not exists:
        raise CommandError(
            f"{target.display_url} has no table {table_name!r}: wrong database, or run `alembic upgrade head` first"
        )


def _first_line(error: BaseException) -> str:
    original = getattr(error, "orig", None) or error
    text = str(original).strip().splitlines()
    return f"{type(original).__name__}: {text[0] if text else ''}"


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _table(rows: list[dict[str, Any]]) -> str:
    headers = {
        "id": "ID",
        "created_at": "CREATED (UTC)",
        "last_seen_at": "LAST SEEN",
        "expires_at": "EXPIRES",
        "ip_address": "IP",
        "user_agent": "USER AGENT",
    }

    def cell(row: dict[str, Any], key: str) -> str:
        value = row[key]
        if value is None:
            return "-"
        text = str(value)
        if key.endswith("_at"):
            text = text.replace("T", " ").removesuffix("+00:00")
        if key == "user_agent" and len(text) > USER_AGENT_COLUMN_WIDTH:
            text = text[: USER_AGENT_COLUMN_WIDTH - 1] + "…"
        return text

    cells = [[headers[key] for key in headers]] + [[cell(row, key) for key in headers] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
        for line in cells
    )
