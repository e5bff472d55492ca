#!/usr/bin/env python3
"""The project's commands; each makes (or refreshes) its own virtual environment.

    python3 dev.py demo     migrate and start the example app on SQLite (DATABASE_URL for PostgreSQL)
    python3 dev.py test     run the whole test suite (ruff, mypy, pytest)
    python3 dev.py bench    run the benchmarks (needs PostgreSQL; --quick for a short run)

Only the standard library is used here: this runs before anything is installed.
"""

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
# The benchmarks get a virtual environment of their own: fastapi-users-db-sqlalchemy
# pins SQLAlchemy below 2.1, and the test suite must keep running on the newest one.
VENVS = {"dev": ROOT / ".venv", "bench": ROOT / ".venv-bench"}


def ensure_venv(extra: str = "dev") -> Path:
    """Creates the extra's venv and installs the project into it when pyproject changed."""
    folder = VENVS[extra]
    stamp = folder / ".installed-from"
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    python = folder / ("Scripts" if os.name == "nt" else "bin") / "python"
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    if not python.exists():
        print(f"creating {folder.name} ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(folder)
    print(f"installing anchor_orm and its {extra} dependencies into {folder.name} ...", flush=True)
    run([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
    run([str(python), "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[{extra}]"])
    stamp.write_text(wanted)
    return python


def run(command: list[str], **kwargs: object) -> None:
    completed = subprocess.run(command, cwd=ROOT, check=False, **kwargs)  # type: ignore[call-overload]
    if completed.returncode != 0:
        sys.exit(completed.returncode)


def test(python: Path, args: list[str]) -> None:
    if not args:
        run([str(python), "-m", "ruff", "check", "anchor_orm", "tests", "examples"])
        run([str(python), "-m", "ruff", "format", "--check", "anchor_orm"])
        run([str(python), "-m", "mypy", "--strict", "anchor_orm"])
    run([str(python), "-m", "pytest", *args])


def demo(python: Path, args: list[str]) -> None:
    run([str(python), "-m", "examples.app", *args])


def bench(python: Path, args: list[str]) -> None:
    run([str(python), "-m", "benchmarks", *args])


COMMANDS = {"test": test, "demo": demo, "bench": bench}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(__doc__)
        sys.exit(2)
    command = sys.argv[1]
    python = ensure_venv("bench" if command == "bench" else "dev")
    COMMANDS[sys.argv[1]](python, sys.argv[2:])


if __name__ == "__main__":
    main()
