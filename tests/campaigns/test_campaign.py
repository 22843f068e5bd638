"""Warmth campaigns on the time-skipping server: each active file paid its tier's amount once, the
fund checked before anything starts, progress counts, continue-as-new, and the recipients list."""

from __future__ import annotations

import dataclasses

import pytest
from sqlmodel import Session, select
from temporalio.client import WorkflowFailureError
from temporalio.common import WorkflowIDReusePolicy

from activities.campaign import recipient_table, recipients
from service.audit.reports import to_csv
from service.models import ClaimSlot, LedgerEntry
from workflows.campaign import CampaignWorkflow

from ..workflows.helpers import running_worker
from ..world import build, fund
from .helpers import WARMTH, add_households, campaign_input, disbursements, launch, member_nos


async def test_campaign_pays_each_active_file_its_tier_amount_once(time_env, engine):
    world = build(engine)
    active = add_households(engine, world.org_id, 7, closed=1, expired=1)
    client = time_env.client
    async with running_worker(client, engine) as tq:
        inp = campaign_input(world.org_id, per_run=3, concurrency=2)  # three runs: continue-as-new twice
        result = await (await launch(client, inp, tq)).result()
        assert (result.state, result.total, result.done, result.failed, result.pending) == ("completed", 7, 7, 0, 0)
        assert result.runs == 3
        expected = {m: [WARMTH[tier]] for m, tier in active.items()}
        assert disbursements(engine, inp.campaign_id) == expected  # closed and expired files got nothing
        total = sum(WARMTH[t] for t in active.values())
        assert result.total_fen == result.paid_fen == total
        f = fund(engine, world.funds["hardship_fund"])
        assert (f.spent_fen, f.reserved_fen) == (total, 0)

        # Launched again once finished (a new run of the same id): every payment finds its ledger rows.
        again = await client.start_workflow(CampaignWorkflow.run, inp, id=inp.campaign_id, task_queue=tq,
                                            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE)
        second = await again.result()
        assert second.done == 7 and disbursements(engine, inp.campaign_id) == expected
        assert fund(engine, world.funds["hardship_fund"]).spent_fen == total

    rows = recipients(engine, inp.campaign_id)
    nos = member_nos(engine, active)
    assert [r.member_no for r in rows] == sorted(nos.values())
    by_no = {r.member_no: r for r in rows}
    for member_id, tier in active.items():
        row = by_no[nos[member_id]]
        assert (row.tier, row.amount_fen, row.form) == (tier, WARMTH[tier], "cash")
        assert row.as_dict()["amount_yuan"] == f"{WARMTH[tier] // 100}.00" and row.as_dict()["signature"] == ""
    assert {r.tier_zh for r in rows} == {"深度困难", "相对困难", "意外致困"}
    csv_text = to_csv([recipient_table(engine, inp.campaign_id, world.org_id)]).decode("utf-8-sig")
    assert "签名 Signature" in csv_text and "送温暖签领表" in csv_text
    assert f"{total // 100}.00" in csv_text and "7 户 households" in csv_text


async def test_total_checked_first_insufficient_fund_refused_nothing_paid(time_env, engine):
    world = build(engine, hardship_fen=200_000)  # 2000 yuan; four households need 3300
    add_households(engine, world.org_id, 4)
    client = time_env.client
    async with running_worker(client, engine) as tq:
        inp = campaign_input(world.org_id)
        handle = await launch(client, inp, tq)
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        cause = failure.value.cause
        assert cause.type == "Refused"
        details = cause.details[0]
        assert details["code"] == "insufficient_funds"
        assert "经费余额不足" in details["zh"] and "3300.00" in details["zh"] and "2000.00" in details["zh"]
        assert "nothing was paid" in details["en"]
        progress = await handle.query(CampaignWorkflow.progress)
        assert progress.state == "refused" and progress.refusal["code"] == "insufficient_funds"
        # No child was ever started, no money moved.
        history = [e async for e in handle.fetch_history_events()]
        assert not any(e.HasField("start_child_workflow_execution_initiated_event_attributes") for e in history)
    with Session(engine) as s:
        assert s.exec(select(LedgerEntry).where(LedgerEntry.application_id.like("W%"))).all() == []
    f = fund(engine, world.funds["hardship_fund"])
    assert (f.spent_fen, f.reserved_fen) == (0, 0)


async def test_progress_counts_a_household_whose_claim_is_taken_as_failed(time_env, engine):
    world = build(engine)
    active = add_households(engine, world.org_id, 5)
    inp = campaign_input(world.org_id, name="mid-autumn")
    taken = sorted(active)[2]
    with Session(engine) as s, s.begin():  # someone else holds this household's claim slot
        s.add(ClaimSlot(claim_key=f"warmth:{inp.campaign_id}:m{taken}", slot=1, application_id="OTHER-1", period_key="x"))
    client = time_env.client
    async with running_worker(client, engine) as tq:
        handle = await launch(client, inp, tq)
        result = await handle.result()
        assert (result.total, result.done, result.failed, result.pending) == (5, 4, 1, 0)
        assert [(f.member_id, f.reason) for f in result.failures] == [(taken, "claim_taken")]
        assert dataclasses.asdict(await handle.query(CampaignWorkflow.progress))["failed"] == 1
    assert sorted(disbursements(engine, inp.campaign_id)) == sorted(set(active) - {taken})
