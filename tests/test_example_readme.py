"""The Python snippets of README.md's example app section run, each in a fresh interpreter in an
empty folder (as tests/test_readme.py runs README.md's, where this section will go)."""

import os
import re
import subprocess
import sys

from examples.app.testing import REPO_ROOT
from tests.test_readme import readme_section

README_SECTION = readme_section("The example app")


def python_snippets() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", README_SECTION, flags=re.DOTALL | re.MULTILINE)


def test_the_readme_script_drives_the_app_in_process(tmp_path):
    (snippet,) = python_snippets()
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    environment.pop("DATABASE_URL", None)
    environment.pop("SESSION_SECRET", None)
    completed = subprocess.run(
        [sys.executable, "-W", "error", "-c", snippet],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    email, only_session = completed.stdout.splitlines()
    assert email == "grace@example.com"
    assert re.fullmatch(r"HTTPX \d+\.\d+ \(this one\)", only_session)
    # With no SESSION_SECRET, the demo's key was generated next to the database.
    assert {path.name for path in tmp_path.iterdir()} == {"anchor_demo.db", ".anchor_demo_secret"}
