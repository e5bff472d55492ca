"""Every storage test runs twice: on SQLite and on PostgreSQL.

Outside CI a PostgreSQL server that does not answer skips its half with the reason;
with CI=true it fails instead, so CI can never pass without it.
"""

import inspect
import os
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlmodel import SQLModel

import tests.models  # noqa: F401 - registers the test tables on SQLModel.metadata
from anchor_orm.testing import (
    BACKENDS,
    Backend,
    TestDatabase,
    postgres_unavailable_reason,
    run,
    test_database,
)

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
_postgres_checked: list[str | None] = []


def require_backend(backend: Backend) -> None:
    """Skips (or, in CI, fails) a PostgreSQL test when the server is unreachable."""
    if backend != "postgresql":
        return
    if not _postgres_checked:
        _postgres_checked.append(run(postgres_unavailable_reason()))
    reason = _postgres_checked[0]
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"{reason} (CI=true requires PostgreSQL)")
    pytest.skip(
        f"{reason}; the PostgreSQL half of the storage tests is skipped (set ANCHOR_TEST_POSTGRES_URL)"
    )


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    """Marks every async test for anyio before collection goes on, so no test module
    needs its own marker (hypothesis wraps async tests: look inside the wrapper)."""
    inner = getattr(getattr(obj, "hypothesis", None), "inner_test", obj)
    if name.startswith("test") and inspect.iscoroutinefunction(inner):
        pytest.mark.anyio(obj)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    require_backend(request.param)
    yield request.param


@pytest.fixture(scope="session")
async def shared_database(backend: Backend, anyio_backend: str) -> AsyncIterator[TestDatabase]:
    """One database per backend for the whole run, with every test table created."""
    async with test_database(backend) as database:
        await database.create_tables(SQLModel.metadata)
        yield database


@pytest.fixture
async def database(shared_database: TestDatabase) -> TestDatabase:
    """The shared database, emptied for this test."""
    await shared_database.empty_tables(SQLModel.metadata)
    return shared_database
