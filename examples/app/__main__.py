"""``python -m examples.app``: migrate, then serve the example app.

python -m examples.app                    # SQLite in ./anchor_demo.db, http://127.0.0.1:8000
DATABASE_URL=postgresql://... python -m examples.app --workers 4
"""

import argparse

import uvicorn

from examples.app.config import Config, redacted
from examples.app.migrate import upgrade_to_head


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m examples.app", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes (share sessions via the database)"
    )
    parser.add_argument("--no-migrate", action="store_true", help="start without migrating first")
    args = parser.parse_args(argv)

    # Made (or read) here, before workers start, so every worker signs with the same key.
    config = Config.from_env()
    if not args.no_migrate:
        # Before the server starts: Alembic's env.py runs its own event loop.
        upgrade_to_head(config.database_url)
        print(f"database {redacted(config.database_url)}: migrated to head", flush=True)
    print(f"signing key from {config.secret_source}", flush=True)
    print(f"anchor_orm example app: open http://{args.host}:{args.port}", flush=True)
    uvicorn.run(
        "examples.app.app:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="info",
    )


if __name__ == "__main__":
    main()
