"""The targets of issue 7, checked against a run, and the printed tables."""

from typing import Any

ANCHOR_ORM = "anchor_orm"
FASTAPI_ANCHOR = "fastapi-anchor 0.1.1"
FASTAPI_USERS = "fastapi-users"
FLOOR = "floor (signed cookie + asyncpg)"


def _target(name: str, measured: float, wanted: str, met: bool, unit: str = "") -> dict[str, Any]:
    return {"target": name, "measured": f"{measured:.3g}{unit}", "wanted": wanted, "met": met}


def evaluate_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    targets: list[dict[str, Any]] = []
    postgres = results["postgresql"]
    validation = postgres["validation"]
    ours = validation[ANCHOR_ORM]["requests_per_second"]
    for peer in (FASTAPI_ANCHOR, FASTAPI_USERS):
        ratio = ours / validation[peer]["requests_per_second"]
        targets.append(_target(f"PostgreSQL GET /me throughput vs {peer}", ratio, ">= 2x", ratio >= 2, "x"))
    floor_ratio = ours / validation[FLOOR]["requests_per_second"]
    targets.append(
        _target("PostgreSQL GET /me throughput vs the floor", floor_ratio, ">= 0.5x", floor_ratio >= 0.5, "x")
    )
    for backend in ("postgresql", "sqlite"):
        part = results.get(backend)
        if part is None:
            continue
        label = "PostgreSQL" if backend == "postgresql" else "SQLite"
        writes = part["validation"][ANCHOR_ORM]["statements_per_request"]["writes"]
        targets.append(_target(f"{label} writes per GET /me (no touch due)", writes, "0", writes == 0))
        statements = part["revoke_all"]["statements"]
        targets.append(
            _target(
                f"{label} revoke_all of {part['revoke_all']['sessions_revoked']:,} sessions: statements",
                statements,
                "1",
                statements == 1,
            )
        )
        scale = part["scale"]
        latency_ratio = scale["large"]["p50_ms"] / scale["small"]["p50_ms"]
        targets.append(
            _target(
                f"{label} p50 at {scale['large_table_sessions']:,} vs {scale['small_table_sessions']:,} sessions",
                latency_ratio,
                "<= 1.2x",
                latency_ratio <= 1.2,
                "x",
            )
        )
        purge_ratio = part["purge"]["ratio_during_to_before"]
        targets.append(
            _target(
                f"{label} GET /me throughput during a purge of {part['purge']['rows_purged']:,} rows vs before",
                purge_ratio,
                ">= 0.8x",
                purge_ratio >= 0.8,
                "x",
            )
        )
    return targets


def _validation_table(title: str, figures: dict[str, Any], floor_rps: float | None) -> None:
    print(f"\n{title}")
    header = (
        f"{'system':38} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'x floor':>7} {'cpu ms':>7} "
        f"{'reads':>5} {'writes':>6} {'tx':>4}"
    )
    print(header)
    print("-" * len(header))
    for name, row in figures.items():
        statements = row["statements_per_request"]
        ratio = f"{row['requests_per_second'] / floor_rps:.2f}" if floor_rps else "-"
        failures = f"  ({row['failures']} failed!)" if row["failures"] else ""
        print(
            f"{name:38} {row['requests_per_second']:7.0f} {row['p50_ms']:7.2f} {row['p99_ms']:7.2f} {ratio:>7} "
            f"{row['cpu_ms_per_request']:7.2f} {statements['reads']:5.2f} {statements['writes']:6.2f} "
            f"{statements['transaction_control']:4.2f}{failures}"
        )


def _anchor_orm_runs(label: str, part: dict[str, Any]) -> None:
    revoke = part["revoke_all"]
    print(
        f"\n{label} anchor_orm: revoke_all of {revoke['sessions_revoked']:,} sessions: "
        f"{revoke['statements']} statement(s), {revoke['seconds'] * 1000:.0f} ms (with its commit)"
    )
    scale = part["scale"]
    for key in ("small", "large"):
        row = scale[key]
        count = scale[f"{key}_table_sessions"]
        print(
            f"{label} anchor_orm: GET /me with {count:>9,} sessions in the table: "
            f"{row['requests_per_second']:6.0f} req/s, p50 {row['p50_ms']:.2f} ms, p99 {row['p99_ms']:.2f} ms"
        )
    purge = part["purge"]
    print(
        f"{label} anchor_orm: purge of {purge['rows_purged']:,} expired rows "
        f"({purge['batch_size']:,} a transaction, pause {purge['pause_ratio']:g}x a batch) "
        f"in {purge['purge_seconds']:.1f} s; "
        f"GET /me {purge['requests_per_second_before']:.0f} req/s before, "
        f"{purge['requests_per_second_during']:.0f} during ({purge['ratio_during_to_before']:.2f}x)"
    )


def print_report(results: dict[str, Any]) -> None:
    postgres = results["postgresql"]
    floor_rps = postgres["validation"][FLOOR]["requests_per_second"]
    in_flight = results["in_flight"]
    print("\n" + "=" * 96)
    print(
        f"anchor_orm benchmarks ({'quick' if results['quick'] else 'full'} run, {results['machine']}, "
        f"Python {results['python']}, {in_flight} requests in flight, in-process ASGI)"
    )
    print(
        "per request: cpu ms = this process's CPU time (the app, the library, the driver; the\n"
        "database server's is apart); reads (SELECT), writes (INSERT/UPDATE/DELETE) and tx\n"
        "(BEGIN/COMMIT/ROLLBACK) are the statements the system sent"
    )
    _validation_table(
        "PostgreSQL, GET /me (cookie-authenticated, user id and email)", postgres["validation"], floor_rps
    )
    _validation_table(
        "PostgreSQL, POST /login (session creation, no password hashing)", postgres["login"], None
    )
    _anchor_orm_runs("PostgreSQL", postgres)
    sqlite = results.get("sqlite")
    if sqlite is not None:
        _validation_table("SQLite, anchor_orm GET /me", sqlite["validation"], floor_rps)
        _validation_table("SQLite, anchor_orm POST /login", sqlite["login"], None)
        _anchor_orm_runs("SQLite", sqlite)
    print("\nTargets (issue 7)")
    for target in results["targets"]:
        verdict = "met" if target["met"] else "NOT MET"
        print(f"  {target['target']:72} {target['measured']:>8}  (target {target['wanted']:>7})  {verdict}")
    print(f"\ntotal time {results['seconds']:.0f} s")
