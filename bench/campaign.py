"""Warmth campaign and scheduled gift throughput on a local Temporal dev server and SQLite:
``python -m bench.campaign [--quick]``.

Prints ``name=value`` lines (comment lines start with ``#``). One dev server, one worker in this process:

1. a 送温暖 campaign over 5,000 active hardship files (500 with --quick): from the launch until the
   campaign workflow has finished (plan, fund check, one child workflow per household, 50 in flight,
   continue-as-new every 500), with a check that the ledger holds exactly one payment per household;
2. a month of birthday gifts for 10,000 members (1,000 with --quick): the gift logic recording the
   month's applications straight against the database (gifts/s recorded), then, on a fresh database,
   DailyGiftsWorkflow over the same month, timed until every gift's workflow waits for the chair's
   batch sign-off (gifts/s end to end: recorded, started, facts, rules, task projected).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import datetime as dt
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlmodel import Session
from temporalio.testing import WorkflowEnvironment

from bench.e2e import comment, emit, figures_alone_on_stdout, temporal_binary
from service import gifts, seed
from service.db import make_engine, migrate
from service.logging import configure
from service.models import Application, ApprovalTask, HardshipFile, LedgerEntry, Organisation
from service.worker import build_worker
from tests.world import build
from workflows.campaign import CampaignWorkflow
from workflows.campaign_types import CampaignInput, GiftsInput, campaign_id
from workflows.gifts import DailyGiftsWorkflow

TIERS = ("deep", "relative", "accident")
POLL_S = 0.1


@dataclass(frozen=True)
class Sizes:
    households: int
    members: int


FULL = Sizes(households=5_000, members=10_000)
QUICK = Sizes(households=500, members=1_000)


def add_households(engine: Engine, org_id: int, count: int) -> None:
    today = dt.date.today()
    with Session(engine) as s, s.begin():
        org = s.get(Organisation, org_id)
        for n in range(count):
            m = seed.member(s, org, f"H{n:06d}", f"困难户{n}", f"3303021970{n:08d}", dt.date(1970, 1 + n % 12, 1 + n % 28))
            s.add(HardshipFile(member_id=m.id, tier=TIERS[n % 3], active_from=today - dt.timedelta(days=30),
                               active_until=today + dt.timedelta(days=300)))


def add_members(engine: Engine, org_id: int, count: int) -> None:
    with Session(engine) as s, s.begin():
        org = s.get(Organisation, org_id)
        for n in range(count):
            born = dt.date(1980, 1, 1) + dt.timedelta(days=n % 366)
            seed.member(s, org, f"Y{n:06d}", f"会员{n}", f"3303021980{n:08d}", born)


def last_full_month(today: dt.date) -> tuple[dt.date, dt.date]:
    end = today.replace(day=1) - dt.timedelta(days=1)
    return end.replace(day=1), end


def fresh_engine(directory: Path, name: str) -> Engine:
    engine = make_engine(f"sqlite:///{directory / name}")
    migrate(engine)
    return engine


async def campaign(env: WorkflowEnvironment, directory: Path, sizes: Sizes) -> None:
    engine = fresh_engine(directory, "campaign.db")
    world = build(engine, hardship_fen=sizes.households * 100_000)
    add_households(engine, world.org_id, sizes.households)
    queue = f"campaign-{uuid.uuid4().hex[:8]}"
    year = dt.date.today().year
    inp = CampaignInput(campaign_id=campaign_id(world.org_id, year, "bench"), org_id=world.org_id, year=year, name="bench",
                        as_of=dt.date.today().isoformat(), launched_by="admin")
    with concurrent.futures.ThreadPoolExecutor(max_workers=32) as executor:
        async with build_worker(env.client, engine, queue, executor):
            started = time.perf_counter()
            result = await env.client.execute_workflow(CampaignWorkflow.run, inp, id=inp.campaign_id, task_queue=queue)
            took = time.perf_counter() - started
    with Session(engine) as s:
        paid = s.execute(select(func.count(), func.count(func.distinct(LedgerEntry.application_id)))
                         .where(LedgerEntry.kind == "disburse")).one()
    emit("campaign_households", result.total)
    emit("campaign_done", result.done)
    emit("campaign_failed", result.failed)
    emit("campaign_runs", result.runs)
    emit("campaign_seconds", took)
    emit("campaign_households_per_s", result.done / took)
    emit("campaign_paid_exactly_once", paid[0] == paid[1] == result.total)
    engine.dispose()


async def birthdays(env: WorkflowEnvironment, directory: Path, sizes: Sizes) -> None:
    first, last = last_full_month(dt.date.today())
    comment(f"birthday month {first:%Y-%m}, {sizes.members} members")

    engine = fresh_engine(directory, "gifts-db.db")
    add_members(engine, build(engine).org_id, sizes.members)
    started = time.perf_counter()
    recorded = await asyncio.to_thread(gifts.record_gifts, engine, first, last)
    took = time.perf_counter() - started
    n = len(recorded.created)
    emit("birthday_month_gifts", n)
    emit("birthday_recorded_per_s", n / took)
    again = time.perf_counter()
    repeat = await asyncio.to_thread(gifts.record_gifts, engine, first, last)
    emit("birthday_month_rerun_created", len(repeat.created))
    emit("birthday_month_rerun_seconds", time.perf_counter() - again)
    engine.dispose()

    engine = fresh_engine(directory, "gifts-e2e.db")
    world = build(engine)
    add_members(engine, world.org_id, sizes.members)
    queue = f"gifts-{uuid.uuid4().hex[:8]}"
    with concurrent.futures.ThreadPoolExecutor(max_workers=32) as executor:
        async with build_worker(env.client, engine, queue, executor):
            started = time.perf_counter()
            result = await env.client.execute_workflow(
                DailyGiftsWorkflow.run, GiftsInput(start=first.isoformat(), end=last.isoformat()), id=f"gifts-{queue}",
                task_queue=queue)
            created_in = time.perf_counter() - started

            def waiting() -> int:
                with Session(engine) as s:
                    return s.execute(select(func.count()).select_from(ApprovalTask)
                                     .where(ApprovalTask.stage == "batch_sign_off")).scalar_one()

            deadline = time.perf_counter() + 120 + result.created
            while await asyncio.to_thread(waiting) < result.created:
                if time.perf_counter() > deadline:
                    raise TimeoutError(f"{await asyncio.to_thread(waiting)} of {result.created} gifts reached the sign-off")
                await asyncio.sleep(POLL_S)
            took = time.perf_counter() - started
            with Session(engine) as s:
                apps = [a for a, in s.execute(select(Application.id))]
            for app_id in apps:  # leave nothing running on the dev server
                await env.client.get_workflow_handle(app_id).terminate("bench finished")
    emit("birthday_workflow_gifts", result.created)
    emit("birthday_workflow_recorded_and_started_per_s", result.created / created_in)
    emit("birthday_gifts_per_s", result.created / took)
    engine.dispose()


async def run(sizes: Sizes, directory: Path) -> None:
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=temporal_binary(), dev_server_log_level="error")
    try:
        await campaign(env, directory, sizes)
        await birthdays(env, directory, sizes)
    finally:
        await env.shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.campaign", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10x less work (smoke test)")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    configure(json_lines=False, level="WARNING")
    comment(f"bench.campaign python={sys.version.split()[0]} cores={os.cpu_count()} quick={str(args.quick).lower()} "
            f"households={sizes.households} members={sizes.members}")
    started = time.perf_counter()
    with figures_alone_on_stdout(), tempfile.TemporaryDirectory(prefix="bench-campaign-") as directory:
        asyncio.run(run(sizes, Path(directory)))
    comment(f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
