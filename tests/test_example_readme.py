"""The Python snippets of docs/readme/example.md run against a live demo server."""

import contextlib
import io
import re

from examples.app.testing import REPO_ROOT, demo_server

README_SECTION = REPO_ROOT / "docs" / "readme" / "example.md"
DEMO_ADDRESS = "http://127.0.0.1:8000"


def python_snippets() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README_SECTION.read_text(), flags=re.DOTALL)


def test_the_readme_script_runs_against_the_demo_server(tmp_path):
    (snippet,) = python_snippets()
    assert DEMO_ADDRESS in snippet
    with demo_server(tmp_path) as (base_url, _):
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(snippet.replace(DEMO_ADDRESS, base_url), str(README_SECTION), "exec"), {})
    email, only_session = printed.getvalue().splitlines()
    assert email == "grace@example.com"
    assert re.fullmatch(r"HTTPX \d+\.\d+ \(this one\)", only_session)
