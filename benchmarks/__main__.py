"""python -m benchmarks [--quick] [--postgres-url URL] [--skip-sqlite]

anchor_orm side by side with fastapi-anchor 0.1.1, fastapi-users and the floor, on one
PostgreSQL database; then anchor_orm's own runs, on PostgreSQL and on SQLite.
"""

import argparse
import asyncio
import gc
import json
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from benchmarks import _data as data
from benchmarks._models import LargeTableSession, SmallTableSession
from benchmarks._report import evaluate_targets, print_report
from benchmarks._scenarios import interleaved_rounds, purge_under_load, request_stream, revoke_all_run
from benchmarks._systems import (
    build_anchor_orm,
    build_fastapi_anchor,
    build_fastapi_users,
    build_floor,
    build_orm_reference,
)

DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/anchor_bench"
RESULTS = Path(__file__).resolve().parent / "results"
IN_FLIGHT = 16


@dataclass(frozen=True)
class Sizes:
    users: int = 10_000
    sessions_per_user: int = 10
    rounds: int = 4
    requests_per_round: int = 2_500
    login_rounds: int = 3
    logins_per_round: int = 600
    revoke_sessions: int = 10_000
    small_table_sessions: int = 10_000
    large_table_sessions: int = 1_000_000
    scale_rounds: int = 4
    scale_requests_per_round: int = 2_000
    purge_rows: int = 1_000_000
    purge_batch_size: int = 5_000
    # The purge sleeps this many times each batch's duration between batches: a third
    # of the time at work, it still clears 1,000,000 rows in about a minute here.
    purge_pause_ratio: float = 3.0
    # SQLite serves fewer requests per second here: fewer requests keep the run near
    # ten minutes.
    sqlite_requests_per_round: int = 1_000
    sqlite_scale_requests_per_round: int = 1_000
    sqlite_purge_before_requests: int = 3_000
    purge_before_requests: int = 6_000


QUICK = Sizes(
    rounds=2,
    requests_per_round=1_000,
    sqlite_requests_per_round=500,
    sqlite_scale_requests_per_round=500,
    sqlite_purge_before_requests=1_000,
    login_rounds=2,
    logins_per_round=200,
    large_table_sessions=100_000,
    scale_rounds=2,
    scale_requests_per_round=1_000,
    purge_rows=100_000,
    purge_before_requests=2_000,
)


def freeze_loaded_objects() -> None:
    """Moves the loaded rows and tokens out of the collector's reach: a full collection
    would otherwise walk millions of them, landing on whichever system happens to run."""
    gc.collect()
    gc.freeze()


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


