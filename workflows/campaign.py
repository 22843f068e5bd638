"""送温暖 warmth campaigns: one payment per active hardship file, each a small child workflow.

CampaignWorkflow (id ``CAMPAIGN-<org>-<year>-<name>``):
  plan (an activity: the active files on the campaign's date, sorted by member, the amount per tier
  from the policy, and the fund's available balance) → refused, nothing started, when the fund cannot
  pay everyone → one HouseholdPaymentWorkflow per household, ``concurrency`` in flight at most →
  continue-as-new every ``per_run`` households, so no history grows with the number of files.

Paid exactly once, whatever crashes: the child ids are ``<campaign id>-m<member>``; every payment is
a ledger reservation and disbursement keyed by a reference derived from the campaign and member, with
a claim slot ``warmth:<campaign>:m<member>`` that the database allows once. A retried or restarted
payment finds its own ledger rows and moves nothing more.

Why a dedicated child and not ApplicationWorkflow: the campaign is one decision (the union's plan and
the policy's amounts) over thousands of households. ApplicationWorkflow would gather facts and run
the hardship benefit's committee vote, public notice, receipt and audit tasks per household —
thousands of inbox tasks for one decision — and its history is many times larger. The child is two
activities (reserve, disburse), the same ledger code and the same activities as every application.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    import workflows.campaign_types as c
    from workflows.types import MoneyRequest, ReserveResult

PLAN = {"start_to_close_timeout": timedelta(minutes=2), "retry_policy": RetryPolicy(maximum_interval=timedelta(seconds=30))}
MONEY = {"start_to_close_timeout": timedelta(seconds=15), "retry_policy": RetryPolicy(maximum_interval=timedelta(minutes=1))}


@workflow.defn(name="HouseholdPaymentWorkflow")
class HouseholdPaymentWorkflow:
    @workflow.run
    async def run(self, p: c.PaymentInput) -> c.PaymentResult:
        money = MoneyRequest(application_id=p.ref, org_id=p.org_id, fund_code=p.fund_code, fund_year=p.fund_year,
                             amount_fen=p.amount_fen, claim_key=c.claim_key(p.campaign_id, p.member_id),
                             period_key=c.period_key(p.fund_year, p.member_id, p.tier), max_claims=1, form=p.form,
                             actor=p.actor[:64])
        reserved = await workflow.execute_activity("reserve_funds", money, result_type=ReserveResult, **MONEY)
        if not reserved.ok:
            return c.PaymentResult(p.member_id, False, reserved.reason, reserved.zh, reserved.en)
        await workflow.execute_activity("disburse", money, result_type=bool, **MONEY)
        return c.PaymentResult(p.member_id, True)


@workflow.defn(name="CampaignWorkflow")
class CampaignWorkflow:
    def __init__(self) -> None:
        self.inp: c.CampaignInput | None = None
        self.state = c.PLANNING
        self.in_flight = 0

    @workflow.run
    async def run(self, inp: c.CampaignInput) -> c.Progress:
        self.inp = inp
        if inp.plan is None:
            inp.plan = await workflow.execute_activity("plan_campaign", inp, result_type=c.CampaignPlan, **PLAN)
            if inp.plan.refusal is not None:
                self.state = c.REFUSED
                await workflow.wait_condition(workflow.all_handlers_finished)
                r = inp.plan.refusal
                raise ApplicationError(r["en"], r, type="Refused", non_retryable=True)
        self.state = c.RUNNING
        households = inp.plan.households
        stop = min(len(households), inp.next_index + inp.per_run)
        tasks = []
        for index in range(inp.next_index, stop):
            await workflow.wait_condition(lambda: self.in_flight < inp.concurrency)
            self.in_flight += 1
            tasks.append(asyncio.create_task(self._pay(households[index])))
        await asyncio.gather(*tasks)
        inp.next_index = stop
        if stop < len(households):
            await workflow.wait_condition(workflow.all_handlers_finished)
            workflow.continue_as_new(replace(inp, runs=inp.runs + 1))
        self.state = c.COMPLETED
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.progress()

    async def _pay(self, h: c.Household) -> None:
        inp, plan = self.inp, self.inp.plan
        payment = c.PaymentInput(
            campaign_id=inp.campaign_id, ref=c.payment_ref(inp.campaign_id, inp.year, h.member_id), org_id=inp.org_id,
            member_id=h.member_id, tier=h.tier, amount_fen=h.amount_fen, fund_code=plan.fund_code, fund_year=plan.fund_year,
            form=plan.form, actor=f"campaign:{inp.launched_by}",
        )
        try:
            result = await workflow.execute_child_workflow(
                HouseholdPaymentWorkflow.run, payment, id=c.household_workflow_id(inp.campaign_id, h.member_id),
                result_type=c.PaymentResult,
            )
        except Exception as exc:  # noqa: BLE001 - a child that failed for good: counted, never retried twice
            result = c.PaymentResult(h.member_id, False, "error", "发放失败", str(exc)[:200])
        finally:
            self.in_flight -= 1
        if result.paid:
            inp.done += 1
            inp.paid_fen += h.amount_fen
        else:
            inp.failed.append(c.FailedHousehold(h.member_id, result.reason or "error", result.zh or "", result.en or ""))

    @workflow.update
    async def await_plan(self) -> c.Progress:
        """Returns once the plan is made: refused, or running."""
        await workflow.wait_condition(lambda: self.state != c.PLANNING)
        return self.progress()

    @workflow.query
    def progress(self) -> c.Progress:
        inp = self.inp
        plan = inp.plan if inp else None
        total = len(plan.households) if plan and plan.refusal is None else 0
        failed = len(inp.failed) if inp else 0
        done = inp.done if inp else 0
        return c.Progress(
            campaign_id=inp.campaign_id if inp else "", state=self.state, total=total, done=done, failed=failed,
            pending=total - done - failed, total_fen=plan.total_fen if plan else 0, paid_fen=inp.paid_fen if inp else 0,
            fund_code=plan.fund_code if plan else None, available_fen=plan.available_fen if plan else None,
            runs=inp.runs if inp else 1, refusal=plan.refusal if plan else None, failures=list(inp.failed[:100]) if inp else [],
        )
