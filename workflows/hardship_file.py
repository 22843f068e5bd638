"""One hardship file (困难职工档案), for as many years as it lives: the workflow id is the file id.

opened → preliminary check by a clerk (初审) → home-visit report (入户调查) with the household as visited →
the rules assess the tier (深度困难 / 相对困难 / 意外致困, or not eligible: the file ends) → committee vote
(集体研究; majority and quorum from the policy's ``hardship.file_route``; the member and registered
relatives recused) → public notice (公示) for the policy's working days on the Chinese holiday calendar;
an objection sends the file back to the committee → active for ``review_months`` → a reminder before
expiry → yearly review (动态管理): a clerk submits the household as it is now, the rules re-assess, and
the file is renewed for another period (the tier may change) or closed. A clerk or the chair may close
it at any time (left hardship, retired, moved, died).

Each renewal continues as a new run, carrying the periods granted and a one-line-per-decision summary,
so no run's history grows with the years. Every step is also written to the audit log (keyed by file,
run and step) and the HardshipFile rows, so an auditor reads the whole story in one place.

The workflow does no I/O and imports neither the database nor the rules engine.
"""

from __future__ import annotations

import asyncio
import calendar
from datetime import date, datetime, time, timedelta, timezone

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    import workflows.hardship_types as h
    from workflows.types import Actor

CHINA = timezone(timedelta(hours=8))
LOCAL = {"start_to_close_timeout": timedelta(seconds=30), "retry_policy": RetryPolicy(maximum_interval=timedelta(seconds=30))}
# Story steps worth carrying into the next run's summary (the rest stay in the earlier run's history).
DECISIVE = {"opened", "checked", "assessed", "committee_decided", "objection_received", "public_notice_passed",
            "activated", "reassessed", "renewed", "lapsed"}


def refused(code: str, zh: str, en: str) -> ApplicationError:
    return ApplicationError(en, {"code": code, "zh": zh, "en": en}, type="Refused", non_retryable=True)


def add_months(day: date, months: int) -> date:
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


class _Closed(Exception):
    """A close was asked for (or the review found no hardship): stop where we are."""


