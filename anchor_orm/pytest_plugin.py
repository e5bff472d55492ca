"""pytest fixtures for applications that use anchor_orm.

Load it from your top-level ``conftest.py``::

    pytest_plugins = ["anchor_orm.pytest_plugin"]

- ``anchor_database``: a TestDatabase with your tables, emptied before each test. A test
  that uses it runs once per backend: SQLite, then PostgreSQL (the server of
  ANCHOR_TEST_POSTGRES_URL; unreachable, that half is skipped, or fails when CI is set).
- ``anchor_metadata``: the tables to create; override it (default ``SQLModel.metadata``).
- ``anchor_backend``: "sqlite" or "postgresql", the backend of this run of the test.
- ``anchor_clock``: a MovableClock for ``Anchor(clock=...)``.

Choose the backends with the ini option ``anchor_backends = sqlite postgresql``.

The fixtures are synchronous, so they work under anyio's pytest plugin and under
pytest-asyncio alike. Their engines use no connection pool: a pooled connection
belongs to the event loop that opened it, and test runners give tests loops of their own.
"""

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel

from anchor_orm.testing import (
    BACKENDS,
    Backend,
    MovableClock,
    TestDatabase,
    create_test_database,
    drop_test_database,
    postgres_unavailable_reason,
)

_REACHABILITY_KEY = pytest.StashKey[dict[str, str | None]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "anchor_backends",
        "databases anchor_database runs each test on (sqlite, postgresql)",
        type="args",
        default=list(BACKENDS),
    )


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_REACHABILITY_KEY] = {}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "anchor_backend" in metafunc.fixturenames:
        backends = metafunc.config.getini("anchor_backends")
        unknown = [name for name in backends if name not in BACKENDS]
        if unknown:
            raise pytest.UsageError(f"anchor_backends: unknown {unknown}; choose from {list(BACKENDS)}")
        metafunc.parametrize("anchor_backend", backends, indirect=True, scope="session")


@pytest.fixture(scope="session")
def anchor_backend(request: pytest.FixtureRequest) -> Backend:
    backend: Backend = request.param
    if backend == "postgresql":
        reachability = request.config.stash[_REACHABILITY_KEY]
        if backend not in reachability:
            reachability[backend] = asyncio.run(postgres_unavailable_reason())
        reason = reachability[backend]
        if reason is not None:
            if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
                pytest.fail(f"{reason} (CI is set: PostgreSQL is required)")
            pytest.skip(f"{reason}; set ANCHOR_TEST_POSTGRES_URL to run the PostgreSQL half")
    return backend


@pytest.fixture(scope="session")
def anchor_metadata() -> sa.MetaData:
    """The tables anchor_database creates: override this fixture to give yours."""
    return SQLModel.metadata


@pytest.fixture(scope="session")
def _anchor_databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, TestDatabase]]:
    databases: dict[str, TestDatabase] = {}
    yield databases
    for database in databases.values():
        asyncio.run(drop_test_database(database))


@pytest.fixture
def anchor_database(
    anchor_backend: Backend,
    anchor_metadata: sa.MetaData,
    _anchor_databases: dict[str, TestDatabase],
    tmp_path_factory: pytest.TempPathFactory,
) -> TestDatabase:
    """One database per backend for the whole run, its tables emptied for this test."""
    database = _anchor_databases.get(anchor_backend)
    if database is None:
        folder: Path = tmp_path_factory.mktemp("anchor-db")
        database = asyncio.run(create_test_database(anchor_backend, folder, poolclass=sa.NullPool))
        _anchor_databases[anchor_backend] = database
        asyncio.run(database.create_tables(anchor_metadata))
    else:
        asyncio.run(database.empty_tables(anchor_metadata))
    return database


@pytest.fixture
def anchor_clock() -> MovableClock:
    return MovableClock()
