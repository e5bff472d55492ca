"""Drives an ASGI app in-process: no sockets, so a figure is the framework, the
library and its database round trips, nothing of a network stack or HTTP parser."""

import asyncio
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

Headers = list[tuple[bytes, bytes]]

# What a browser adds to a same-origin fetch; anchor_orm's CSRF guard wants it on posts.
SAME_ORIGIN_HEADERS: Headers = [
    (b"origin", b"https://bench.example"),
    (b"sec-fetch-site", b"same-origin"),
]


@dataclass
class Response:
    status: int
    headers: Headers
    body: bytes


async def call(
    app: Any, method: str, path: str, *, query: bytes = b"", headers: Headers | None = None
) -> Response:
    """One request through ``app``: the ASGI messages a server would exchange."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "https",
        "path": path,
        "raw_path": path.encode("ascii"),
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"bench.example"), *(headers or [])],
        "client": ("127.0.0.1", 50000),
        "server": ("bench.example", 443),
        "state": {},
    }
    request_sent = False

    async def receive() -> dict[str, Any]:
        nonlocal request_sent
        if request_sent:
            # Only reached if the app waits for a disconnect: never in these routes.
            await asyncio.sleep(3600)
        request_sent = True
        return {"type": "http.request", "body": b"", "more_body": False}

    status = 0
    response_headers: Headers = []
    body_parts: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, response_headers
        if message["type"] == "http.response.start":
            status = message["status"]
            response_headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            body_parts.append(message.get("body", b""))

    await app(scope, receive, send)
    return Response(status, response_headers, b"".join(body_parts))


@dataclass
class StreamResult:
    requests: int
    seconds: float
    latencies_seconds: list[float] = field(default_factory=list)
    failures: int = 0
    # This process's CPU time (user + system) over the stream: on a machine shared with
    # other jobs it varies less than throughput does.
    cpu_seconds: float = 0.0

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


RequestFactory = Callable[[int], tuple[str, str, bytes, Headers]]
Check = Callable[[int, Response], bool]


async def run_stream(
    app: Any,
    items: Sequence[int],
    make_request: RequestFactory,
    check: Check,
    *,
    in_flight: int,
    stop_event: asyncio.Event | None = None,
) -> StreamResult:
    """Sends one request per item, ``in_flight`` at a time, and times each one.

    With ``stop_event`` the stream loops over ``items`` until the event is set, so a
    load can run for as long as something else (a purge) takes.
    """
    position = 0
    latencies: list[float] = []
    failures = 0

    async def worker() -> None:
        nonlocal position, failures
        while True:
            if stop_event is None:
                if position >= len(items):
                    return
            elif stop_event.is_set():
                return
            item = items[position % len(items)]
            position += 1
            method, path, query, headers = make_request(item)
            started = time.perf_counter()
            response = await call(app, method, path, query=query, headers=headers)
            latencies.append(time.perf_counter() - started)
            if not check(item, response):
                failures += 1
                if failures == 1:
                    print(f"    unexpected response {response.status}: {response.body[:200]!r}")

    cpu_before = os.times()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    elapsed = time.perf_counter() - started
    cpu_after = os.times()
    cpu_seconds = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
    return StreamResult(len(latencies), elapsed, latencies, failures, cpu_seconds)


def percentile(values: Sequence[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]
