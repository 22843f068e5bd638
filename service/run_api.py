"""The API alone, as in docker-compose.yml's `api` service: settings from the environment, migrations applied.

    python -m service.run_api                      # serve (DATABASE_URL, TEMPORAL_ADDRESS, API_HOST, API_PORT, ...)
    WELFARE_ADMIN_PASSWORD=... python -m service.run_api --create-admin NAME --org-code CODE --org-name 名称

Unlike `make run` (service/run.py) it starts no Temporal server, no worker, and loads no demo data: a
production database holds only what a union puts into it. The first administrator is created
explicitly with --create-admin, with a password of the operator's choosing (never a default one).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

import structlog
import uvicorn
from sqlalchemy import Engine, select
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from service import seed
from service.app import create_app, temporal_connector
from service.db import make_engine, migrate
from service.logging import configure
from service.models import Organisation, Role, User
from service.process import exit_now
from service.settings import get_settings

log = structlog.get_logger("run_api")
MIGRATION_LOCK = 0x5E1FA2E  # a PostgreSQL advisory lock: several API (or worker) containers migrate one at a time
MIN_ADMIN_PASSWORD = 12


def migrate_when_ready(engine: Engine, timeout: float = 120) -> None:
    """Apply the migrations once the database answers; concurrent starters take turns."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if engine.dialect.name == "postgresql":
                with engine.connect() as conn:
                    conn.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK})")
                    try:
                        migrate(engine)
                    finally:
                        conn.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_LOCK})")
                        conn.commit()
            else:
                migrate(engine)
            return
        except OperationalError:
            if time.monotonic() > deadline:
                raise
            log.warning("database_not_ready", retry_in_s=2)
            time.sleep(2)


def create_admin(engine: Engine, username: str, password: str, org_code: str, org_name_zh: str, org_name_en: str) -> None:
    """The first administrator of a union (and the union itself, if new). Refuses to overwrite anyone."""
    if len(password) < MIN_ADMIN_PASSWORD:
        raise SystemExit(f"WELFARE_ADMIN_PASSWORD must have at least {MIN_ADMIN_PASSWORD} characters")
    with Session(engine) as s, s.begin():
        if s.execute(select(User).where(User.username == username)).scalars().first() is not None:
            raise SystemExit(f"user {username!r} exists already: nothing changed")
        org = s.execute(select(Organisation).where(Organisation.code == org_code)).scalars().first()
        if org is None:
            org = seed.organisation(s, org_code, org_name_zh, org_name_en or org_name_zh)
        seed.user(s, username, password, org, [Role.admin], display_name=username)
    print(f"administrator {username!r} of {org_code} created")


DEFAULT_ID_CARD_KEY = "change-me-in-production"


async def serve() -> None:
    settings = get_settings()
    if settings.id_card_key == DEFAULT_ID_CARD_KEY:
        raise SystemExit("ID_CARD_KEY is unset (the default key is for `make run` and tests only): set a secret of your own")
    engine = make_engine(settings.resolved_database_url)
    await asyncio.to_thread(migrate_when_ready, engine)
    app = create_app(settings, engine, temporal_connector(settings.temporal_address, settings.temporal_namespace))
    # No uvicorn access log: the app logs each request itself (path only, never the query string).
    config = uvicorn.Config(app, host=settings.api_host, port=settings.api_port, log_level="warning", lifespan="off",
                            access_log=False, proxy_headers=True, forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"))
    log.info("api_starting", host=settings.api_host, port=settings.api_port, temporal=settings.temporal_address,
             database=engine.dialect.name)
    await uvicorn.Server(config).serve()
    engine.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m service.run_api", description=__doc__.split("\n\n")[0])
    parser.add_argument("--create-admin", metavar="USERNAME", help="create the first administrator (password from WELFARE_ADMIN_PASSWORD)")
    parser.add_argument("--org-code", help="the union's code, e.g. WZ-ORG-001 (created if new)")
    parser.add_argument("--org-name", help="the union's name in Chinese")
    parser.add_argument("--org-name-en", default="", help="the union's name in English")
    args = parser.parse_args(argv)
    settings = get_settings()
    configure(settings.log_json, settings.log_level)
    if args.create_admin:
        password = os.environ.get("WELFARE_ADMIN_PASSWORD", "")
        if not (args.org_code and args.org_name):
            parser.error("--create-admin needs --org-code and --org-name")
        engine = make_engine(settings.resolved_database_url)
        migrate_when_ready(engine)
        create_admin(engine, args.create_admin, password, args.org_code, args.org_name, args.org_name_en)
        engine.dispose()
        return
    asyncio.run(serve())
    exit_now(0)  # past the Temporal client's native threads, which can crash interpreter teardown


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main(sys.argv[1:])
