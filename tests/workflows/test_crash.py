"""A worker killed mid-payment, and a new one taking over: the member is paid exactly once."""

import asyncio
import concurrent.futures
import subprocess
import sys
import uuid
from pathlib import Path

from sqlmodel import Session, select

from service.models import Application, LedgerEntry
from service.worker import build_worker

from ..crash_worker import CRASH_EXIT
from ..world import build, fund
from .helpers import file, until

ROOT = Path(__file__).resolve().parents[2]


async def test_worker_killed_after_paying_before_reporting(dev_env, engine):
    world = build(engine)
    client = dev_env.client
    task_queue = f"crash-{uuid.uuid4().hex[:8]}"
    address = client.service_client.config.target_host
    url = str(engine.url.render_as_string(hide_password=False))
    crasher = subprocess.Popen([sys.executable, "-m", "tests.crash_worker", address, task_queue, url], cwd=ROOT)
    try:
        h = await file(client, engine, world, task_queue, "birthday", member="ivan", requested_fen=30_000)
        for _ in range(600):
            if crasher.poll() is not None:
                break
            await asyncio.sleep(0.05)
        assert crasher.returncode == CRASH_EXIT
    finally:
        if crasher.poll() is None:
            crasher.kill()
    with Session(engine) as s:
        paid = s.exec(select(LedgerEntry).where(LedgerEntry.application_id == h.id, LedgerEntry.kind == "disburse")).all()
        assert len(paid) == 1  # the money moved...
        assert s.get(Application, h.id).status == "approved"  # ...but nobody heard of it
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as executor:
        async with build_worker(client, engine, task_queue, executor):
            snap = await until(h, lambda s: s.status == "disbursed", timeout=60)  # after the activity's timeout
            assert snap.approved_fen == 30_000
        await h.terminate("test finished")
    with Session(engine) as s:
        entries = s.exec(select(LedgerEntry.kind).where(LedgerEntry.application_id == h.id)).all()
    assert entries == ["reserve", "disburse"]
    f = fund(engine, world.funds["member_welfare"])
    assert (f.spent_fen, f.reserved_fen) == (30_000, 0)
