"""Types shared by the warmth campaign and scheduled gift workflows, their activities and the service.

Plain data and pure functions only (no I/O): workflows import this module.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")  # e.g. "spring-festival"

# Campaign states (the progress query's ``state``).
PLANNING = "planning"
REFUSED = "refused"
RUNNING = "running"
COMPLETED = "completed"


def campaign_id(org_id: int, year: int, name: str) -> str:
    """The workflow id: launching the same campaign twice finds the first."""
    return f"CAMPAIGN-{org_id}-{year}-{name}"


def household_workflow_id(campaign: str, member_id: int) -> str:
    return f"{campaign}-m{member_id}"


def payment_ref(campaign: str, year: int, member_id: int) -> str:
    """The ledger's ``application_id`` of one household's payment: short (40 characters at most) and
    derived from the campaign id, so a retried or restarted payment finds its own ledger rows."""
    digest = hashlib.sha256(campaign.encode()).hexdigest()[:10]
    return f"W{year}-{digest}-m{member_id}"


PAYMENT_REF = re.compile(r"^W\d{4}-[0-9a-f]{10}-m(\d+)$")


def member_of_payment_ref(ref: str | None) -> int | None:
    """The member a household payment went to, or None when ``ref`` is not a campaign payment's."""
    match = PAYMENT_REF.fullmatch(ref or "")
    return int(match.group(1)) if match else None


def claim_key(campaign: str, member_id: int) -> str:
    """One claim slot per household and campaign: a second payment is refused by the database."""
    return f"warmth:{campaign}:m{member_id}"


def claim_prefix(campaign: str) -> str:
    return f"warmth:{campaign}:m"


def period_key(year: int, member_id: int, tier: str) -> str:
    """Stored with the claim slot; it records the tier the amount was computed from (for the 签领表)."""
    return f"warmth:m{member_id}:y{year}:t{tier}"


@dataclass
class Household:
    member_id: int
    tier: str
    amount_fen: int


@dataclass
class CampaignPlan:
    """The active hardship files on the campaign's date and what they cost, as recorded in history."""

    households: list[Household]
    total_fen: int  # every household's amount
    to_pay_fen: int  # less what earlier runs of this campaign already reserved or paid
    available_fen: int  # budget - reserved - spent of the fund, when planned
    fund_code: str
    fund_year: int
    form: str
    policy_version: str
    refusal: dict | None = None  # {"code", "zh", "en"}: nothing is started


@dataclass
class FailedHousehold:
    member_id: int
    reason: str
    zh: str = ""
    en: str = ""


@dataclass
class CampaignInput:
    campaign_id: str
    org_id: int
    year: int
    name: str
    as_of: str  # ISO date: the files active on this day
    launched_by: str
    fund_code: str | None = None  # None: the policy's hardship.warmth_fund
    title: str | None = None  # e.g. 2025 年春节送温暖
    concurrency: int = 50  # children in flight at most
    per_run: int = 500  # children per workflow run, then continue-as-new (keeps each history small)
    # Carried over continue-as-new:
    plan: CampaignPlan | None = None
    next_index: int = 0
    done: int = 0
    paid_fen: int = 0
    failed: list[FailedHousehold] = field(default_factory=list)
    runs: int = 1


@dataclass
class Progress:
    campaign_id: str
    state: str
    total: int
    done: int
    pending: int
    failed: int
    total_fen: int
    paid_fen: int
    fund_code: str | None
    available_fen: int | None
    runs: int
    refusal: dict | None = None
    failures: list[FailedHousehold] = field(default_factory=list)


@dataclass
class PaymentInput:
    campaign_id: str
    ref: str
    org_id: int
    member_id: int
    tier: str
    amount_fen: int
    fund_code: str
    fund_year: int
    form: str
    actor: str


@dataclass
class PaymentResult:
    member_id: int
    paid: bool
    reason: str | None = None
    zh: str | None = None
    en: str | None = None


# --- scheduled gifts ----------------------------------------------------------------------------

@dataclass
class GiftsInput:
    """Process every day from ``start`` (default: ``catchup_days`` before ``end``) to ``end`` (default:
    today in China). Re-processing a day creates nothing twice."""

    start: str | None = None
    end: str | None = None
    catchup_days: int = 31
    org_id: int | None = None  # None: every organisation


@dataclass
class GiftsRange:
    start: str
    end: str
    org_id: int | None = None


@dataclass
class GiftsResult:
    start: str
    end: str
    created: int
    existing: int
    started: int
    application_ids: list[str] = field(default_factory=list)  # the ones created by this call
