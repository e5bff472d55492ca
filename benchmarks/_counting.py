"""Counts the SQL a system sends: reads, writes and transaction control, per request."""

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

WRITE_VERBS = ("insert", "update", "delete")


@dataclass
class StatementCounter:
    reads: int = 0
    writes: int = 0
    # BEGIN / COMMIT / ROLLBACK: round trips too, but no rows.
    transaction_control: int = 0

    def reset(self) -> None:
        self.reads = self.writes = self.transaction_control = 0

    def count_sql(self, sql: str) -> None:
        verb = sql.lstrip().split(None, 1)[0].lower() if sql.strip() else ""
        if verb in WRITE_VERBS:
            self.writes += 1
        elif verb in ("begin", "commit", "rollback", "start"):
            self.transaction_control += 1
        else:
            self.reads += 1

    def per_request(self, requests: int) -> dict[str, float]:
        divisor = max(requests, 1)
        return {
            "reads": self.reads / divisor,
            "writes": self.writes / divisor,
            "transaction_control": self.transaction_control / divisor,
        }

    def watch_engine(self, engine: AsyncEngine) -> None:
        """Counts every statement the engine's connections execute (SQLAlchemy events)."""
        sync_engine = engine.sync_engine

        def before_cursor_execute(*args: Any) -> None:
            self.count_sql(args[2])

        def on_transaction_control(*_: Any) -> None:
            self.transaction_control += 1

        sa.event.listen(sync_engine, "before_cursor_execute", before_cursor_execute)
        # The asyncpg dialect sends BEGIN and COMMIT through asyncpg's transaction
        # object, not a cursor: these events see them.
        for name in ("begin", "commit", "rollback"):
            sa.event.listen(sync_engine, name, on_transaction_control)