async def load_common(url: sa.URL, sizes: Sizes, backend: str, sqlite_path: str | None) -> dict[str, Any]:
    """Users, and anchor_orm's main sessions; returns what the apps need to find them."""
    now = datetime.now(UTC)
    session_count = sizes.users * sizes.sessions_per_user
    # Item i is session i % 10 of user i // 10 + 1; users past sizes.users own the big sets.
    owners = [i // sizes.sessions_per_user + 1 for i in range(session_count)]
    revoke_user = sizes.users + 1
    user_count = sizes.users + 1
    main = data.make_anchor_orm_sessions(owners)
    revoke_set = data.make_anchor_orm_sessions([revoke_user] * sizes.revoke_sessions, shared_secret=True)
    if backend == "postgresql":
        await data.load_postgres_users(url, user_count)
        await data.load_postgres_anchor_orm(url, "anchor_orm_session", main, now)
        await data.load_postgres_anchor_orm(url, "anchor_orm_session", revoke_set, now)
    else:
        assert sqlite_path is not None
        data.sqlite_insert(sqlite_path, "bench_user", data.USER_COLUMNS, data.user_rows(user_count))
        for sessions in (main, revoke_set):
            data.sqlite_insert(
                sqlite_path,
                "anchor_orm_session",
                data.ANCHOR_ORM_COLUMNS,
                data.sqlite_anchor_orm_rows(sessions.rows(now)),
            )
    return {"now": now, "owners": owners, "main": main, "revoke_user": revoke_user}


async def load_scale_tables(
    url: sa.URL, sizes: Sizes, backend: str, sqlite_path: str | None
) -> dict[str, Any]:
    now = datetime.now(UTC)
    small = data.make_anchor_orm_sessions(
        [i % sizes.users + 1 for i in range(sizes.small_table_sessions)], shared_secret=True
    )
    large = data.make_anchor_orm_sessions(
        [i % sizes.users + 1 for i in range(sizes.large_table_sessions)], shared_secret=True
    )
    for table, sessions in (
        ("anchor_orm_small_table_session", small),
        ("anchor_orm_large_table_session", large),
    ):
        if backend == "postgresql":
            await data.load_postgres_anchor_orm(url, table, sessions, now)
        else:
            assert sqlite_path is not None
            data.sqlite_insert(
                sqlite_path, table, data.ANCHOR_ORM_COLUMNS, data.sqlite_anchor_orm_rows(sessions.rows(now))
            )
    return {"small": small, "large": large}


async def load_expired(url: sa.URL, sizes: Sizes, backend: str, sqlite_path: str | None) -> None:
    now = datetime.now(UTC)
    expired = data.make_anchor_orm_sessions(
        [i % sizes.users + 1 for i in range(sizes.purge_rows)], shared_secret=True
    )
    table = "anchor_orm_large_table_session"
    if backend == "postgresql":
        await data.load_postgres_anchor_orm(url, table, expired, now, expired=True)
    else:
        assert sqlite_path is not None
        data.sqlite_insert(
            sqlite_path,
            table,
            data.ANCHOR_ORM_COLUMNS,
            data.sqlite_anchor_orm_rows(expired.rows(now, expired=True)),
        )


async def anchor_orm_runs(
    url: sa.URL, sizes: Sizes, backend: str, sqlite_path: str | None, loaded: dict[str, Any], seed: int
) -> dict[str, Any]:
    """revoke_all, 10,000 against 1,000,000 sessions, and the purge under load."""
    results: dict[str, Any] = {}
    system, anchor, engine = build_anchor_orm(url, loaded["main"].token, pool_size=IN_FLIGHT)
    log(f"{backend}: revoke_all of a user with {sizes.revoke_sessions:,} sessions")
    results["revoke_all"] = await revoke_all_run(anchor, engine, system.counter, loaded["revoke_user"])
    await system.close()

    log(f"{backend}: loading {sizes.small_table_sessions:,} and {sizes.large_table_sessions:,} sessions")
    started = time.perf_counter()
    scale = await load_scale_tables(url, sizes, backend, sqlite_path)
    freeze_loaded_objects()
    log(f"{backend}: loaded in {time.perf_counter() - started:.1f}s")
    small_system, _, _ = build_anchor_orm(
        url, scale["small"].token, pool_size=IN_FLIGHT, session_model=SmallTableSession, name="small table"
    )
    large_system, large_anchor, _ = build_anchor_orm(
        url, scale["large"].token, pool_size=IN_FLIGHT, session_model=LargeTableSession, name="large table"
    )
    length = sizes.scale_rounds * sizes.scale_requests_per_round
    # Each table gets picks spread over all of its own rows.
    small_stream = request_stream(sizes.small_table_sessions, length, seed + 1)
    large_stream = request_stream(sizes.large_table_sessions, length, seed + 2)
    small_system.prepare(small_stream)
    large_system.prepare(large_stream)
    log(
        f"{backend}: validation latency, {sizes.small_table_sessions:,} against {sizes.large_table_sessions:,} sessions"
    )
    small_owner = scale["small"].user_ids.__getitem__
    large_owner = scale["large"].user_ids.__getitem__
    scale_figures = await interleaved_rounds(
        [small_system, large_system],
        [small_stream, large_stream],
        rounds=sizes.scale_rounds,
        in_flight=IN_FLIGHT,
        user_of=[small_owner, large_owner],
    )
    results["scale"] = {
        "small_table_sessions": sizes.small_table_sessions,
        "large_table_sessions": sizes.large_table_sessions,
        "small": scale_figures["small table"].summary(),
        "large": scale_figures["large table"].summary(),
    }
    await small_system.close()

    log(f"{backend}: loading {sizes.purge_rows:,} expired sessions, then purging them under load")
    await load_expired(url, sizes, backend, sqlite_path)
    purge_stream = request_stream(sizes.large_table_sessions, sizes.purge_before_requests, seed + 3)
    results["purge"] = await purge_under_load(
        large_system,
        large_anchor,
        url,
        purge_stream,
        in_flight=IN_FLIGHT,
        user_of=large_owner,
        batch_size=sizes.purge_batch_size,
        pause_ratio=sizes.purge_pause_ratio,
    )
    await large_system.close()
    return results


async def postgres_part(url: sa.URL, sizes: Sizes, seed: int) -> dict[str, Any]:
    log(f"PostgreSQL: database {url.database} (created if missing), tables made anew")
    await data.ensure_database(url)
    await data.create_postgres_schema(url)
    started = time.perf_counter()
    loaded = await load_common(url, sizes, "postgresql", None)
    owners = loaded["owners"]
    session_count = len(owners)
    fastapi_anchor_ids, fastapi_anchor_rows = data.make_fastapi_anchor_rows(owners, loaded["now"])
    await data.copy_rows(
        url, "anchor_sessions", ["id", "user_id", "expires_at", "created_at"], fastapi_anchor_rows
    )
    fastapi_users_tokens, fastapi_users_rows = data.make_fastapi_users_rows(owners, loaded["now"])
    await data.copy_rows(url, "accesstoken", ["token", "created_at", "user_id"], fastapi_users_rows)
    freeze_loaded_objects()
    log(
        f"loaded {sizes.users:,} users and {session_count:,} sessions per system in {time.perf_counter() - started:.1f}s"
    )

    anchor_orm, _, _ = build_anchor_orm(url, loaded["main"].token, pool_size=IN_FLIGHT)
    systems = [
        anchor_orm,
        build_fastapi_anchor(url, fastapi_anchor_ids, pool_size=IN_FLIGHT),
        build_fastapi_users(url, fastapi_users_tokens, pool_size=IN_FLIGHT),
        await build_floor(url, loaded["main"].token, pool_size=IN_FLIGHT),
        build_orm_reference(url, loaded["main"].token, pool_size=IN_FLIGHT),
    ]
    stream = request_stream(session_count, sizes.rounds * sizes.requests_per_round, seed)
    log(
        f"GET /me: {sizes.rounds} interleaved rounds of {sizes.requests_per_round:,} requests per system, {IN_FLIGHT} in flight"
    )
    validation = await interleaved_rounds(
        systems, stream, rounds=sizes.rounds, in_flight=IN_FLIGHT, user_of=owners.__getitem__
    )
    log(f"POST /login: {sizes.login_rounds} interleaved rounds of {sizes.logins_per_round:,} per system")
    login_users = [
        i % sizes.users + 1
        for i in request_stream(sizes.users, sizes.login_rounds * sizes.logins_per_round, seed + 7)
    ]
    logins = await interleaved_rounds(
        systems[:4],  # the reference has no login
        login_users,
        rounds=sizes.login_rounds,
        in_flight=IN_FLIGHT,
        user_of=int,
        login=True,
        warmup_requests=50,
    )
    for system in systems:
        await system.close()
    extra = await anchor_orm_runs(url, sizes, "postgresql", None, loaded, seed)
    return {
        "validation": {name: figures.summary() for name, figures in validation.items()},
        "login": {name: figures.summary() for name, figures in logins.items()},
        **extra,
    }


async def sqlite_part(sizes: Sizes, seed: int) -> dict[str, Any]:
    sizes = replace(
        sizes,
        requests_per_round=sizes.sqlite_requests_per_round,
        scale_requests_per_round=sizes.sqlite_scale_requests_per_round,
        purge_before_requests=sizes.sqlite_purge_before_requests,
    )
    with tempfile.TemporaryDirectory(prefix="anchor-bench-") as folder:
        path = str(Path(folder) / "bench.db")
        url = sa.make_url(f"sqlite+aiosqlite:///{path}")
        log(f"SQLite: {path}")
        await data.create_sqlite_schema(url)
        loaded = await load_common(url, sizes, "sqlite", path)
        owners = loaded["owners"]
        freeze_loaded_objects()
        system, _, _ = build_anchor_orm(url, loaded["main"].token, pool_size=IN_FLIGHT)
        stream = request_stream(len(owners), sizes.rounds * sizes.requests_per_round, seed)
        log(f"SQLite GET /me: {sizes.rounds} rounds of {sizes.requests_per_round:,}")
        validation = await interleaved_rounds(
            [system], stream, rounds=sizes.rounds, in_flight=IN_FLIGHT, user_of=owners.__getitem__
        )
        login_users = [
            i % sizes.users + 1
            for i in request_stream(sizes.users, sizes.login_rounds * sizes.logins_per_round, seed + 7)
        ]
        logins = await interleaved_rounds(
            [system],
            login_users,
            rounds=sizes.login_rounds,
            in_flight=IN_FLIGHT,
            user_of=int,
            login=True,
            warmup_requests=50,
        )
        await system.close()
        extra = await anchor_orm_runs(url, sizes, "sqlite", path, loaded, seed)
    return {
        "validation": {name: figures.summary() for name, figures in validation.items()},
        "login": {name: figures.summary() for name, figures in logins.items()},
        **extra,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short run (about 2 minutes)")
    parser.add_argument(
        "--postgres-url", default=DEFAULT_POSTGRES_URL, help="its database is created and used"
    )
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--purge-pause-ratio",
        type=float,
        default=None,
        help="pause between purge batches, as a multiple of a batch's duration (default 3; 0: no pause)",
    )
    args = parser.parse_args()
    sizes = QUICK if args.quick else Sizes()
    if args.purge_pause_ratio is not None:
        sizes = replace(sizes, purge_pause_ratio=args.purge_pause_ratio)
    url = sa.make_url(args.postgres_url)
    if url.database in (None, "", "postgres", "template0", "template1", "test"):
        sys.exit("--postgres-url must name a database of the benchmark's own, such as anchor_bench")
    started = time.perf_counter()
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "sizes": asdict(sizes),
        "in_flight": IN_FLIGHT,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores",
    }
    results["postgresql"] = asyncio.run(postgres_part(url, sizes, args.seed))
    if not args.skip_sqlite:
        results["sqlite"] = asyncio.run(sqlite_part(sizes, args.seed))
    results["seconds"] = round(time.perf_counter() - started, 1)
    results["targets"] = evaluate_targets(results)
    print_report(results)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for name in (f"bench-{stamp}.json", "latest.json"):
        (RESULTS / name).write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten: {RESULTS / 'latest.json'} (and bench-{stamp}.json)")


if __name__ == "__main__":
    main()
