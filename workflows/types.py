"""Types shared by workflows, activities and the service: plain data, no I/O, no imports of ours."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TASK_QUEUE = "welfare"

# Application statuses (the projection's AppStatus mirrors these).
SUBMITTED = "submitted"
PENDING_APPROVAL = "pending_approval"
RETURNED = "returned"
AWAITING_FUNDS = "awaiting_funds"
APPROVED = "approved"
DISBURSED = "disbursed"
RECEIPT_CONFIRMED = "receipt_confirmed"
CLOSED = "closed"
REJECTED = "rejected"
WITHDRAWN = "withdrawn"
BEFORE_DISBURSEMENT = (SUBMITTED, PENDING_APPROVAL, RETURNED, AWAITING_FUNDS, APPROVED)

# Stages with a person's task.
OFFICER_CHECK = "officer_check"
CHAIR_APPROVAL = "chair_approval"
COMMITTEE_VOTE = "committee_vote"
PUBLIC_NOTICE = "public_notice"
RECEIPT = "receipt"
AUDIT_REVIEW = "audit_review"
BATCH_SIGN_OFF = "batch_sign_off"  # scheduled gifts on the auto route: the chair signs off the month's batch
STAGE_ROLE = {
    OFFICER_CHECK: "clerk",
    CHAIR_APPROVAL: "chair",
    COMMITTEE_VOTE: "committee",
    RECEIPT: "clerk",
    AUDIT_REVIEW: "auditor",
    BATCH_SIGN_OFF: "chair",
}

APPROVE, REJECT, RETURN = "approve", "reject", "return"
AUDIT_OK, AUDIT_FLAG = "approve", "flag"


@dataclass
class Actor:
    """Who acts, as the service authenticated them; ``roles`` are their roles in the application's org."""

    user_id: int
    username: str
    roles: list[str]
    member_id: int | None = None


@dataclass
class ApplicationDetails:
    """What the applicant says; amendments replace it whole."""

    requested_fen: int
    evidence: list[str] = field(default_factory=list)
    event_key: str | None = None
    relative_id: int | None = None
    school_level: str | None = None
    household: dict[str, Any] | None = None
    note: str | None = None


@dataclass
class ApplicationInput:
    application_id: str
    org_id: int
    member_id: int
    benefit: str
    event_date: str  # ISO date
    filed_on: str  # ISO date
    details: ApplicationDetails
    filed_by: Actor
    batch: str | None = None  # scheduled gifts: the batch (yyyy-mm) the chair signs off; last, so older histories decode


@dataclass
class Problem:
    field: str
    zh: str
    en: str


@dataclass
class Context:
    """What the database says about an application, gathered once per evaluation."""

    facts: dict[str, Any]  # rules.facts.ApplicationFacts, JSON form
    claim_key: str
    period_key: str
    fund_code: str
    fund_year: int
    max_fen: int  # the highest amount any rule of this benefit could grant
    max_claims: int  # claims allowed in one frequency scope (claim_key)
    chair_user_ids: list[int]
    committee_user_ids: list[int]
    conflicted_member_ids: list[int]  # the member and registered relatives who are members
    remind_after_days: int
    escalate_after_days: int
    awaiting_funds_max_days: int
    problems: list[Problem] = field(default_factory=list)


@dataclass
class TaskView:
    task_id: str
    stage: str
    role: str
    assignee_user_id: int | None = None
    status: str = "open"
    outcome: str | None = None
    comment: str | None = None
    decided_by_user_id: int | None = None
    due_at: str | None = None  # ISO datetime
    reminded: bool = False
    escalated: bool = False


@dataclass
class HistoryItem:
    at: str  # ISO datetime (workflow time)
    action: str
    actor: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Projection:
    """One state change of an application, for the database's read model and the audit log."""

    application_id: str
    seq: int  # makes the write idempotent
    status: str
    stage: str | None
    approved_fen: int
    event: HistoryItem
    decision: dict[str, Any] | None = None
    tasks: list[TaskView] = field(default_factory=list)


@dataclass
class Act:
    """An approver's action on a task."""

    actor: Actor
    task_id: str
    action: str  # approve / reject / return (audit: approve / flag)
    comment: str | None = None
    amount_fen: int | None = None  # only when the rules referred the case to a person


@dataclass
class ActResult:
    task_id: str
    accepted: bool
    status: str
    stage: str | None


@dataclass
class MoneyRequest:
    application_id: str
    org_id: int
    fund_code: str
    fund_year: int
    amount_fen: int
    claim_key: str
    period_key: str
    max_claims: int
    form: str | None = None
    actor: str | None = None


@dataclass
class ReserveResult:
    ok: bool
    reason: str | None = None  # "insufficient_funds", "claim_taken", "no_fund"
    zh: str | None = None
    en: str | None = None


@dataclass
class Notice:
    key: str
    application_id: str
    kind: str
    zh: str
    en: str
    recipient_role: str | None = None
    recipient_user_id: int | None = None


@dataclass
class Snapshot:
    """What a query of the workflow returns."""

    application_id: str
    status: str
    stage: str | None
    approved_fen: int
    decision: dict[str, Any] | None
    tasks: list[TaskView]
    history: list[HistoryItem]
