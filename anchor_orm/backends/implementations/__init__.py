"""The stores of the fastapi-anchor API.

The PostgreSQL names load SQLAlchemy only when first used, so an app on the in-memory
backend imports no database code at all.
"""

from typing import TYPE_CHECKING, Any

from anchor_orm.backends.implementations.in_memory_backend import InMemoryBackend

if TYPE_CHECKING:
    from anchor_orm.backends.implementations.postgres_backend import (
        PostgresBackend,
        PostgresSessionData,
        anchor_sessions_table,
    )

_SQL_NAMES = ("PostgresBackend", "PostgresSessionData", "anchor_sessions_table")


def __getattr__(name: str) -> Any:
    if name in _SQL_NAMES:
        from anchor_orm.backends.implementations import postgres_backend

        return getattr(postgres_backend, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["InMemoryBackend", "PostgresBackend", "PostgresSessionData", "anchor_sessions_table"]
