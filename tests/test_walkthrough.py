"""examples/walkthrough.py runs on both databases and prints each step's status."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXPECTED_STATUSES = ["200", "200", "200", "200", "200", "401", "200", "200", "401", "401"]


def test_walkthrough_prints_each_step_with_its_status(database):
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    if database.backend == "postgresql":
        environment["DATABASE_URL"] = database.url.render_as_string(hide_password=False)
    else:
        environment.pop("DATABASE_URL", None)
    completed = subprocess.run(
        [sys.executable, "-W", "error", str(ROOT / "examples" / "walkthrough.py")],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines] == EXPECTED_STATUSES
    assert "revoke the phone's session" in lines[4] and '"revoked":true' in lines[4]
    assert '"revoked":2' in lines[7]
