"""What an application's Alembic ``env.py`` adds so autogenerate works with anchor_orm.

Autogenerate writes a library ``TypeDecorator`` (anchor_orm's ``UTCDateTime``,
SQLModel's ``AutoString`` and ``UTCDateTime``) as ``module.path.Type()`` without
importing the module, so the revision fails with NameError on upgrade. ``render_item``
writes the plain ``sa.`` type underneath instead: the DDL is the same, and the revision
stays valid whatever the library does later. In ``env.py``::

    from anchor_orm.alembic import render_item

    context.configure(..., target_metadata=target_metadata, render_item=render_item)

``sqlite_foreign_keys_off`` wraps the migrations when env.py connects with
``anchor_orm.create_engine``, which turns SQLite's foreign keys on.

``ignore_legacy_sessions_table`` is an ``include_name`` hook for apps that still run
fastapi-anchor's ``PostgresBackend``: its ``anchor_sessions`` table is not in the
app's metadata, so autogenerate would otherwise propose dropping it.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import sqlalchemy as sa
from alembic.autogenerate.api import AutogenContext

from anchor_orm._errors import AnchorError

__all__ = [
    "LEGACY_SESSIONS_TABLE",
    "ignore_legacy_sessions_table",
    "render_item",
    "sqlite_foreign_keys_off",
]

# The table fastapi-anchor's PostgresBackend (and anchor_orm.backends) stores sessions in.
LEGACY_SESSIONS_TABLE = "anchor_sessions"

# Column types from these packages are rendered as their plain SQLAlchemy type.
_LIBRARY_TYPE_MODULES = ("anchor_orm", "sqlmodel")


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """An Alembic ``render_item`` hook: library column types become plain ``sa.`` types.

    Returns False for everything else, which tells Alembic to render it as usual. An
    app with a hook of its own calls this one first::

        def my_render_item(type_, obj, autogen_context):
            return render_item(type_, obj, autogen_context) or my_rendering(...)
    """
    if type_ != "type" or not isinstance(obj, sa.types.TypeDecorator):
        return False
    if not type(obj).__module__.startswith(_LIBRARY_TYPE_MODULES):
        return False
    impl = obj.impl_instance
    if not type(impl).__module__.startswith("sqlalchemy."):
        return False
    prefix = autogen_context.opts.get("sqlalchemy_module_prefix") or "sa."
    # repr() of a SQLAlchemy type is its constructor call: "DateTime(timezone=True)".
    return f"{prefix}{impl!r}"


def ignore_legacy_sessions_table(name: str | None, type_: str, parent_names: Any) -> bool:
    """An Alembic ``include_name`` hook that leaves fastapi-anchor's table alone.

    Use it while the app still runs the legacy ``PostgresBackend``; drop it from
    ``env.py`` in the revision that moves sessions to the new model.
    """
    return not (type_ == "table" and name == LEGACY_SESSIONS_TABLE)


@contextmanager
def sqlite_foreign_keys_off(connection: sa.Connection) -> Iterator[None]:
    """On SQLite, runs the migrations with foreign keys off, then checks them.

    Batch mode changes a SQLite table by copying it and dropping the old one. With
    foreign keys on, DROP TABLE first deletes every row, and ON DELETE CASCADE takes
    every session (and any other child row) with it. SQLite's own procedure for such
    changes turns foreign keys off, which works only outside a transaction: so the
    connection must be fresh, and the migrations commit inside the block (Alembic's
    ``context.begin_transaction()`` does). Afterwards ``PRAGMA foreign_key_check``
    reports rows left without a parent. Does nothing on other databases::

        def do_run_migrations(connection):
            context.configure(connection=connection, ...)
            with sqlite_foreign_keys_off(connection), context.begin_transaction():
                context.run_migrations()
    """
    if connection.dialect.name != "sqlite":
        yield
        return
    connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    if _foreign_keys_on(connection):
        raise AnchorError(
            "could not turn SQLite foreign keys off: the connection is inside a "
            "transaction. Run the migrations on a fresh connection."
        )
    try:
        yield
    except BaseException:
        _foreign_keys_back_on_or_discard(connection)
        raise
    if not _foreign_keys_back_on_or_discard(connection):
        raise AnchorError(
            "the migrations did not commit inside sqlite_foreign_keys_off(), so foreign "
            "keys could not be turned back on; the connection was discarded. Put "
            "context.begin_transaction() inside it."
        )
    orphans = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if orphans:
        tables = sorted({str(row[0]) for row in orphans})
        raise AnchorError(
            f"the migrations left {len(orphans)} rows of {', '.join(tables)} pointing to "
            "rows that do not exist; PRAGMA foreign_key_check lists them."
        )


def _foreign_keys_on(connection: sa.Connection) -> bool:
    return bool(connection.exec_driver_sql("PRAGMA foreign_keys").scalar())


def _foreign_keys_back_on_or_discard(connection: sa.Connection) -> bool:
    """True when foreign keys are on again; else the connection never goes back to the pool."""
    if not connection.invalidated:
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        if _foreign_keys_on(connection):
            return True
    # Inside a transaction SQLite ignores the switch: a pooled connection with foreign
    # keys off would let the app delete users and keep their sessions.
    connection.invalidate()
    return False
