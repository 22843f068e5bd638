"""A readable timeline of one application, in Chinese and English: who did what and when, which
rules fired, the amounts, the policy version, and the actions that were refused."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import Session

from rules.explain import yuan
from rules.loader import default_registry
from service.audit.history import RecordedApplication
from service.models import AuditEvent

ACTION_TEXT = {
    "approve": ("同意", "approved"),
    "reject": ("不同意", "rejected"),
    "return": ("退回补充材料", "returned it for more information"),
    "flag": ("审计存疑", "flagged it in audit"),
}
MONEY_TEXT = {"reserve": ("预留经费", "reserved"), "disburse": ("发放", "paid"), "release": ("释放预留", "released")}
READ_ONLY_UPDATES = {"await_assessment"}  # the API waiting for the rules: nobody did anything
# Audit-log actions that history alone does not show (refusals are never in Temporal's history).
FROM_AUDIT_LOG = {
    "refused": ("操作被拒绝", "action refused"),
    "reminder": ("发送催办提醒", "reminder sent"),
    "escalation": ("逾期升级至主席", "escalated to the chair"),
    "public_notice_started": ("开始公示", "public notice started"),
    "public_notice_passed": ("公示期满无异议", "public notice passed without objection"),
    "awaiting_funds": ("经费不足，等待追加预算", "waiting for funds"),
    "evidence_uploaded": ("上传证明材料", "evidence file uploaded"),
}


@dataclass
class Entry:
    at: dt.datetime
    actor: str | None
    action: str
    zh: str
    en: str
    detail: dict[str, Any] = field(default_factory=dict)
    source: str = "history"  # history / audit_log


def _from_history(rec: RecordedApplication) -> list[Entry]:
    entries: list[Entry] = []
    inp = rec.input
    if rec.started_at:
        details = inp.get("details", {})
        who = inp.get("filed_by", {}).get("username")
        name_zh, name_en = _benefit_names(inp)
        entries.append(Entry(rec.started_at, who, "filed",
                             f"{who} 提交“{name_zh}”申请，申请金额 {yuan(details.get('requested_fen', 0))} 元，事件日期 {inp.get('event_date')}",
                             f"{who} filed a {name_en} application for {yuan(details.get('requested_fen', 0))} yuan, event on {inp.get('event_date')}",
                             {"requested_fen": details.get("requested_fen"), "benefit": inp.get("benefit")}))
    for evaluation in rec.evaluations:
        d = evaluation.decision
        if d is None:
            continue
        reasons_zh = "；".join(r["zh"] for r in d.get("reasons", []))
        reasons_en = "; ".join(r["en"] for r in d.get("reasons", []))
        entries.append(Entry(evaluation.at, "rules", "rules_evaluated",
                             f"规则判定：{d['outcome']}，核定 {yuan(d['approved_fen'])} 元（政策 {d['policy_version']}）。触发规则：{', '.join(d['fired']) or '无'}。{reasons_zh}",
                             f"Rules: {d['outcome']}, {yuan(d['approved_fen'])} yuan granted (policy {d['policy_version']}). "
                             f"Rules fired: {', '.join(d['fired']) or 'none'}. {reasons_en}",
                             {"fired": d["fired"], "approved_fen": d["approved_fen"], "cap_fen": d.get("cap_fen"),
                              "policy_version": d["policy_version"], "policy_hash": d["policy_hash"], "facts": evaluation.facts}))
    for action in rec.actions:
        if action.update in READ_ONLY_UPDATES:
            continue
        entries.append(_action_entry(action))
    for move in rec.money:
        if not move.happened:
            entries.append(Entry(move.at, None, "reserve_failed", "经费预留未成功", "Funds could not be reserved", {"result": move.result}))
            continue
        zh, en = MONEY_TEXT[move.kind]
        amount = move.request["amount_fen"]
        entries.append(Entry(move.at, None, move.kind, f"{zh} {yuan(amount)} 元（{move.request['fund_code']}）",
                             f"{en} {yuan(amount)} yuan ({move.request['fund_code']})", {"amount_fen": amount}))
    if rec.closed_at:
        status = rec.result or ("terminated" if rec.terminated else "closed")
        entries.append(Entry(rec.closed_at, None, "finished", f"流程结束：{status}", f"Process finished: {status}", {"status": status}))
    return entries


def _benefit_names(inp: dict[str, Any]) -> tuple[str, str]:
    code = inp.get("benefit", "")
    try:
        loaded = default_registry().for_date(dt.date.fromisoformat(inp.get("event_date", "")))
    except ValueError:
        loaded = None
    benefit = loaded.policy.benefit(code) if loaded else None
    return (benefit.name_zh, benefit.name_en) if benefit else (code, code)


def _action_entry(action) -> Entry:
    arg = action.args[0] if action.args else {}
    if action.update == "act":
        zh, en = ACTION_TEXT.get(arg.get("action"), (arg.get("action"), arg.get("action")))
        comment = arg.get("comment")
        amount = arg.get("amount_fen")
        extra_zh = (f"，核定 {yuan(amount)} 元" if amount is not None else "") + (f"，意见：{comment}" if comment else "")
        extra_en = (f", amount {yuan(amount)} yuan" if amount is not None else "") + (f", comment: {comment}" if comment else "")
        return Entry(action.at, action.actor, f"task_{arg.get('action')}", f"{action.actor} {zh}{extra_zh}（任务 {arg.get('task_id')}）",
                     f"{action.actor} {en}{extra_en} (task {arg.get('task_id')})", {"task_id": arg.get("task_id"), "comment": comment})
    texts = {"withdraw": ("撤回申请", "withdrew the application"), "resubmit": ("补充后重新提交", "amended and resubmitted"),
             "revoke": ("撤销批准", "revoked the approval"), "object": ("提出公示异议", "objected during the public notice")}
    zh, en = texts.get(action.update, (action.update, action.update))
    detail = {"args": action.args[1:]} if len(action.args) > 1 else {}
    return Entry(action.at, action.actor, action.update, f"{action.actor} {zh}", f"{action.actor} {en}", detail)


def _from_audit_log(engine: Engine, application_id: str) -> list[Entry]:
    with Session(engine) as session:
        events = session.execute(select(AuditEvent).where(AuditEvent.application_id == application_id)
                                 .order_by(AuditEvent.id)).scalars().all()
    entries = []
    for event in events:
        if event.action not in FROM_AUDIT_LOG:
            continue
        zh, en = FROM_AUDIT_LOG[event.action]
        if event.action == "refused":
            zh = f"{event.actor} 的“{event.detail.get('attempted')}”操作被拒绝：{event.detail.get('reason_zh')}"
            en = f"{event.actor}'s attempt to {event.detail.get('attempted')} was refused: {event.detail.get('reason_en')}"
        at = event.at if event.at.tzinfo else event.at.replace(tzinfo=dt.UTC)
        entries.append(Entry(at, event.actor, event.action, zh, en, dict(event.detail), "audit_log"))
    return entries


def build(engine: Engine, rec: RecordedApplication) -> list[Entry]:
    return sorted(_from_history(rec) + _from_audit_log(engine, rec.workflow_id), key=lambda e: e.at)
