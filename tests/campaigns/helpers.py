"""Households with hardship files, and running campaigns, for the campaign and gift tests."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlmodel import Session, select
from temporalio.client import Client, WorkflowHandle

from service import seed
from service.models import ClaimSlot, HardshipFile, LedgerEntry, Member, Organisation
from workflows.campaign import CampaignWorkflow
from workflows.campaign_types import CampaignInput, Progress, campaign_id

from ..world import YEAR

TIERS = ("deep", "relative", "accident")
WARMTH = {"deep": 100_000, "relative": 50_000, "accident": 80_000}  # the default policy's warmth_fen


def add_households(engine, org_id: int, count: int, *, start: int = 0, closed: int = 0, expired: int = 0) -> dict[int, str]:
    """``count`` members with an active file (tiers in turn), plus members whose file is closed or expired.
    Returns member id → tier of the active ones."""
    today = dt.date.today()
    active: dict[int, str] = {}
    with Session(engine) as s, s.begin():
        org = s.get(Organisation, org_id)
        for n in range(start, start + count + closed + expired):
            m = seed.member(s, org, f"H{n:06d}", f"困难户{n}", f"33030219700101{n:04d}", dt.date(1970, 1 + n % 12, 1 + n % 28))
            tier = TIERS[n % 3]
            if n < start + count:
                s.add(HardshipFile(member_id=m.id, tier=tier, active_from=today - dt.timedelta(days=30),
                                   active_until=today + dt.timedelta(days=300)))
                active[m.id] = tier
            elif n < start + count + closed:
                s.add(HardshipFile(member_id=m.id, tier=tier, status="closed", active_from=today - dt.timedelta(days=30),
                                   active_until=today + dt.timedelta(days=300)))
            else:
                s.add(HardshipFile(member_id=m.id, tier=tier, active_from=today - dt.timedelta(days=400),
                                   active_until=today - dt.timedelta(days=35)))
    return active


def campaign_input(org_id: int, name: str = "spring", **kw) -> CampaignInput:
    return CampaignInput(campaign_id=campaign_id(org_id, YEAR, name), org_id=org_id, year=YEAR, name=name,
                         as_of=dt.date.today().isoformat(), launched_by="admin", **kw)


async def launch(client: Client, inp: CampaignInput, task_queue: str) -> WorkflowHandle:
    return await client.start_workflow(CampaignWorkflow.run, inp, id=inp.campaign_id, task_queue=task_queue)


async def progress_until(handle: WorkflowHandle, predicate, timeout: float = 60.0) -> Progress:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        p = await handle.query(CampaignWorkflow.progress)
        if predicate(p):
            return p
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out; last: {p}")
        await asyncio.sleep(0.1)


def disbursements(engine, campaign: str) -> dict[int, list[int]]:
    """member id → amounts disbursed for the campaign (the ledger's view)."""
    with Session(engine) as s:
        rows = s.exec(select(ClaimSlot.claim_key, LedgerEntry.amount_fen)
                      .join(LedgerEntry, LedgerEntry.application_id == ClaimSlot.application_id)
                      .where(ClaimSlot.claim_key.like(f"warmth:{campaign}:m%"), LedgerEntry.kind == "disburse")).all()
        refs = s.exec(select(LedgerEntry.application_id, LedgerEntry.kind)
                      .where(LedgerEntry.kind == "disburse", LedgerEntry.application_id.like("W%"))).all()
    paid: dict[int, list[int]] = {}
    for key, amount in rows:
        paid.setdefault(int(key.rsplit(":m", 1)[1]), []).append(amount)
    assert len(refs) == len(rows)  # no disbursement outside a claim slot
    return paid


def member_nos(engine, ids) -> dict[int, str]:
    with Session(engine) as s:
        return {m.id: m.member_no for m in s.exec(select(Member).where(Member.id.in_(list(ids)))).all()}
