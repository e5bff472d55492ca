"""The measurements: interleaved rounds of one request stream, and anchor_orm's own runs
(revoke_all, purge under load, 10,000 against 1,000,000 sessions)."""

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from anchor_orm import Anchor, create_engine
from anchor_orm._purge import PurgeBatch, purge_expired_sessions
from benchmarks._driver import StreamResult, percentile, run_stream
from benchmarks._models import BenchUser
from benchmarks._systems import System, login_check, me_check


@dataclass
class Figures:
    """What one system did over all its rounds of one kind of request."""

    requests: int = 0
    seconds: float = 0.0
    failures: int = 0
    cpu_seconds: float = 0.0
    latencies_seconds: list[float] = field(default_factory=list)
    statements_per_request: dict[str, float] = field(default_factory=dict)

    def add(self, result: StreamResult) -> None:
        self.requests += result.requests
        self.seconds += result.seconds
        self.failures += result.failures
        self.cpu_seconds += result.cpu_seconds
        self.latencies_seconds.extend(result.latencies_seconds)

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "failures": self.failures,
            "requests_per_second": round(self.requests_per_second, 1),
            "p50_ms": round(percentile(self.latencies_seconds, 0.50) * 1000, 3),
            "p99_ms": round(percentile(self.latencies_seconds, 0.99) * 1000, 3),
            "cpu_ms_per_request": round(self.cpu_seconds / max(self.requests, 1) * 1000, 3),
            "statements_per_request": {k: round(v, 3) for k, v in self.statements_per_request.items()},
        }


def request_stream(item_count: int, length: int, seed: int) -> list[int]:
    """The same pseudo-random picks for every system: which session each request carries."""
    rng = random.Random(seed)
    return [rng.randrange(item_count) for _ in range(length)]


async def interleaved_rounds(
    systems: Sequence[System],
    stream: list[int] | Sequence[list[int]],
    *,
    rounds: int,
    in_flight: int,
    user_of: Callable[[int], int] | Sequence[Callable[[int], int]],
    login: bool = False,
    warmup_requests: int = 200,
) -> dict[str, Figures]:
    """Round r gives every system the same slice of the stream; the order rotates per round
    so no system always runs first (a warmer cache, a quieter machine).

    ``stream`` and ``user_of`` may instead be given per system (one table each)."""
    streams = list(stream) if stream and isinstance(stream[0], list) else [stream] * len(systems)
    owners = list(user_of) if isinstance(user_of, Sequence) else [user_of] * len(systems)
    figures = {system.name: Figures() for system in systems}
    checks = {
        system.name: login_check if login else me_check(owner)
        for system, owner in zip(systems, owners, strict=True)
    }
    streams_by_name = {system.name: s for system, s in zip(systems, streams, strict=True)}
    for system in systems:
        own_stream = streams_by_name[system.name]
        if not login:
            system.prepare(own_stream)
        request = system.login_request if login else system.me_request
        # Warm-up: code paths hot, caches filled; not counted.
        await run_stream(
            system.app, own_stream[:warmup_requests], request, checks[system.name], in_flight=in_flight
        )
        await system.close()
    per_round = len(streams[0]) // rounds
    statement_totals: dict[str, dict[str, int]] = {
        s.name: {"reads": 0, "writes": 0, "tx": 0} for s in systems
    }
    for round_index in range(rounds):
        shift = round_index % len(systems)
        for system in [*systems[shift:], *systems[:shift]]:
            items = streams_by_name[system.name][round_index * per_round : (round_index + 1) * per_round]
            request = system.login_request if login else system.me_request
            # Each turn opens its pool anew (see System.close): these requests fill it and
            # prepare the statements on the new connections, uncounted.
            await run_stream(
                system.app, items[: in_flight * 4], request, checks[system.name], in_flight=in_flight
            )
            system.counter.reset()
            result = await run_stream(system.app, items, request, checks[system.name], in_flight=in_flight)
            figures[system.name].add(result)
            totals = statement_totals[system.name]
            totals["reads"] += system.counter.reads
            totals["writes"] += system.counter.writes
            totals["tx"] += system.counter.transaction_control
            await system.close()
    for system in systems:
        totals = statement_totals[system.name]
        count = max(figures[system.name].requests, 1)
        figures[system.name].statements_per_request = {
            "reads": totals["reads"] / count,
            "writes": totals["writes"] / count,
            "transaction_control": totals["tx"] / count,
        }
    return figures


async def revoke_all_run(anchor: Anchor[Any], engine: Any, counter: Any, user_id: int) -> dict[str, Any]:
    """revoke_all of one user's many sessions, and its commit: time and statement count."""
    async with AsyncSession(engine, expire_on_commit=False) as db:
        async with db.begin():
            user = await db.get(BenchUser, user_id)
        counter.reset()
        started = time.perf_counter()
        async with db.begin():
            revoked = await anchor.repository(db).revoke_all(user)
        elapsed = time.perf_counter() - started
    return {
        "sessions_revoked": revoked,
        "statements": counter.reads + counter.writes,
        "seconds": round(elapsed, 4),
    }


async def purge_under_load(
    system: System,
    anchor: Anchor[Any],
    url: Any,
    stream: list[int],
    *,
    in_flight: int,
    user_of: Callable[[int], int],
    batch_size: int,
    pause_ratio: float,
) -> dict[str, Any]:
    """Validation throughput before and while the expired rows are purged in batches,
    one batch per transaction (so locks stay short), as the purge command runs it: on a
    connection of its own, pausing ``pause_ratio`` times each batch's duration between
    batches so that the purge leaves the database room for the requests."""
    check = me_check(user_of)
    system.prepare(stream)
    await run_stream(system.app, stream[:200], system.me_request, check, in_flight=in_flight)
    before = await run_stream(system.app, stream, system.me_request, check, in_flight=in_flight)

    done = asyncio.Event()
    purged = 0

    # Two connections: the purge's advisory lock holds one (PostgreSQL), batches use the other.
    engine = create_engine(url, pool_size=2, max_overflow=0)
    batch_started = time.perf_counter()

    async def pace(_batch: PurgeBatch) -> None:
        nonlocal batch_started
        if pause_ratio:
            await asyncio.sleep((time.perf_counter() - batch_started) * pause_ratio)
        batch_started = time.perf_counter()

    async def purge() -> float:
        nonlocal purged, batch_started
        started = batch_started = time.perf_counter()
        try:
            # The library's own purge (what `anchor-orm purge` runs): one batch
            # per transaction on a connection of its own.
            result = await purge_expired_sessions(
                engine, anchor.model_info.model, batch_size=batch_size, on_batch=pace
            )
            purged = result.purged_count
        finally:
            done.set()
            await engine.dispose()
        return time.perf_counter() - started

    purge_task = asyncio.create_task(purge())
    during = await run_stream(
        system.app, stream, system.me_request, check, in_flight=in_flight, stop_event=done
    )
    purge_seconds = await purge_task
    return {
        "rows_purged": purged,
        "purge_seconds": round(purge_seconds, 2),
        "purge_rows_per_second": round(purged / purge_seconds, 1) if purge_seconds else None,
        "batch_size": batch_size,
        "pause_ratio": pause_ratio,
        "requests_per_second_before": round(before.requests_per_second, 1),
        "requests_per_second_during": round(during.requests_per_second, 1),
        "requests_during": during.requests,
        "failures": before.failures + during.failures,
        "ratio_during_to_before": round(during.requests_per_second / before.requests_per_second, 3),
    }