@workflow.defn(name="HardshipFileWorkflow")
class HardshipFileWorkflow:
    @workflow.init
    def __init__(self, inp: h.FileInput) -> None:
        # Set before any handler: an Update that arrives with the start is validated before run() begins.
        self.inp: h.FileInput = inp
        self.ctx: h.FileContext | None = None
        self.stage = h.CLERK_CHECK if inp.carried is None else h.ACTIVE
        self.story: list[h.StoryItem] = []
        self.summary: list[h.StoryItem] = []
        self.seq = 0
        self.run_no = 1
        self.periods: list[h.Period] = []
        self.assessment: h.Assessment | None = None
        self.check: tuple[Actor, str, str | None] | None = None
        self.visit: tuple[Actor, str, dict] | None = None
        self.review: tuple[Actor, dict, str | None] | None = None
        self.processed = 0  # visits and reviews assessed so far: their Updates return after the assessment
        self.voters: list[int] = []
        self.votes: dict[int, h.VoteView] = {}
        self.outcome: str | None = None
        self.vote_round = 0
        self.objection: tuple[Actor, str] | None = None
        self.notice_until: str | None = None
        self.notice_open = False
        self.close_req: tuple[Actor, str, str | None] | None = None

    # --- the process ----------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: h.FileInput) -> str:
        self.inp = inp
        try:
            if inp.carried is None:
                await self._record("opened", inp.opened_by.username, {"causes": inp.causes, "household_declared": inp.household},
                                   rows=[self._pending_row(h.CLERK_CHECK)])
                if not await self._open():
                    return await self._finish()
            else:
                carried = inp.carried
                self.run_no, self.periods, self.summary = carried.run_no, list(carried.periods), list(carried.summary)
                self.stage = h.ACTIVE
                period = self.periods[-1]
                await self._record("continued", None, {"previous_run_id": carried.previous_run_id, "run_no": self.run_no,
                                                       "period": period.number, "tier": period.tier,
                                                       "active_from": period.active_from, "active_until": period.active_until},
                                   stage=h.ACTIVE)
            await self._keep()
        except _Closed:
            await self._close()
        return await self._finish()

    async def _open(self) -> bool:
        """From the application to the first period in force; False when the file ends without one."""
        self.ctx = await self._context()
        await self._wait_human(lambda: self.check is not None, h.CLERK_CHECK)
        actor, action, comment = self.check
        if action == h.REJECT:
            await self._record("checked", actor.username, {"action": action, "comment": comment})
            await self._reject("check_rejected", actor.username, {"comment": comment})
            return False
        await self._record("checked", actor.username, {"action": action, "comment": comment},
                           stage=h.HOME_VISIT, rows=[self._pending_row(h.HOME_VISIT)])
        while True:
            await self._wait_human(lambda: self.visit is not None, h.HOME_VISIT)
            actor, findings, household = self.visit
            await self._record("home_visit_reported", actor.username, {"findings": findings, "household": household})
            assessed = await self._assess(household, "assessed")
            self.visit = None
            self.processed += 1
            if assessed.outcome in ("eligible", "ineligible"):
                break
            # The data could not be assessed (or no rule decided): the clerk visits or corrects again.
        if assessed.outcome == "ineligible":
            await self._reject("not_eligible", "rules", {"reasons": [r["zh"] for r in assessed.reasons]})
            return False
        while True:
            if await self._committee() == h.REJECT:
                await self._reject("committee_rejected", None, {"round": self.vote_round})
                return False
            if await self._public_notice():
                break
        today = self._today()
        period = h.Period(1, assessed.tier, today.isoformat(), self._until(today).isoformat(), today.isoformat(),
                          assessed.policy_version)
        self.periods.append(period)
        await self._record("activated", None, {"tier": period.tier, "active_from": period.active_from,
                                               "active_until": period.active_until},
                           stage=h.ACTIVE, rows=[self._period_row(period, h.ROW_ACTIVE, h.ACTIVE)])
        return True

    async def _committee(self) -> str:
        """Majority with quorum among the unconflicted committee; with too few for a quorum, the chair decides."""
        self.ctx = await self._context()
        ctx = self.ctx
        self.vote_round += 1
        self.votes, self.outcome = {}, None
        chair = len(ctx.committee_user_ids) < ctx.quorum
        self.voters = [] if chair else list(ctx.committee_user_ids)
        stage = h.CHAIR_DECISION if chair else h.COMMITTEE_VOTE
        await self._record("committee_opened" if not chair else "chair_decision_opened", None,
                           {"round": self.vote_round, "voters": len(self.voters), "quorum": ctx.quorum, "mode": ctx.committee_mode},
                           stage=stage, rows=[self._pending_row(stage)])
        await self._wait_human(lambda: self.outcome is not None, stage)
        await self._record("committee_decided", None, {"round": self.vote_round, "outcome": self.outcome,
                                                       "approve": sum(v.action == h.APPROVE for v in self.votes.values()),
                                                       "reject": sum(v.action == h.REJECT for v in self.votes.values()),
                                                       "voters": len(self.voters) or 1})
        return self.outcome

    async def _public_notice(self) -> bool:
        """True when the notice passed; False when an objection sends the file back to the committee."""
        today = self._today()
        days = self.ctx.notice_working_days
        end = await workflow.execute_local_activity("hardship_notice_end", args=[today.isoformat(), days], result_type=str, **LOCAL)
        self.notice_until, self.objection, self.notice_open = end, None, True
        ends_at = datetime.combine(date.fromisoformat(end) + timedelta(days=1), time(0), CHINA)
        await self._record("public_notice_started", None, {"from": today.isoformat(), "until": end, "working_days": days},
                           stage=h.PUBLIC_NOTICE, rows=[self._pending_row(h.PUBLIC_NOTICE)])
        try:
            await self._wait(lambda: self.objection is not None, timeout=max(ends_at - workflow.now(), timedelta(seconds=1)))
        except asyncio.TimeoutError:
            self.notice_open = False  # an objection from now on is too late
            await self._record("public_notice_passed", None, {"until": end})
            return True
        finally:
            self.notice_open = False
        actor, text = self.objection
        await self._record("objection_received", actor.username, {"objection": text})
        return False

    async def _keep(self) -> None:
        """The year in force: remind before expiry, take the review, renew (continue-as-new) or close."""
        self.ctx = await self._context()
        period = self.periods[-1]
        until = date.fromisoformat(period.active_until)
        remind_at = datetime.combine(until - timedelta(days=self.ctx.remind_before_days), time(0), CHINA)
        expires_at = datetime.combine(until + timedelta(days=1), time(0), CHINA)
        if remind_at > workflow.now():
            try:
                await self._wait(lambda: self.review is not None, timeout=remind_at - workflow.now())
            except asyncio.TimeoutError:
                pass
        if self.review is None:
            await self._remind_review(period)
        while True:
            if self.review is None and self.stage != h.LAPSED:
                try:
                    await self._wait(lambda: self.review is not None, timeout=max(expires_at - workflow.now(), timedelta(seconds=1)))
                except asyncio.TimeoutError:
                    await self._record("lapsed", None, {"period": period.number, "active_until": period.active_until},
                                       stage=h.LAPSED, rows=[self._stage_row(period, h.LAPSED)])
                    continue
            await self._wait(lambda: self.review is not None)
            actor, household, note = self.review
            await self._record("review_submitted", actor.username, {"note": note, "household": household})
            assessed = await self._assess(household, "reassessed")
            self.review = None
            self.processed += 1
            if assessed.outcome == "ineligible":
                self.close_req = (actor, "left_hardship", "复核不再符合困难条件 / the review found no hardship")
                raise _Closed()
            if assessed.outcome != "eligible":
                continue  # the data could not be assessed: a corrected review is awaited
            await self._renew(period, assessed)

    async def _renew(self, period: h.Period, assessed: h.Assessment) -> None:
        today = self._today()
        start = max(date.fromisoformat(period.active_until) + timedelta(days=1), today)
        nxt = h.Period(period.number + 1, assessed.tier, start.isoformat(), self._until(start).isoformat(), today.isoformat(),
                       assessed.policy_version)
        self.periods.append(nxt)
        await self._record("renewed", None, {"period": nxt.number, "tier": nxt.tier, "previous_tier": period.tier,
                                             "active_from": nxt.active_from, "active_until": nxt.active_until},
                           stage=h.ACTIVE, rows=[self._stage_row(period, h.RENEWED), self._period_row(nxt, h.ROW_ACTIVE, h.ACTIVE)])
        # A close asked for meanwhile waits for the stage to become closed: close before continuing, then.
        await workflow.wait_condition(lambda: workflow.all_handlers_finished() or self.close_req is not None)
        if self.close_req is not None:
            raise _Closed()
        carried = h.Carried(self.run_no + 1, workflow.info().run_id, list(self.periods), self._summary())
        workflow.continue_as_new(h.FileInput(self.inp.file_id, self.inp.org_id, self.inp.member_id, self.inp.opened_by,
                                             self.inp.opened_on, self.inp.household, self.inp.causes, carried))

    async def _remind_review(self, period: h.Period) -> None:
        key = f"{self.inp.file_id}:{period.number}:review_reminder"
        notice = h.FileNotice(key, self.inp.file_id, "review_reminder",
                              f"困难职工档案 {self.inp.file_id} 将于 {period.active_until} 到期，请入户复核",
                              f"Hardship file {self.inp.file_id} expires on {period.active_until}: please review it",
                              recipient_role="clerk")
        await workflow.execute_local_activity("hardship_notify", notice, **LOCAL)
        await self._record("review_reminder", None, {"period": period.number, "active_until": period.active_until},
                           stage=h.REVIEW_DUE, rows=[self._stage_row(period, h.REVIEW_DUE)])

    async def _close(self) -> None:
        actor, reason, note = self.close_req
        today = self._today().isoformat()
        rows = []
        if not self.periods:
            rows.append(self._pending_row(h.CLOSED, status=h.ROW_CLOSED, closed_reason=reason))
        for period in self.periods:
            if period.active_until < today:
                continue  # a period that ran its course stays as it was
            # No assistance is paid against a closed file, whatever the event date; the dates stay as granted.
            rows.append(h.FileRowWrite(self.inp.file_id, self.inp.member_id, period.number, status=h.ROW_CLOSED, stage=h.CLOSED,
                                       closed_reason=reason))
        zh, en = h.CLOSE_REASONS[reason]
        await self._record("closed", actor.username, {"reason": reason, "reason_zh": zh, "reason_en": en, "note": note,
                                                      "closed_on": today},
                           stage=h.CLOSED, rows=rows)

    async def _reject(self, action: str, actor: str | None, detail: dict) -> None:
        await self._record(action, actor, detail, stage=h.REJECTED, rows=[self._pending_row(h.REJECTED, status=h.ROW_REJECTED)])

    async def _assess(self, household: dict, action: str) -> h.Assessment:
        assessed = await workflow.execute_local_activity(
            "hardship_assess", args=[self.inp.member_id, self._today().isoformat(), household], result_type=h.Assessment, **LOCAL)
        self.assessment = assessed
        rows = []
        if not self.periods:
            rows.append(self._pending_row(self.stage, tier=assessed.tier or "", assessment=self._assessment_json(assessed)))
        await self._record(action, "rules", {"outcome": assessed.outcome, "tier": assessed.tier, "reasons": assessed.reasons,
                                             "fired": assessed.fired, "policy_version": assessed.policy_version,
                                             "policy_hash": assessed.policy_hash}, rows=rows)
        return assessed

    async def _context(self) -> h.FileContext:
        inp = self.inp
        return await workflow.execute_local_activity(
            "hardship_context", args=[inp.org_id, inp.member_id, inp.opened_by.user_id, self._today().isoformat()],
            result_type=h.FileContext, **LOCAL)

    # --- people ----------------------------------------------------------------------------

    async def _wait_human(self, condition, stage: str) -> None:
        """Wait for a person; remind the stage's role once when it waits longer than the policy says."""
        try:
            await self._wait(condition, timeout=timedelta(days=self.ctx.remind_after_days))
            return
        except asyncio.TimeoutError:
            pass
        role = h.STAGE_ROLE[stage]
        notice = h.FileNotice(f"{self.inp.file_id}:{self.run_no}:{self.seq}:reminder", self.inp.file_id, "reminder",
                              f"待办提醒：困难职工档案 {self.inp.file_id} 等待处理", f"Reminder: hardship file {self.inp.file_id} awaits action",
                              recipient_role=role)
        await workflow.execute_local_activity("hardship_notify", notice, **LOCAL)
        await self._record("reminder", None, {"stage": stage, "role": role})
        await self._wait(condition)

    def _tally(self) -> str | None:
        if self.stage == h.CHAIR_DECISION:
            return next(iter(self.votes.values())).action if self.votes else None
        ctx = self.ctx
        voters, cast = len(self.voters), list(self.votes.values())
        yes = sum(v.action == h.APPROVE for v in cast)
        no = sum(v.action == h.REJECT for v in cast)
        if ctx.committee_mode == "all":
            return h.REJECT if no else (h.APPROVE if yes == voters else None)
        if ctx.committee_mode == "any":
            return h.APPROVE if yes else (h.REJECT if no == voters else None)
        if yes * 2 > voters and len(cast) >= ctx.quorum:
            return h.APPROVE
        if no * 2 >= voters or len(cast) == voters:
            return h.REJECT  # a majority can no longer approve
        return None

    def _check_conflict(self, actor: Actor) -> None:
        if actor.member_id is not None and actor.member_id == self.inp.member_id:
            raise refused("own_file", "不能处理本人的困难职工档案（回避）", "You may not act on your own hardship file")
        if self.ctx and actor.member_id is not None and actor.member_id in self.ctx.conflicted_member_ids:
            raise refused("relative", "档案当事人是您登记的亲属，须回避", "The member is your registered relative: you must recuse yourself")

    def _check_role(self, actor: Actor, *roles: str) -> None:
        if not set(roles) & set(actor.roles):
            raise refused("wrong_role", "您没有该环节的权限", f"This needs the {' or '.join(roles)} role")

    def _check_stage(self, *stages: str) -> None:
        if self.stage not in stages:
            raise refused("wrong_stage", "档案不在该环节", f"The file is at {self.stage}, not {' / '.join(stages)}")

    # --- updates and queries -----------------------------------------------------------------

    @workflow.update
    async def check(self, actor: Actor, action: str, comment: str | None) -> str:
        self.check = (actor, action, comment)
        await workflow.wait_condition(lambda: self.stage != h.CLERK_CHECK)
        return self.stage

    @check.validator
    def _validate_check(self, actor: Actor, action: str, comment: str | None) -> None:
        self._check_role(actor, "clerk")
        self._check_stage(h.CLERK_CHECK)
        if self.check is not None or self.close_req is not None:
            raise refused("wrong_stage", "初审已经提交", "The preliminary check was already given")
        self._check_conflict(actor)
        if action not in (h.APPROVE, h.REJECT):
            raise refused("bad_action", f"初审不能执行“{action}”", f"Action {action!r} is not possible at the check")

    @workflow.update
    async def visit(self, actor: Actor, findings: str, household: dict) -> h.FileSnapshot:
        done = self.processed
        self.visit = (actor, findings, household)
        await workflow.wait_condition(lambda: self.processed > done or self.stage in h.ENDED)
        return self.snapshot()

    @visit.validator
    def _validate_visit(self, actor: Actor, findings: str, household: dict) -> None:
        self._check_role(actor, "clerk")
        self._check_stage(h.HOME_VISIT)
        if self.visit is not None or self.close_req is not None:
            raise refused("wrong_stage", "入户调查报告正在评定", "A home-visit report is being assessed")
        self._check_conflict(actor)
        if not findings.strip():
            raise refused("empty", "请填写入户调查情况", "Write down what the home visit found")

    @workflow.update
    async def vote(self, v: h.Vote) -> str:
        self.votes[v.actor.user_id] = h.VoteView(v.actor.user_id, v.actor.username, v.action, v.comment)
        await self._record(f"vote_{v.action}", v.actor.username, {"round": self.vote_round, "comment": v.comment})
        self.outcome = self.outcome or self._tally()  # votes may have arrived meanwhile
        return self.stage

    @vote.validator
    def _validate_vote(self, v: h.Vote) -> None:
        self._check_stage(h.COMMITTEE_VOTE, h.CHAIR_DECISION)
        if self.outcome is not None or self.close_req is not None:
            raise refused("wrong_stage", "本轮表决已有结果", "This round has already been decided")
        if v.action not in (h.APPROVE, h.REJECT):
            raise refused("bad_action", f"表决不能执行“{v.action}”", f"Action {v.action!r} is not a vote")
        actor = v.actor
        self._check_conflict(actor)
        if actor.user_id == self.inp.opened_by.user_id:
            raise refused("own_file", "经办建档的人不能参与表决（回避）", "Whoever opened the file may not vote on it")
        if self.stage == h.CHAIR_DECISION:
            self._check_role(actor, "chair")
        else:
            self._check_role(actor, "committee")
            if actor.user_id not in self.voters:
                raise refused("not_assignee", "您不在本轮表决名单中", "You are not among this round's voters")
        if actor.user_id in self.votes:
            raise refused("already_voted", "您已投过票", "You have already voted")

    @workflow.update
    async def object(self, actor: Actor, text: str) -> str:
        self.objection = (actor, text)
        return self.stage

    @object.validator
    def _validate_object(self, actor: Actor, text: str) -> None:
        if self.stage != h.PUBLIC_NOTICE or not self.notice_open or self.objection is not None:
            raise refused("not_in_notice", "档案不在公示期", "The file is not in its public notice period")
        if not text.strip():
            raise refused("empty", "请写明异议内容", "Say what the objection is")

    @workflow.update
    async def submit_review(self, actor: Actor, household: dict, note: str | None) -> h.FileSnapshot:
        done = self.processed
        self.review = (actor, household, note)
        await workflow.wait_condition(lambda: self.processed > done or self.stage in h.ENDED)
        return self.snapshot()

    @submit_review.validator
    def _validate_review(self, actor: Actor, household: dict, note: str | None) -> None:
        self._check_role(actor, "clerk")
        self._check_stage(h.ACTIVE, h.REVIEW_DUE, h.LAPSED)
        if self.review is not None or self.close_req is not None or self._renewed_this_run():
            raise refused("wrong_stage", "复核正在进行", "A review is already under way")
        self._check_conflict(actor)

    def _renewed_this_run(self) -> bool:
        return any(item.action == "renewed" for item in self.story)

    @workflow.update
    async def close(self, actor: Actor, reason: str, note: str | None) -> str:
        self.close_req = (actor, reason, note)
        await workflow.wait_condition(lambda: self.stage == h.CLOSED)
        return self.stage

    @close.validator
    def _validate_close(self, actor: Actor, reason: str, note: str | None) -> None:
        if self.stage in h.ENDED or self.close_req is not None:
            raise refused("already_ended", "档案已经结束", "The file has already ended")
        if reason not in h.CLOSE_REASONS:
            raise refused("bad_reason", "请选择注销原因：脱困、退休、调离、去世",
                          f"reason must be one of {', '.join(h.CLOSE_REASONS)}")
        self._check_role(actor, "clerk", "chair")
        self._check_conflict(actor)

    @workflow.query
    def snapshot(self) -> h.FileSnapshot:
        inp = self.inp
        tier = self.periods[-1].tier if self.periods else (self.assessment.tier if self.assessment else None)
        return h.FileSnapshot(inp.file_id if inp else "", inp.member_id if inp else 0, self.stage, tier, self.run_no,
                              list(self.periods), self.assessment, list(self.voters), list(self.votes.values()),
                              self.notice_until, list(self.story), list(self.summary))

    # --- plumbing --------------------------------------------------------------------------

    def _today(self) -> date:
        return workflow.now().astimezone(CHINA).date()

    def _until(self, start: date) -> date:
        months = self.ctx.review_months if self.ctx else 12
        return add_months(start, months) - timedelta(days=1)

    async def _wait(self, condition, timeout: timedelta | None = None) -> None:
        """Wait for ``condition``; a close request interrupts any wait."""
        await workflow.wait_condition(lambda: condition() or self.close_req is not None, timeout=timeout)
        if self.close_req is not None:
            raise _Closed()

    async def _finish(self) -> str:
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.stage

    def _summary(self) -> list[h.StoryItem]:
        """The decisive steps so far, without the household figures (those stay in each run's history)."""
        keep = ("tier", "outcome", "action", "period", "active_from", "active_until", "until", "round", "previous_run_id")
        lines = [h.StoryItem(i.at, i.action, i.actor, {k: v for k, v in i.detail.items() if k in keep})
                 for i in self.story if i.action in DECISIVE]
        return self.summary + lines

    @staticmethod
    def _assessment_json(a: h.Assessment) -> dict:
        return {"outcome": a.outcome, "tier": a.tier, "reasons": a.reasons, "fired": a.fired, "policy_version": a.policy_version,
                "policy_hash": a.policy_hash, "household": a.household}

    def _pending_row(self, stage: str, status: str = h.ROW_PENDING, tier: str | None = None, assessment: dict | None = None,
                     closed_reason: str | None = None) -> h.FileRowWrite:
        inp = self.inp
        return h.FileRowWrite(inp.file_id, inp.member_id, 1, tier=tier, status=status, stage=stage,
                              active_from=inp.opened_on, active_until=inp.opened_on, assessment=assessment,
                              closed_reason=closed_reason)

    def _period_row(self, period: h.Period, status: str, stage: str) -> h.FileRowWrite:
        return h.FileRowWrite(self.inp.file_id, self.inp.member_id, period.number, period.tier, status, stage, period.active_from,
                              period.active_until, self._assessment_json(self.assessment) if self.assessment else {})

    def _stage_row(self, period: h.Period, stage: str) -> h.FileRowWrite:
        return h.FileRowWrite(self.inp.file_id, self.inp.member_id, period.number, tier=None, status=None, stage=stage,
                              active_from=None, active_until=None, assessment=None)

    async def _record(self, action: str, actor: str | None, detail: dict | None = None, *, stage: str | None = None,
                      rows: list[h.FileRowWrite] | None = None) -> None:
        if stage is not None:
            self.stage = stage
        item = h.StoryItem(workflow.now().isoformat(), action, actor, detail or {})
        self.story.append(item)
        self.seq += 1
        record = h.FileRecord(self.inp.file_id, f"{self.inp.file_id}:{self.run_no}:{self.seq}", item, rows or [])
        await workflow.execute_local_activity("hardship_record", record, **LOCAL)
