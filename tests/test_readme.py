"""Every ```python block of README.md runs, so the docs cannot rot.

Each block runs in a fresh interpreter in an empty folder; a block whose first line
starts with "# continues" runs after the block before it, in the same interpreter.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def runnable_snippets(markdown: str) -> list[str]:
    snippets: list[str] = []
    for block in BLOCK.findall(markdown):
        if block.startswith("# continues") and snippets:
            snippets[-1] += "\n" + block
        else:
            snippets.append(block)
    return snippets


def readme_section(title: str) -> str:
    """The text of README.md's ``## title`` section, up to the next ``## `` heading."""
    text = (ROOT / "README.md").read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


SNIPPETS = runnable_snippets((ROOT / "README.md").read_text())


def test_readme_has_snippets():
    assert len(SNIPPETS) >= 2


@pytest.mark.parametrize("number", range(len(SNIPPETS)))
def test_readme_snippet_runs(number, tmp_path):
    environment = {
        **os.environ,
        "SESSION_SECRET": "readme-secret-key-0123456789abcdefghijkl",
        "PYTHONPATH": str(ROOT),
    }
    environment.pop("DATABASE_URL", None)
    completed = subprocess.run(
        [sys.executable, "-W", "error", "-c", SNIPPETS[number]],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, f"snippet {number} failed:\n{SNIPPETS[number]}\n{completed.stderr}"
