"""Counts the SQL statements an engine runs, by kind."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine


@dataclass
class StatementLog:
    statements: list[str] = field(default_factory=list)

    def of_kind(self, *kinds: str) -> list[str]:
        return [s for s in self.statements if s.lstrip().split(None, 1)[0].upper() in kinds]

    @property
    def selects(self) -> list[str]:
        return self.of_kind("SELECT")

    @property
    def writes(self) -> list[str]:
        return self.of_kind("INSERT", "UPDATE", "DELETE")

    @property
    def session_statements(self) -> list[str]:
        """Statements other than transaction control and driver housekeeping."""
        return self.of_kind("SELECT", "INSERT", "UPDATE", "DELETE")


@contextmanager
def count_statements(engine: AsyncEngine) -> Iterator[StatementLog]:
    log = StatementLog()

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        log.statements.append(statement)

    sa.event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield log
    finally:
        sa.event.remove(engine.sync_engine, "before_cursor_execute", record)
