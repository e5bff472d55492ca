"""python -m benchmarks.profile [SYSTEM] [--requests N]: where one system's GET /me time goes.

Loads users and sessions into the benchmark database (as the full run does), then sends
the requests under cProfile and prints the functions that took the most time.
SYSTEM is anchor_orm (default), fastapi-anchor, fastapi-users or floor.
"""

import argparse
import asyncio
import cProfile
import pstats
from datetime import UTC, datetime

import sqlalchemy as sa

from benchmarks import _data as data
from benchmarks.__main__ import DEFAULT_POSTGRES_URL, IN_FLIGHT
from benchmarks._driver import run_stream
from benchmarks._scenarios import request_stream
from benchmarks._systems import (
    System,
    build_anchor_orm,
    build_fastapi_anchor,
    build_fastapi_users,
    build_floor,
    me_check,
)

USERS = 10_000
SESSIONS_PER_USER = 10


async def build(name: str, url: sa.URL) -> tuple[System, list[int]]:
    await data.ensure_database(url)
    await data.create_postgres_schema(url)
    await data.load_postgres_users(url, USERS)
    now = datetime.now(UTC)
    owners = [i // SESSIONS_PER_USER + 1 for i in range(USERS * SESSIONS_PER_USER)]
    if name in ("anchor_orm", "floor"):
        sessions = data.make_anchor_orm_sessions(owners)
        await data.load_postgres_anchor_orm(url, "anchor_orm_session", sessions, now)
        if name == "floor":
            return await build_floor(url, sessions.token, pool_size=IN_FLIGHT), owners
        return build_anchor_orm(url, sessions.token, pool_size=IN_FLIGHT)[0], owners
    if name == "fastapi-anchor":
        ids, rows = data.make_fastapi_anchor_rows(owners, now)
        await data.copy_rows(url, "anchor_sessions", ["id", "user_id", "expires_at", "created_at"], rows)
        return build_fastapi_anchor(url, ids, pool_size=IN_FLIGHT), owners
    tokens, rows = data.make_fastapi_users_rows(owners, now)
    await data.copy_rows(url, "accesstoken", ["token", "created_at", "user_id"], rows)
    return build_fastapi_users(url, tokens, pool_size=IN_FLIGHT), owners


async def profile(name: str, requests: int, url: sa.URL, sort: str, limit: int) -> None:
    system, owners = await build(name, url)
    stream = request_stream(len(owners), requests + 500, seed=11)
    system.prepare(stream)
    check = me_check(owners.__getitem__)
    await run_stream(system.app, stream[:500], system.me_request, check, in_flight=IN_FLIGHT)
    profiler = cProfile.Profile()
    profiler.enable()
    result = await run_stream(system.app, stream[500:], system.me_request, check, in_flight=IN_FLIGHT)
    profiler.disable()
    await system.close()
    print(
        f"{system.name}: {result.requests} requests, {result.requests_per_second:.0f} req/s under the profiler"
    )
    pstats.Stats(profiler).sort_stats(sort).print_stats(limit)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__)
    parser.add_argument("system", nargs="?", default="anchor_orm")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--sort", default="tottime", help="pstats order: tottime or cumulative")
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    args = parser.parse_args()
    asyncio.run(profile(args.system, args.requests, sa.make_url(args.postgres_url), args.sort, args.limit))


if __name__ == "__main__":
    main()
