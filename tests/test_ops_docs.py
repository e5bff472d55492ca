"""Every ```python block of README.md's Operations section runs, on SQLite and on PostgreSQL.

The same rules as README.md's blocks (tests/test_readme.py): each block runs in a fresh
interpreter in an empty folder, and a block starting with "# continues" runs after the
one before it. The block that is a test module also runs under pytest, with the
plugin the doc tells apps to load.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from anchor_orm import testing
from tests.test_readme import readme_section

ROOT = Path(__file__).resolve().parent.parent
DOC_TEXT = readme_section("Operations: events, logs, purging, the command line, the test kit")
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def runnable_snippets(markdown: str) -> list[str]:
    snippets: list[str] = []
    for block in BLOCK.findall(markdown):
        if block.startswith("# continues") and snippets:
            snippets[-1] += "\n" + block
        else:
            snippets.append(block)
    return snippets


SNIPPETS = runnable_snippets(DOC_TEXT)
PLUGIN_LINE = 'pytest_plugins = ["anchor_orm.pytest_plugin"]\n'


def environment(database_url: str | None) -> dict[str, str]:
    env = {**os.environ, "SESSION_SECRET": "docs-secret-key-0123456789abcdefghijkl", "PYTHONPATH": str(ROOT)}
    env.pop("DATABASE_URL", None)
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    return env


def test_the_doc_covers_events_logs_purge_cli_and_the_test_kit():
    assert len(SNIPPETS) == 3
    app_chain, plugin, test_module = SNIPPETS
    for needle in ("anchor.events.on", "logging.basicConfig", "purge_in_background", "anchor_orm.cli"):
        assert needle in app_chain
    assert plugin == PLUGIN_LINE
    assert "log_in(client, anchor" in test_module


@pytest.mark.parametrize("number", range(len(SNIPPETS)))
async def test_ops_doc_snippet_runs(number, backend, anyio_backend, tmp_path):
    async with testing.test_database(backend) as database:
        url = None if backend == "sqlite" else database.url.render_as_string(hide_password=False)
        completed = subprocess.run(
            [sys.executable, "-W", "error", "-c", SNIPPETS[number]],
            cwd=tmp_path,
            env=environment(url),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert completed.returncode == 0, f"snippet {number} failed:\n{SNIPPETS[number]}\n{completed.stderr}"
    if "logging_demo" in SNIPPETS[number]:
        log = completed.stderr
        assert re.search(r"^anchor_orm: session created: [\w-]{22}$", log, re.MULTILINE)
        assert "anchor_orm: session refused (bad signature)" in log
        assert re.search(r"^anchor_orm: session revoked \(logout\): [\w-]{22}$", log, re.MULTILINE)


def test_the_test_module_snippet_passes_under_pytest_with_the_plugin(tmp_path):
    (tmp_path / "conftest.py").write_text(SNIPPETS[1])
    (tmp_path / "test_my_app.py").write_text(SNIPPETS[2])
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-W", "error", "-p", "no:cacheprovider", "-rs"],
        cwd=tmp_path,
        env=environment(None),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert re.search(r"\b[12] passed", completed.stdout)
    if "SKIPPED" not in completed.stdout:
        assert "2 passed" in completed.stdout  # SQLite and PostgreSQL
