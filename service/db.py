"""Database engines and migrations: SQLite by default, PostgreSQL through DATABASE_URL."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
# While the database is away (down, unreachable, or its file locked by another process such as a backup)
# a request fails with a 503 within seconds instead of hanging, and activities fail and are retried by
# Temporal: waiting for a PostgreSQL connection, for a free pooled connection and for the SQLite file's
# write lock are each bounded.
CONNECT_TIMEOUT_S = 5
POOL_TIMEOUT_S = 5
SQLITE_BUSY_TIMEOUT_S = 5  # another process holds the file's write lock
SQLITE_TURN_TIMEOUT_S = 30  # this process's own transactions ahead in the queue
SQLITE_BLOCKED_BUSY_MS = 100  # once another process has held the lock past the busy timeout


class SqliteTurns:
    """This process's transactions on one SQLite file, one at a time, each waiting its turn.

    Every transaction takes the file's write lock up front (BEGIN IMMEDIATE). Left to SQLite's busy
    handler, dozens of threads poll for that lock and the unlucky ones starve past any timeout under
    load; queued here, only the thread whose turn it is asks SQLite. So a busy timeout means another
    process holds the file: until a BEGIN succeeds again the next turns give up after a moment, so a
    queue of requests answers 503 quickly instead of waiting out the busy timeout one by one.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._blocked = False  # another process held the file past the busy timeout

    def begin(self, connection) -> None:
        if not self._lock.acquire(timeout=SQLITE_TURN_TIMEOUT_S):
            raise OperationalError("BEGIN IMMEDIATE", None,
                                   sqlite3.OperationalError(f"database is locked: no turn within {SQLITE_TURN_TIMEOUT_S} s"))
        raw = connection.connection.dbapi_connection
        blocked = self._blocked
        try:
            if blocked:
                raw.execute(f"PRAGMA busy_timeout={SQLITE_BLOCKED_BUSY_MS}")
            try:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            finally:
                if blocked:
                    raw.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        except BaseException as exc:
            self._blocked = self._blocked or isinstance(exc, OperationalError)
            self._lock.release()
            raise
        self._blocked = False
        connection.info["sqlite_turn"] = True

    def end(self, info: dict) -> None:
        if info.pop("sqlite_turn", False):
            self._lock.release()


def normalise_url(url: str) -> str:
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # More connections than threads that use them (API and worker): the queue is SqliteTurns, not the pool.
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S},
                               pool_size=10, max_overflow=90, pool_timeout=POOL_TIMEOUT_S)
        turns = SqliteTurns()

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection, _record) -> None:
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(connection) -> None:
            # Take the write lock up front: concurrent writers queue instead of failing mid-transaction.
            turns.begin(connection)

        @event.listens_for(engine, "commit")
        @event.listens_for(engine, "rollback")
        def _sqlite_end(connection) -> None:
            turns.end(connection.info)

        @event.listens_for(engine, "checkin")
        def _sqlite_checkin(_dbapi_connection, record) -> None:
            turns.end(record.info)  # a transaction that ended without commit or rollback still gives up its turn

        return engine
    # pool_pre_ping: connections the outage broke are replaced on checkout, so the pool recovers by itself.
    return create_engine(url, pool_size=10, max_overflow=20, pool_timeout=POOL_TIMEOUT_S, pool_pre_ping=True,
                         connect_args={"connect_timeout": CONNECT_TIMEOUT_S})


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision; existing data is kept."""
    config = alembic_config(str(engine.url.render_as_string(hide_password=False)))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def session(engine: Engine) -> Session:
    return Session(engine, expire_on_commit=False)
