"""A worker killed in the middle of a campaign, and a new one taking over: every household paid once."""

from __future__ import annotations

import asyncio
import concurrent.futures
import subprocess
import sys
import uuid
from pathlib import Path

from service.worker import build_worker

from ..world import build, fund
from .crash_worker import CRASH_EXIT
from .helpers import WARMTH, add_households, campaign_input, disbursements, launch

ROOT = Path(__file__).resolve().parents[2]
HOUSEHOLDS = 40


async def test_campaign_resumed_after_worker_killed_pays_each_household_exactly_once(dev_env, engine):
    world = build(engine)
    active = add_households(engine, world.org_id, HOUSEHOLDS)
    client = dev_env.client
    task_queue = f"crash-campaign-{uuid.uuid4().hex[:8]}"
    address = client.service_client.config.target_host
    url = str(engine.url.render_as_string(hide_password=False))
    crasher = subprocess.Popen([sys.executable, "-m", "tests.campaigns.crash_worker", address, task_queue, url, "12"], cwd=ROOT)
    inp = campaign_input(world.org_id, per_run=15, concurrency=8)  # continue-as-new in between, too
    try:
        handle = await launch(client, inp, task_queue)
        for _ in range(1200):
            if crasher.poll() is not None:
                break
            await asyncio.sleep(0.05)
        assert crasher.returncode == CRASH_EXIT
    finally:
        if crasher.poll() is None:
            crasher.kill()
    paid_before = disbursements(engine, inp.campaign_id)
    assert 12 <= len(paid_before) < HOUSEHOLDS  # killed mid-campaign, with payments Temporal never heard of
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as executor:
        async with build_worker(client, engine, task_queue, executor):
            result = await asyncio.wait_for(handle.result(), timeout=120)  # after the activities' timeouts
    assert (result.state, result.done, result.failed, result.pending) == ("completed", HOUSEHOLDS, 0, 0)
    assert disbursements(engine, inp.campaign_id) == {m: [WARMTH[t]] for m, t in active.items()}  # one each
    total = sum(WARMTH[t] for t in active.values())
    f = fund(engine, world.funds["hardship_fund"])
    assert (f.spent_fen, f.reserved_fen) == (total, 0)
    assert result.paid_fen == total
