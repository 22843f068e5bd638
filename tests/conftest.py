"""Shared fixtures: real databases (SQLite, and PostgreSQL where reachable) and real Temporal servers."""

from __future__ import annotations

import gc
import os
import shutil
import socket
import sys
import uuid
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from service.db import make_engine, migrate

BIN = Path(sys.executable).parent
PG_HOST, PG_PORT = "127.0.0.1", 5432
_exit_status = 0


def binary(name: str) -> str:
    found = shutil.which(name) or (str(BIN / name) if (BIN / name).exists() else None)
    if found is None:
        pytest.fail(f"{name} not installed: run `make test`, which installs it")
    return found


def postgres_reachable() -> bool:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=1):
            return True
    except OSError:
        return False


def fresh_postgres_url() -> str:
    """A new, empty database on the local PostgreSQL server, for one test."""
    import psycopg

    name = f"welfare_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"host={PG_HOST} port={PG_PORT} user=postgres dbname=test", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{name}"


def drop_postgres(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(f"host={PG_HOST} port={PG_PORT} user=postgres dbname=test", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def any_engine(request, tmp_path):
    """The same test on SQLite and on PostgreSQL (skipped, saying so, where no server answers)."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'welfare.db'}")
        migrate(engine)
        yield engine
        engine.dispose()
        return
    if not postgres_reachable():
        pytest.skip(f"PostgreSQL not reachable at {PG_HOST}:{PG_PORT}: PostgreSQL variant NOT exercised")
    url = fresh_postgres_url()
    engine = make_engine(url)
    migrate(engine)
    yield engine
    engine.dispose()
    drop_postgres(url)


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'welfare.db'}")
    migrate(engine)
    yield engine
    engine.dispose()


@pytest_asyncio.fixture(scope="session")
async def time_env():
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=binary("temporal-test-server"))
    yield env
    await env.shutdown()


@pytest_asyncio.fixture(scope="session")
async def dev_env():
    """A real `temporal server start-dev` (in memory), started offline from the installed binary."""
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=binary("temporal"), dev_server_log_level="error")
    yield env
    await env.shutdown()


def pytest_sessionfinish(session, exitstatus):
    global _exit_status
    _exit_status = int(exitstatus)


def pytest_unconfigure(config):
    # The Temporal client's native threads can crash the interpreter at exit (sdk-python #300),
    # turning a green run red; leave at once with pytest's own status, as Temporal's tests do.
    gc.collect()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_exit_status)
