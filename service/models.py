"""The database: member register, users and roles, funds and the money ledger, and projections.

Temporal history is the truth about each application's process; these application and task rows
are a projection of it for fast inbox queries. Money moves only through ``LedgerEntry`` rows, with
constraints that keep every fund at or above zero whatever the callers do.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Role(StrEnum):
    member = "member"
    clerk = "clerk"  # 经办人
    chair = "chair"  # 主席
    committee = "committee"  # 委员
    auditor = "auditor"  # 经审
    admin = "admin"


class MemberStatus(StrEnum):
    active = "active"
    retired = "retired"
    left = "left"


class AppStatus(StrEnum):
    submitted = "submitted"
    pending_approval = "pending_approval"
    returned = "returned"
    awaiting_funds = "awaiting_funds"
    approved = "approved"
    disbursed = "disbursed"
    receipt_confirmed = "receipt_confirmed"
    closed = "closed"
    rejected = "rejected"
    withdrawn = "withdrawn"


class TaskStatus(StrEnum):
    open = "open"
    done = "done"
    cancelled = "cancelled"


class LedgerKind(StrEnum):
    budget = "budget"
    reserve = "reserve"
    release = "release"
    disburse = "disburse"


class Organisation(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, max_length=32)
    name_zh: str = Field(max_length=120)
    name_en: str = Field(max_length=160)
    parent_id: int | None = Field(default=None, foreign_key="organisation.id")


class Member(SQLModel, table=True):
    """会员台帐: one row per member."""

    id: int | None = Field(default=None, primary_key=True)
    member_no: str = Field(unique=True, max_length=32)
    org_id: int = Field(foreign_key="organisation.id", index=True)
    name: str = Field(max_length=64)
    id_card_digest: str = Field(index=True, max_length=64, description="keyed hash, for matching only")
    id_card_masked: str = Field(max_length=24)
    birth_date: dt.date
    join_date: dt.date
    status: MemberStatus = Field(default=MemberStatus.active)
    retired_on: dt.date | None = None


class Relative(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    name: str = Field(max_length=64)
    relation: str = Field(max_length=16)  # rules.model.Relation
    birth_date: dt.date | None = None
    # When the relative is a member too (and so perhaps an approver): the conflict of interest.
    relative_member_id: int | None = Field(default=None, foreign_key="member.id", index=True)


class User(SQLModel, table=True):
    __tablename__ = "app_user"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(unique=True, max_length=64)
    display_name: str = Field(max_length=64)
    password_hash: str = Field(max_length=255)
    member_id: int | None = Field(default=None, foreign_key="member.id", index=True)
    failed_logins: int = 0
    locked_until: dt.datetime | None = None


class RoleGrant(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("user_id", "org_id", "role"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    org_id: int = Field(foreign_key="organisation.id", index=True)
    role: Role


class ApiToken(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    token_digest: str = Field(unique=True, max_length=64)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    expires_at: dt.datetime
    revoked: bool = False


class HardshipFile(SQLModel, table=True):
    """困难职工档案: a member's household file; assistance is paid only against an active one.

    One row per year (period) of a file: a renewal adds a row, so an assistance application is judged by
    the tier in force on its event date. Rows written by the hardship-file workflow carry its workflow id
    (``file_id``, ``HF-<member id>-<n>``); until a file is first granted, its period-1 row is ``pending``
    (tier empty, both dates the day it was opened) and ``stage`` says where the file stands.
    """

    __table_args__ = (Index("ux_hardshipfile_file_period", "file_id", "period", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    tier: str = Field(max_length=16)  # rules.model.Tier ("" while pending)
    status: str = Field(default="active", max_length=16)  # pending / active / closed / rejected
    active_from: dt.date
    active_until: dt.date
    assessment: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    file_id: str | None = Field(default=None, max_length=40, index=True)  # the workflow id; None: entered by hand
    period: int = Field(default=1, sa_column_kwargs={"server_default": "1"})  # 1 for the first year, 2 after a renewal…
    stage: str = Field(default="active", max_length=24, sa_column_kwargs={"server_default": "active"})  # workflows.hardship_types
    closed_reason: str | None = Field(default=None, max_length=24)  # left_hardship / retired / moved / died


class Fund(SQLModel, table=True):
    """One earmarked fund (专款专用) of one organisation for one year."""

    __table_args__ = (
        UniqueConstraint("org_id", "year", "code"),
        CheckConstraint("budget_fen >= 0", name="fund_budget_nonneg"),
        CheckConstraint("reserved_fen >= 0", name="fund_reserved_nonneg"),
        CheckConstraint("spent_fen >= 0", name="fund_spent_nonneg"),
        CheckConstraint("reserved_fen + spent_fen <= budget_fen", name="fund_never_overdrawn"),
    )

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="organisation.id", index=True)
    year: int
    code: str = Field(max_length=48)
    name_zh: str = Field(max_length=120)
    name_en: str = Field(max_length=160)
    budget_fen: int = Field(default=0, sa_column_kwargs={}, sa_type=BigInteger)
    reserved_fen: int = Field(default=0, sa_type=BigInteger)
    spent_fen: int = Field(default=0, sa_type=BigInteger)


class LedgerEntry(SQLModel, table=True):
    """Every movement of money, once: the idempotency key makes a retried step a no-op."""

    __table_args__ = (CheckConstraint("amount_fen >= 0", name="ledger_amount_nonneg"),)

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(unique=True, max_length=160)
    fund_id: int = Field(foreign_key="fund.id", index=True)
    application_id: str | None = Field(default=None, index=True, max_length=40)
    kind: LedgerKind
    amount_fen: int = Field(sa_type=BigInteger)
    form: str | None = Field(default=None, max_length=16)  # cash / goods, for disbursements
    actor: str | None = Field(default=None, max_length=64)
    created_at: dt.datetime = Field(default_factory=utcnow)


class ClaimSlot(SQLModel, table=True):
    """One row per granted claim in a frequency scope: "once per event" enforced by the database."""

    __table_args__ = (UniqueConstraint("claim_key", "slot"),)

    id: int | None = Field(default=None, primary_key=True)
    claim_key: str = Field(max_length=200, index=True)
    slot: int
    application_id: str = Field(unique=True, max_length=40)
    amount_fen: int = Field(default=0, sa_type=BigInteger)
    period_key: str = Field(max_length=120, index=True, description="member/household + benefit + year")


class Application(SQLModel, table=True):
    """Projection of one application workflow (the workflow id is this id)."""

    __table_args__ = (
        UniqueConstraint("filed_by_user_id", "idempotency_key"),
        Index("ix_application_org_created", "org_id", "created_at"),
        Index("ix_application_member_created", "member_id", "created_at"),
    )

    id: str = Field(primary_key=True, max_length=40)
    org_id: int = Field(foreign_key="organisation.id")
    member_id: int = Field(foreign_key="member.id")
    benefit: str = Field(max_length=48, index=True)
    event_date: dt.date
    event_key: str | None = Field(default=None, max_length=120)
    claim_key: str = Field(max_length=200)
    requested_fen: int = Field(sa_type=BigInteger)
    approved_fen: int = Field(default=0, sa_type=BigInteger)
    status: AppStatus = Field(default=AppStatus.submitted, index=True)
    stage: str | None = Field(default=None, max_length=32)
    outcome: str | None = Field(default=None, max_length=16)
    decision: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    policy_version: str | None = Field(default=None, max_length=64)
    policy_hash: str | None = Field(default=None, max_length=64)
    filed_by_user_id: int = Field(foreign_key="app_user.id")
    idempotency_key: str | None = Field(default=None, max_length=128)
    created_at: dt.datetime = Field(default_factory=utcnow, index=True)
    updated_at: dt.datetime = Field(default_factory=utcnow)
    projection_seq: int = 0  # the workflow's sequence number of the newest state written here
    history: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))


class ApprovalTask(SQLModel, table=True):
    __table_args__ = (Index("ix_task_inbox", "status", "org_id", "role", "created_at"),)

    id: str = Field(primary_key=True, max_length=80)
    application_id: str = Field(foreign_key="application.id", index=True)
    org_id: int = Field(foreign_key="organisation.id")
    stage: str = Field(max_length=32)
    role: Role
    assignee_user_id: int | None = Field(default=None, foreign_key="app_user.id", index=True)
    status: TaskStatus = Field(default=TaskStatus.open)
    outcome: str | None = Field(default=None, max_length=16)
    comment: str | None = Field(default=None, max_length=2000)
    decided_by_user_id: int | None = Field(default=None, foreign_key="app_user.id")
    due_at: dt.datetime | None = None
    reminded: bool = False
    escalated: bool = False
    created_at: dt.datetime = Field(default_factory=utcnow)
    decided_at: dt.datetime | None = None


class AuditEvent(SQLModel, table=True):
    """Append-only log; each row carries the hash of the one before (tamper evidence)."""

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(unique=True, max_length=160)
    application_id: str | None = Field(default=None, index=True, max_length=40)
    at: dt.datetime = Field(default_factory=utcnow)
    actor: str | None = Field(default=None, max_length=64)
    action: str = Field(max_length=48)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    prev_hash: str = Field(unique=True, max_length=64)  # a chain cannot fork, even under concurrent appends
    hash: str = Field(unique=True, max_length=64)


class Notification(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("idempotency_key"),)

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=160)
    application_id: str | None = Field(default=None, index=True, max_length=40)
    recipient_role: str | None = Field(default=None, max_length=16)
    recipient_user_id: int | None = Field(default=None, foreign_key="app_user.id")
    kind: str = Field(max_length=32)
    text_zh: str = Field(max_length=500)
    text_en: str = Field(max_length=500)
    created_at: dt.datetime = Field(default_factory=utcnow)


class EvidenceFile(SQLModel, table=True):
    """An uploaded evidence file (证明材料): the bytes live under ``Settings.evidence_dir`` as ``stored_name``."""

    id: str = Field(primary_key=True, max_length=32)  # random, and not the stored name
    application_id: str = Field(foreign_key="application.id", index=True, max_length=40)
    kind: str = Field(max_length=48)  # a policy's evidence code
    stored_name: str = Field(unique=True, max_length=40)  # generated: uuid4 hex + the detected type's extension
    content_type: str = Field(max_length=32)  # detected from the leading bytes
    size_bytes: int
    sha256: str = Field(max_length=64)
    original_name: str = Field(max_length=120)  # sanitised, for display only
    uploaded_by_user_id: int = Field(foreign_key="app_user.id")
    uploaded_at: dt.datetime = Field(default_factory=utcnow)
