"""One application, from filing to closing: the workflow id is the application id.

received → facts gathered → rules evaluated → approval by the policy's route → funds reserved
(or awaiting funds) → public notice where the route has one → disbursed → receipt confirmed →
audit review → closed. Rejection, return for more information, withdrawal, revocation, reminders
and escalation are all part of it.

The workflow does no I/O and imports neither the database nor the rules engine: activities are
called by name, and everything they return is recorded in history.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, time, timedelta, timezone

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    import workflows.types as t

CHINA = timezone(timedelta(hours=8))
LOCAL = {"start_to_close_timeout": timedelta(seconds=30), "retry_policy": RetryPolicy(maximum_interval=timedelta(seconds=30))}
MONEY = {
    "start_to_close_timeout": timedelta(seconds=15),
    "retry_policy": RetryPolicy(maximum_interval=timedelta(minutes=1)),
}


class _Stopped(Exception):
    """The applicant withdrew, or the chair revoked the approval: stop where we are."""


def refused(code: str, zh: str, en: str) -> ApplicationError:
    return ApplicationError(en, {"code": code, "zh": zh, "en": en}, type="Refused", non_retryable=True)


@workflow.defn(name="ApplicationWorkflow")
class ApplicationWorkflow:
    @workflow.init
    def __init__(self, inp: t.ApplicationInput) -> None:
        # Set before any handler: an Update that arrives with the start is validated before run() begins.
        self.inp: t.ApplicationInput = inp
        self.details: t.ApplicationDetails = inp.details
        self.ctx: t.Context | None = None
        self.decision: dict | None = None
        self.status = t.SUBMITTED
        self.stage: str | None = None
        self.approved_fen = 0
        self.tasks: dict[str, t.TaskView] = {}
        self.history: list[t.HistoryItem] = []
        self.seq = 0
        self.round = 0
        self.stage_outcome: str | None = None
        self.stage_amount: int | None = None
        self.escalated = False
        self.deciders: list[int] = []  # users who approved, rejected or voted: they may not audit
        self.withdrawn_by: str | None = None
        self.revoked_by: str | None = None
        self.revoke_reason: str | None = None
        self.resubmission: t.ApplicationDetails | None = None
        self.objection: str | None = None
        self.funds_signal = False
        self.reserved = False
        self.paying = False
        self.current_tasks: list[str] = []
        self.audit_flagged = False

    # --- the process ----------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: t.ApplicationInput) -> str:
        self.inp, self.details = inp, inp.details
        await self._record(t.SUBMITTED, None, "filed", inp.filed_by.username, {"requested_fen": inp.details.requested_fen},
                           project=False)  # service.filing wrote this state with the application row
        try:
            if not await self._decide():
                return await self._finish()
            await self._pay()
        except _Rejected:
            return await self._finish()
        except _Stopped:
            await self._stop()
            return await self._finish()
        if self.approved_fen > 0:
            await self._human_stage(t.RECEIPT, t.DISBURSED)
            await self._record(t.RECEIPT_CONFIRMED, None, "receipt_confirmed", self._last_actor())
        outcome = await self._human_stage(t.AUDIT_REVIEW, self.status)
        self.audit_flagged = outcome == t.AUDIT_FLAG
        await self._record(t.CLOSED, None, "closed", None, {"audit_flagged": self.audit_flagged})
        return await self._finish()

    async def _decide(self) -> bool:
        """Rules, then people; loops when an approver returns it and the applicant resubmits."""
        while True:
            outcome = await self._assess_and_route()
            if outcome == t.APPROVE:
                return True
            if outcome == t.REJECT:
                return False
            await self._record(t.RETURNED, None, "returned", self._last_actor())
            await self._wait(lambda: self.resubmission is not None)
            self.details, self.resubmission = self.resubmission, None
            await self._record(t.SUBMITTED, None, "resubmitted", self.inp.filed_by.username,
                               {"requested_fen": self.details.requested_fen})

    async def _assess_and_route(self) -> str:
        assert self.inp is not None
        self.round += 1
        self.ctx = await workflow.execute_local_activity("gather_facts", args=[self.inp, self.details], result_type=t.Context, **LOCAL)
        if self.ctx.problems:
            problems = [{"field": p.field, "zh": p.zh, "en": p.en} for p in self.ctx.problems]
            await self._record(t.REJECTED, None, "validation_failed", None, {"problems": problems})
            return t.REJECT
        self.decision = await workflow.execute_local_activity("evaluate_rules", self.ctx.facts, result_type=dict, **LOCAL)
        d = self.decision
        self.approved_fen = d["approved_fen"]
        await self._record(t.SUBMITTED, None, "rules_evaluated", "rules", {
            "outcome": d["outcome"], "approved_fen": d["approved_fen"], "cap_fen": d["cap_fen"], "fired": d["fired"],
            "policy_version": d["policy_version"], "policy_hash": d["policy_hash"],
        })
        if d["outcome"] == "ineligible":
            await self._record(t.REJECTED, None, "rejected_by_rules", "rules", {"reasons": [r["zh"] for r in d["reasons"]]})
            return t.REJECT
        for stage in self._stages():
            outcome = await self._human_stage(stage, t.PENDING_APPROVAL)
            if outcome == t.REJECT:
                await self._record(t.REJECTED, None, "rejected", self._last_actor())
            if outcome != t.APPROVE:
                return outcome
        if d["outcome"] == "refer":
            self.approved_fen = self.stage_amount or 0
        return t.APPROVE

    def _stages(self) -> list[str]:
        route = self.decision["route"]
        kind = route["kind"]
        if self.decision["outcome"] == "refer" and kind in ("auto", "officer"):
            return [t.CHAIR_APPROVAL]  # no rule decided: a person must, whatever the route
        if kind == "auto":
            return [t.BATCH_SIGN_OFF] if self.inp.batch else []  # a scheduled gift waits for the month's sign-off
        if kind == "officer":
            return [t.OFFICER_CHECK]
        if kind == "chair":
            return ([t.OFFICER_CHECK] if route["officer_check"] else []) + [t.CHAIR_APPROVAL]
        if len(self.ctx.committee_user_ids) < route["quorum"]:
            return [t.CHAIR_APPROVAL]  # too few committee members for a quorum: the chair decides
        if self.decision["outcome"] == "refer":
            return [t.COMMITTEE_VOTE, t.CHAIR_APPROVAL]  # the chair sets the amount no rule set
        return [t.COMMITTEE_VOTE]

    async def _pay(self) -> None:
        ctx, d = self.ctx, self.decision
        notice_days = d["route"]["public_notice_working_days"]
        if self.approved_fen > 0:
            await self._reserve()
        await self._record(t.APPROVED, None, "approved", None, {"approved_fen": self.approved_fen, "funds_reserved": self.reserved})
        if notice_days:
            await self._public_notice(notice_days)
        if self.approved_fen > 0:
            self._checkpoint()
            self.paying = True  # from here on, no withdrawal or revocation is accepted
            await workflow.execute_activity("disburse", self._money(), result_type=bool, **MONEY)
            await self._record(t.DISBURSED, None, "disbursed", None, {"amount_fen": self.approved_fen, "form": d["form"],
                                                                     "fund": ctx.fund_code})

    async def _reserve(self) -> None:
        started = workflow.now()
        deadline = started + timedelta(days=self.ctx.awaiting_funds_max_days)
        while True:
            result = await workflow.execute_activity("reserve_funds", self._money(), result_type=t.ReserveResult, **MONEY)
            if result.ok:
                self.reserved = True
                self._checkpoint()
                return
            if result.reason != "insufficient_funds" or workflow.now() >= deadline:
                await self._record(t.REJECTED, None, "rejected_funds", None, {"reason": result.reason, "zh": result.zh, "en": result.en})
                raise _Rejected()
            if self.status != t.AWAITING_FUNDS:
                await self._record(t.AWAITING_FUNDS, None, "awaiting_funds", None, {"zh": result.zh, "en": result.en})
            self.funds_signal = False
            try:
                await self._wait(lambda: self.funds_signal, timeout=min(timedelta(days=1), deadline - workflow.now()))
            except asyncio.TimeoutError:
                pass

    async def _public_notice(self, working_days: int) -> None:
        today = workflow.now().astimezone(CHINA).date()
        end = await workflow.execute_local_activity("working_days_after", args=[today.isoformat(), working_days], result_type=str, **LOCAL)
        ends_at = datetime.combine(datetime.fromisoformat(end).date() + timedelta(days=1), time(0), CHINA)
        await self._record(t.APPROVED, t.PUBLIC_NOTICE, "public_notice_started", None, {"until": end, "working_days": working_days})
        self.objection = None
        try:
            await self._wait(lambda: self.objection is not None, timeout=max(ends_at - workflow.now(), timedelta(seconds=1)))
        except asyncio.TimeoutError:
            await self._record(t.APPROVED, None, "public_notice_passed", None)
            return
        # An objection goes back to the committee; the reservation stays until it decides.
        await self._record(t.PENDING_APPROVAL, None, "objection_received", None, {"objection": self.objection})
        outcome = await self._human_stage(t.COMMITTEE_VOTE if t.COMMITTEE_VOTE in self._stages() else t.CHAIR_APPROVAL, t.PENDING_APPROVAL)
        if outcome != t.APPROVE:
            self.revoked_by, self.revoke_reason = self._last_actor(), "objection upheld"
            raise _Stopped()
        await self._public_notice(working_days)

    # --- people ----------------------------------------------------------------------------

    async def _human_stage(self, stage: str, status: str) -> str:
        """Open the stage's tasks, remind and escalate while they wait, and return the outcome."""
        role = t.STAGE_ROLE[stage]
        ctx = self.ctx
        now = workflow.now()
        due = now + timedelta(days=ctx.escalate_after_days)
        prefix = f"{self.inp.application_id}:{self.round}:{stage}"
        if stage == t.COMMITTEE_VOTE:
            tasks = [t.TaskView(f"{prefix}:{uid}", stage, role, assignee_user_id=uid, due_at=due.isoformat())
                     for uid in ctx.committee_user_ids]
        else:
            tasks = [t.TaskView(prefix, stage, role, due_at=due.isoformat())]
        for task in tasks:
            if task.task_id in self.tasks:  # an objection or a second pass: a fresh round of tasks
                task.task_id = f"{task.task_id}:{self.seq}"
            self.tasks[task.task_id] = task
        self.current_tasks = [task.task_id for task in tasks]
        self.stage_outcome, self.stage_amount, self.escalated = None, None, False
        opened = {"stage": stage, "role": role}
        if stage == t.COMMITTEE_VOTE:
            opened["voters"] = len(tasks)
        await self._record(status, stage, "task_opened", None, opened, tasks)
        waited = timedelta(0)
        steps = [(timedelta(days=ctx.remind_after_days), "reminder"), (timedelta(days=ctx.escalate_after_days), "escalation")]
        for after, kind in steps:
            try:
                await self._wait(lambda: self.stage_outcome is not None, timeout=after - waited)
                break
            except asyncio.TimeoutError:
                waited = after
                await self._nudge(stage, kind)
        else:
            await self._wait(lambda: self.stage_outcome is not None)
        return self.stage_outcome

    async def _nudge(self, stage: str, kind: str) -> None:
        open_tasks = [self.tasks[i] for i in self.current_tasks if self.tasks[i].status == "open"]
        for task in open_tasks:
            task.reminded = True
            task.escalated = task.escalated or kind == "escalation"
        role = "chair" if kind == "escalation" else t.STAGE_ROLE[stage]
        if kind == "escalation":
            self.escalated = True
            if stage != t.CHAIR_APPROVAL:
                chair_task = t.TaskView(f"{self.inp.application_id}:{self.round}:{stage}:escalated:{self.seq}", stage, "chair",
                                        escalated=True)
                self.tasks[chair_task.task_id] = chair_task
                self.current_tasks.append(chair_task.task_id)
                open_tasks.append(chair_task)
        zh = {"reminder": "待办提醒：有一项福利申请等待您处理", "escalation": "逾期升级：福利申请超期未处理，请主席督办"}[kind]
        en = {"reminder": "Reminder: a welfare application awaits your action",
              "escalation": "Escalated: a welfare application is overdue; the chair is asked to act"}[kind]
        notice = t.Notice(f"{self.inp.application_id}:{self.round}:{stage}:{kind}", self.inp.application_id, kind, zh, en,
                          recipient_role=role)
        await workflow.execute_local_activity("notify", notice, **LOCAL)
        await self._record(self.status, stage, kind, None, {"stage": stage}, open_tasks)

    def _tally(self) -> str | None:
        """The current stage's outcome from its tasks so far, or None while undecided."""
        tasks = [self.tasks[i] for i in self.current_tasks]
        done = [task for task in tasks if task.status == "done"]
        if self.stage != t.COMMITTEE_VOTE or any(task.role == "chair" for task in done):
            return done[-1].outcome if done else None  # one decider, or the chair after an escalation
        votes = [task for task in tasks if task.role == "committee"]
        cast = [task for task in votes if task.status == "done"]
        if any(task.outcome == t.RETURN for task in cast):
            return t.RETURN
        route = self.decision["route"]
        voters = len(votes)  # recused members were given no vote
        yes = sum(task.outcome == t.APPROVE for task in cast)
        no = sum(task.outcome == t.REJECT for task in cast)
        mode = route["committee_mode"]
        if mode == "all":
            return t.REJECT if no else (t.APPROVE if yes == voters else None)
        if mode == "any":
            return t.APPROVE if yes else (t.REJECT if no == voters else None)
        if yes * 2 > voters and len(cast) >= route["quorum"]:
            return t.APPROVE
        if no * 2 >= voters or len(cast) == voters:
            return t.REJECT  # a majority can no longer approve
        return None

    # --- updates, signals, queries ---------------------------------------------------------

    @workflow.update
    async def act(self, cmd: t.Act) -> t.ActResult:
        task = self.tasks[cmd.task_id]
        task.status, task.outcome, task.comment, task.decided_by_user_id = "done", cmd.action, cmd.comment, cmd.actor.user_id
        if task.stage not in (t.RECEIPT, t.AUDIT_REVIEW):
            self.deciders.append(cmd.actor.user_id)
        if cmd.amount_fen is not None:
            self.stage_amount = cmd.amount_fen
        outcome = self._tally()
        if outcome is not None:
            for other in self.tasks.values():
                if other.status == "open":
                    other.status = "cancelled"
        detail = {"task_id": task.task_id, "stage": task.stage, "action": cmd.action, "comment": cmd.comment}
        if cmd.amount_fen is not None:
            detail["amount_fen"] = cmd.amount_fen
        await self._record(self.status, self.stage, f"task_{cmd.action}", cmd.actor.username, detail,
                           [self.tasks[i] for i in self.current_tasks])
        self.stage_outcome = outcome
        return t.ActResult(task.task_id, True, self.status, self.stage)

    @act.validator
    def _validate_act(self, cmd: t.Act) -> None:
        task = self.tasks.get(cmd.task_id)
        if task is None:
            raise refused("no_such_task", "任务不存在", "No such task on this application")
        if task.status != "open" or task.task_id not in self.current_tasks:
            raise refused("wrong_stage", "该任务已处理或申请不在该环节", "This task is closed or the application is not at its stage")
        allowed = {t.RECEIPT: (t.APPROVE,), t.AUDIT_REVIEW: (t.AUDIT_OK, t.AUDIT_FLAG),
                   t.BATCH_SIGN_OFF: (t.APPROVE, t.REJECT)}.get(task.stage, (t.APPROVE, t.REJECT, t.RETURN))
        if cmd.action not in allowed:
            raise refused("bad_action", f"该环节不能执行“{cmd.action}”", f"Action {cmd.action!r} is not possible at this stage")
        if task.role not in cmd.actor.roles:
            raise refused("wrong_role", "您没有该环节的权限", f"This stage needs the {task.role} role")
        if task.assignee_user_id is not None and task.assignee_user_id != cmd.actor.user_id:
            raise refused("not_assignee", "这不是您的任务", "This task is assigned to someone else")
        if task.stage == t.COMMITTEE_VOTE and any(
            self.tasks[i].decided_by_user_id == cmd.actor.user_id for i in self.current_tasks
        ):
            raise refused("already_voted", "您已投过票", "You have already voted")
        self._check_recusal(cmd.actor, task.stage)
        if task.stage == t.RECEIPT and cmd.actor.member_id == self.inp.member_id:
            raise refused("own_application", "不能确认本人的签领", "You may not confirm your own receipt")
        refer = self.decision is not None and self.decision["outcome"] == "refer"
        if cmd.amount_fen is not None and not (refer and task.stage == t.CHAIR_APPROVAL and cmd.action == t.APPROVE):
            raise refused("amount_fixed", "金额由规则核定，不能修改", "The amount is set by the rules and cannot be changed")
        if refer and task.stage == t.CHAIR_APPROVAL and cmd.action == t.APPROVE:
            limit = min(self.details.requested_fen, self.ctx.max_fen)
            if cmd.amount_fen is None or not 0 <= cmd.amount_fen <= limit:
                raise refused("amount_needed", f"规则未能决定，请核定金额（0 至 {limit} 分）",
                              f"No rule decided: give amount_fen between 0 and {limit}")

    def _check_recusal(self, actor: t.Actor, stage: str) -> None:
        if stage == t.RECEIPT:
            return  # a clerk records the member's signature; only the member's own is refused (above)
        inp = self.inp
        if actor.member_id is not None and actor.member_id == inp.member_id or actor.user_id == inp.filed_by.user_id:
            raise refused("own_application", "不能审批本人提交或经办的申请（回避）", "You may not act on your own application")
        if actor.member_id is not None and actor.member_id in self.ctx.conflicted_member_ids:
            raise refused("relative", "申请人是您登记的亲属，须回避", "The applicant is your registered relative: you must recuse yourself")
        if stage == t.AUDIT_REVIEW and actor.user_id in self.deciders:
            raise refused("approver_audits", "审批人不能审计同一申请", "Whoever approved an application may not audit it")

    @workflow.update
    async def withdraw(self, actor: t.Actor) -> str:
        self.withdrawn_by = actor.username
        await workflow.wait_condition(lambda: self.status in (t.WITHDRAWN, t.REJECTED, t.CLOSED))
        return self.status

    @withdraw.validator
    def _validate_withdraw(self, actor: t.Actor) -> None:
        self._check_owner(actor)
        if self.status not in t.BEFORE_DISBURSEMENT or self.paying or self.withdrawn_by or self.revoked_by:
            raise refused("too_late", "已发放或已结束的申请不能撤回", "Only an application not yet paid can be withdrawn")

    @workflow.update
    async def resubmit(self, actor: t.Actor, details: t.ApplicationDetails) -> str:
        self.resubmission = details
        await workflow.wait_condition(lambda: self.status != t.RETURNED)
        return self.status

    @resubmit.validator
    def _validate_resubmit(self, actor: t.Actor, details: t.ApplicationDetails) -> None:
        self._check_owner(actor)
        if self.status != t.RETURNED or self.resubmission is not None:
            raise refused("not_returned", "只有退回补充材料的申请可以重新提交", "Only a returned application can be resubmitted")

    @workflow.update
    async def revoke(self, actor: t.Actor, reason: str) -> str:
        self.revoked_by, self.revoke_reason = actor.username, reason
        await workflow.wait_condition(lambda: self.status == t.REJECTED)
        return self.status

    @revoke.validator
    def _validate_revoke(self, actor: t.Actor, reason: str) -> None:
        if "chair" not in actor.roles:
            raise refused("wrong_role", "只有主席可以撤销批准", "Only the chair can revoke an approval")
        if self.status not in (t.APPROVED, t.AWAITING_FUNDS) or self.paying or self.withdrawn_by or self.revoked_by:
            raise refused("too_late", "只能撤销尚未发放的已批准申请", "Only an approved application not yet paid can be revoked")

    @workflow.update
    async def object(self, actor: t.Actor, text: str) -> str:
        self.objection = f"{actor.username}: {text}"
        return self.status

    @object.validator
    def _validate_object(self, actor: t.Actor, text: str) -> None:
        if self.stage != t.PUBLIC_NOTICE or self.objection is not None:
            raise refused("not_in_notice", "申请不在公示期", "The application is not in its public notice period")
        if not text.strip():
            raise refused("empty", "请写明异议内容", "Say what the objection is")

    @workflow.update
    async def await_assessment(self) -> t.Snapshot:
        """Returns once the rules have decided (or the application was refused before they could)."""
        await workflow.wait_condition(lambda: self.decision is not None or self.status in (t.REJECTED, t.WITHDRAWN))
        return self.snapshot()

    @workflow.signal
    def funds_available(self) -> None:
        self.funds_signal = True

    @workflow.query
    def snapshot(self) -> t.Snapshot:
        return t.Snapshot(self.inp.application_id if self.inp else "", self.status, self.stage, self.approved_fen,
                          self.decision, list(self.tasks.values()), list(self.history))

    def _check_owner(self, actor: t.Actor) -> None:
        inp = self.inp
        if not (actor.member_id == inp.member_id or actor.user_id == inp.filed_by.user_id):
            raise refused("not_owner", "只有申请人或经办人可以执行此操作", "Only the applicant or the clerk who filed it can do this")

    # --- plumbing --------------------------------------------------------------------------

    def _stop_requested(self) -> bool:
        return self.withdrawn_by is not None or self.revoked_by is not None

    def _checkpoint(self) -> None:
        if self._stop_requested():
            raise _Stopped()

    async def _wait(self, condition, timeout: timedelta | None = None) -> None:
        """Wait for ``condition``; a withdrawal or revocation interrupts any wait."""
        await workflow.wait_condition(lambda: condition() or self._stop_requested(), timeout=timeout)
        self._checkpoint()

    async def _stop(self) -> None:
        if self.reserved:
            await workflow.execute_activity("release_funds", self._money(), result_type=bool, **MONEY)
            self.reserved = False
        for task in self.tasks.values():
            if task.status == "open":
                task.status = "cancelled"
        if self.withdrawn_by:
            await self._record(t.WITHDRAWN, None, "withdrawn", self.withdrawn_by, {}, list(self.tasks.values()))
        else:
            await self._record(t.REJECTED, None, "revoked", self.revoked_by, {"reason": self.revoke_reason},
                               list(self.tasks.values()))

    async def _finish(self) -> str:
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.status

    def _money(self) -> t.MoneyRequest:
        ctx = self.ctx
        return t.MoneyRequest(
            application_id=self.inp.application_id, org_id=self.inp.org_id, fund_code=ctx.fund_code, fund_year=ctx.fund_year,
            amount_fen=self.approved_fen, claim_key=ctx.claim_key, period_key=ctx.period_key,
            max_claims=ctx.max_claims, form=self.decision["form"] if self.decision else None,
        )

    def _last_actor(self) -> str | None:
        return self.history[-1].actor if self.history else None

    async def _record(self, status: str, stage: str | None, action: str, actor: str | None, detail: dict | None = None,
                      tasks: list[t.TaskView] | None = None, project: bool = True) -> None:
        self.status, self.stage = status, stage
        item = t.HistoryItem(workflow.now().isoformat(), action, actor, detail or {})
        self.history.append(item)
        self.seq += 1
        if not project:
            return
        projection = t.Projection(self.inp.application_id, self.seq, status, stage, self.approved_fen, item,
                                  self.decision, [replace(task) for task in tasks or []])
        await workflow.execute_local_activity("project", projection, **LOCAL)


class _Rejected(_Stopped):
    """Funds never came, or the claim was taken: the rejection is already recorded."""
