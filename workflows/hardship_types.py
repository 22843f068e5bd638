"""Types of the hardship file (困难职工档案) workflow: plain data, no I/O.

A file's workflow id is ``HF-<member id>-<n>``: the member's register id and a counter, no personal data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workflows.types import Actor

# Where a file is (the HardshipFile row's ``stage``).
CLERK_CHECK = "clerk_check"  # 初审
HOME_VISIT = "home_visit"  # 入户调查
COMMITTEE_VOTE = "committee_vote"  # 集体研究
CHAIR_DECISION = "chair_decision"  # too few committee members for a quorum: the chair decides
PUBLIC_NOTICE = "public_notice"  # 公示
ACTIVE = "active"
REVIEW_DUE = "review_due"  # 年度复核 reminder sent
LAPSED = "lapsed"  # the year ended with no review: no longer in force
RENEWED = "renewed"  # an earlier period, followed by the next one
CLOSED = "closed"
REJECTED = "rejected"
ENDED = (CLOSED, REJECTED)

# The HardshipFile row's ``status``: only an ``active`` row, on its dates, supports assistance (依档帮扶).
ROW_PENDING, ROW_ACTIVE, ROW_CLOSED, ROW_REJECTED = "pending", "active", "closed", "rejected"

APPROVE, REJECT = "approve", "reject"
CLOSE_REASONS = {
    "left_hardship": ("家庭已脱困", "The household has left hardship"),
    "retired": ("本人退休", "The member retired"),
    "moved": ("调离本单位", "The member moved away"),
    "died": ("本人去世", "The member died"),
}
STAGE_ROLE = {CLERK_CHECK: "clerk", HOME_VISIT: "clerk", COMMITTEE_VOTE: "committee", CHAIR_DECISION: "chair"}


@dataclass
class Period:
    """One year of a file in force."""

    number: int
    tier: str
    active_from: str  # ISO date
    active_until: str  # ISO date, inclusive
    decided_on: str  # ISO date of the assessment that granted it
    policy_version: str = ""


@dataclass
class StoryItem:
    """One step of the file's story, as an auditor reads it."""

    at: str  # ISO datetime (workflow time)
    action: str
    actor: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Carried:
    """What a renewed run takes over from the run before it (continue-as-new)."""

    run_no: int  # 1 for the run that opened the file
    previous_run_id: str
    periods: list[Period]  # every period granted so far, the newest last
    summary: list[StoryItem]  # one line per earlier step that decided something


@dataclass
class FileInput:
    file_id: str
    org_id: int
    member_id: int
    opened_by: Actor
    opened_on: str  # ISO date (China)
    household: dict[str, Any]  # rules.facts.Household, JSON form, as the applicant declared it
    causes: str  # 致困原因, in the applicant's words
    carried: Carried | None = None


@dataclass
class FileContext:
    """What the database and the policy say about a file, gathered at each assessment."""

    member_active: bool
    committee_user_ids: list[int]
    conflicted_member_ids: list[int]  # the member and registered relatives who are members
    committee_mode: str
    quorum: int
    notice_working_days: int
    review_months: int
    remind_before_days: int
    remind_after_days: int  # a human stage waiting this long sends a reminder
    policy_version: str


@dataclass
class Assessment:
    """The rules' tier assessment of one household (rules.evaluate on a ``hardship_assessment``)."""

    outcome: str  # eligible / ineligible / refer / invalid (the data could not be assessed)
    tier: str | None
    reasons: list[dict[str, Any]]  # {"rule_id", "zh", "en"}
    fired: list[str]
    policy_version: str
    policy_hash: str
    household: dict[str, Any]


@dataclass
class FileRowWrite:
    """Fields of the HardshipFile row of one period (keyed by file id and period); None leaves a field as it is."""

    file_id: str
    member_id: int
    period: int
    tier: str | None = None
    status: str | None = None
    stage: str | None = None
    active_from: str | None = None
    active_until: str | None = None
    assessment: dict[str, Any] | None = None
    closed_reason: str | None = None


@dataclass
class FileRecord:
    """One story step: its audit-log entry (keyed by file id, run and sequence) and the rows it changes."""

    file_id: str
    key: str
    item: StoryItem
    rows: list[FileRowWrite] = field(default_factory=list)


@dataclass
class FileNotice:
    key: str
    file_id: str
    kind: str
    zh: str
    en: str
    recipient_role: str | None = None


@dataclass
class Vote:
    actor: Actor
    action: str  # approve / reject
    comment: str | None = None


@dataclass
class VoteView:
    user_id: int
    username: str
    action: str
    comment: str | None


@dataclass
class FileSnapshot:
    file_id: str
    member_id: int
    stage: str
    tier: str | None
    run_no: int
    periods: list[Period]
    assessment: Assessment | None
    voters: list[int]
    votes: list[VoteView]
    notice_until: str | None
    story: list[StoryItem]  # this run's steps
    earlier: list[StoryItem] = field(default_factory=list)  # the decisive steps of earlier runs, oldest first
