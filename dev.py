#!/usr/bin/env python3
"""The project's commands; each makes (or refreshes) its own virtual environment.

    python3 dev.py demo     migrate and start the example app on SQLite (DATABASE_URL for PostgreSQL)
    python3 dev.py test     run the whole test suite (ruff, mypy, pytest)
    python3 dev.py bench    run the benchmarks (needs PostgreSQL)

Only the standard library is used here: this runs before anything is installed.
"""

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".installed-from"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")


def ensure_venv() -> Path:
    """Creates .venv and installs the project with its dev extras when pyproject changed."""
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    python = BIN / "python"
    if python.exists() and STAMP.exists() and STAMP.read_text() == wanted:
        return python
    if not python.exists():
        print("creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("installing anchor_orm and its dev dependencies into .venv ...", flush=True)
    run([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
    run([str(python), "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[dev]"])
    STAMP.write_text(wanted)
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
    python = ensure_venv()
    COMMANDS[sys.argv[1]](python, sys.argv[2:])


if __name__ == "__main__":
    main()
