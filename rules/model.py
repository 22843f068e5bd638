"""The policy file format: every number a union may change is data here, never code.

A policy version is immutable; it is identified by its ``version`` id plus the hash of its
canonical content (see ``loader.policy_hash``).
"""

from __future__ import annotations

import datetime as dt
from functools import cached_property
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Fen = Annotated[int, Field(ge=0, le=10**10, description="money in fen (分), an integer")]
Code = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=48)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Category(StrEnum):
    visit = "visit"
    congratulation = "congratulation"
    hardship = "hardship"
    education = "education"
    holiday = "holiday"


class Form(StrEnum):
    cash = "cash"  # 慰问金
    goods = "goods"  # 慰问品
    visit = "visit"  # 走访, no money


class Relation(StrEnum):
    spouse = "spouse"
    parent = "parent"
    child = "child"
    sibling = "sibling"
    grandparent = "grandparent"
    grandchild = "grandchild"
    other = "other"


class Tier(StrEnum):
    deep = "deep"  # 深度困难
    relative = "relative"  # 相对困难
    accident = "accident"  # 意外致困


class SchoolLevel(StrEnum):
    university = "university"
    high_school = "high_school"


class FrequencyScope(StrEnum):
    calendar_year = "calendar_year"  # once per calendar year of the event (birthday)
    event = "event"  # once per event key (a hospital stay, a deceased relative, a marriage)
    member = "member"  # once per member (retirement)
    child = "child"  # once per child
    child_school_year = "child_school_year"  # once per child per school year
    household_year = "household_year"  # yearly per household, within a yearly cap
    case = "case"  # every case stands alone (visits)


class OverCap(StrEnum):
    reduce = "reduce"  # pay up to the cap and say so
    refuse = "refuse"  # an amount above the cap is refused


class RouteKind(StrEnum):
    auto = "auto"  # no human task (scheduled gifts; the chair signs off the batch)
    officer = "officer"  # a clerk records the visit
    chair = "chair"  # officer check, then the chair signs
    committee = "committee"  # every committee member votes


class CommitteeMode(StrEnum):
    all = "all"  # 会签: everyone must agree
    any = "any"  # 或签: one approval suffices
    majority = "majority"


class Route(_Strict):
    kind: RouteKind
    officer_check: bool = False
    committee_mode: CommitteeMode | None = None
    quorum: int | None = Field(default=None, ge=1, le=99)
    public_notice_working_days: int = Field(default=0, ge=0, le=30)

    @model_validator(mode="after")
    def _committee_fields(self) -> Route:
        is_committee = self.kind == RouteKind.committee
        if is_committee and (self.committee_mode is None or self.quorum is None):
            raise ValueError("a committee route needs committee_mode and quorum")
        if not is_committee and (self.committee_mode is not None or self.quorum is not None):
            raise ValueError("committee_mode and quorum belong to committee routes only")
        return self


class Frequency(_Strict):
    scope: FrequencyScope
    max_claims: int = Field(default=1, ge=1, le=1000)


class Evidence(_Strict):
    code: Code
    name_zh: str
    name_en: str


class Fund(_Strict):
    code: Code
    name_zh: str
    name_en: str


class Benefit(_Strict):
    code: Code
    name_zh: str
    name_en: str
    category: Category
    form: Form
    legal_ref: str = Field(min_length=1)
    fund: Code
    route: Route
    frequency: Frequency
    evidence: list[Code] = []
    max_event_age_days: int | None = Field(default=None, ge=1, le=3660)
    # Exactly one way of capping: a flat cap, a cap per hardship tier, or a cap per school level.
    cap_fen: Fen | None = None
    tier_caps_fen: dict[Tier, Fen] | None = None
    level_caps_fen: dict[SchoolLevel, Fen] | None = None
    # Lower amounts for members without an active hardship file; absent = file required.
    level_caps_without_file_fen: dict[SchoolLevel, Fen] | None = None
    over_cap: OverCap = OverCap.reduce
    requires_active_file: bool = False
    period_cap_fen: Fen | None = Field(default=None, description="total per calendar year")
    eligible_relations: list[Relation] | None = None
    note: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Benefit:
        caps = [self.cap_fen is not None, self.tier_caps_fen is not None, self.level_caps_fen is not None]
        if sum(caps) != 1:
            raise ValueError("give exactly one of cap_fen, tier_caps_fen, level_caps_fen")
        if self.form == Form.visit and self.cap_fen != 0:
            raise ValueError("a visit-only benefit carries no money: cap_fen must be 0")
        if self.tier_caps_fen is not None:
            if not self.requires_active_file:
                raise ValueError("tier_caps_fen needs requires_active_file: true")
            if set(self.tier_caps_fen) != set(Tier):
                raise ValueError(f"tier_caps_fen must name every tier: {[t.value for t in Tier]}")
        if self.level_caps_without_file_fen is not None:
            if self.level_caps_fen is None:
                raise ValueError("level_caps_without_file_fen goes with level_caps_fen")
            if self.requires_active_file:
                raise ValueError("level_caps_without_file_fen contradicts requires_active_file")
            if not set(self.level_caps_without_file_fen) <= set(self.level_caps_fen):
                raise ValueError("level_caps_without_file_fen names a level that level_caps_fen lacks")
        if self.level_caps_fen is not None and self.level_caps_without_file_fen is None and not self.requires_active_file:
            raise ValueError("level caps without lower amounts need requires_active_file: true")
        if self.frequency.scope == FrequencyScope.case and self.frequency.max_claims != 1:
            raise ValueError("scope 'case' has no claim limit; leave max_claims at 1")
        if self.eligible_relations is not None and not self.eligible_relations:
            raise ValueError("eligible_relations, when given, may not be empty")
        return self


# Each is a yes/no field of the household data (rules.facts.Household); a policy picks which apply.
KNOWN_EXCLUSIONS = ("multiple_homes", "business_or_employer", "private_school_or_abroad", "private_car")


class Exclusion(_Strict):
    code: Literal[KNOWN_EXCLUSIONS]  # type: ignore[valid-type]
    name_zh: str
    name_en: str


class TierInfo(_Strict):
    name_zh: str
    name_en: str
    # 送温暖 (e.g. Spring Festival) amount per household of this tier; the union sets it.
    warmth_fen: Fen


class BirthdayTiming(StrEnum):
    on_birthday = "on_birthday"  # the gift is made on the member's birthday (29 Feb: 28 Feb in other years)
    first_working_day_of_month = "first_working_day_of_month"  # one batch for the month's birthdays


class ScheduledGifts(_Strict):
    """Gifts the service files by itself from the member register (no application by anyone)."""

    birthday_benefit: Code | None = Field(description="benefit filed on each active member's birthday; none = off")
    birthday_timing: BirthdayTiming
    retirement_benefit: Code | None = Field(description="benefit filed on the register's retirement date; none = off")


class Hardship(_Strict):
    """困难职工 classification (national tiers; the amounts are each union's)."""

    legal_ref: str = Field(min_length=1)
    dibao_monthly_fen: Fen = Field(description="local 低保 line per person per month")
    deep_multiplier: int = Field(default=1, ge=1, le=10)
    relative_multiplier: int = Field(default=2, ge=1, le=10)
    accident_cost_ratio_pct: int = Field(default=80, ge=1, le=100)
    exclusions: list[Exclusion]
    tiers: dict[Tier, TierInfo]
    file_route: Route
    review_months: int = Field(default=12, ge=1, le=60)
    warmth_fund: Code = Field(description="the fund 送温暖 campaigns pay from")
    warmth_form: Form = Field(description="cash (慰问金) or goods (慰问品)")
    note: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Hardship:
        if self.relative_multiplier <= self.deep_multiplier:
            raise ValueError("relative_multiplier must exceed deep_multiplier")
        if self.warmth_form == Form.visit:
            raise ValueError("warmth_form is cash or goods: a campaign pays something")
        if set(self.tiers) != set(Tier):
            raise ValueError(f"tiers must name every tier: {[t.value for t in Tier]}")
        return self

    @property
    def dibao_annual_fen(self) -> int:
        return self.dibao_monthly_fen * 12


class Approval(_Strict):
    remind_after_days: int = Field(default=3, ge=1, le=90)
    escalate_after_days: int = Field(default=7, ge=1, le=180)
    awaiting_funds_max_days: int = Field(default=30, ge=1, le=365)

    @model_validator(mode="after")
    def _order(self) -> Approval:
        if self.escalate_after_days <= self.remind_after_days:
            raise ValueError("escalate_after_days must come after remind_after_days")
        return self


class Policy(_Strict):
    version: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=64)]
    title_zh: str
    title_en: str
    effective_from: dt.date
    effective_to: dt.date | None = Field(default=None, description="last day in force, inclusive")
    source: str = Field(min_length=1, description="where the numbers come from")
    funds: list[Fund]
    evidence: list[Evidence]
    approval: Approval = Approval()
    benefits: list[Benefit]
    hardship: Hardship
    scheduled_gifts: ScheduledGifts

    @model_validator(mode="after")
    def _references(self) -> Policy:
        if self.effective_to is not None and self.effective_to < self.effective_from:
            raise ValueError("effective_to comes before effective_from")
        for name, items in (("funds", self.funds), ("evidence", self.evidence), ("benefits", self.benefits)):
            codes = [item.code for item in items]
            duplicated = sorted({c for c in codes if codes.count(c) > 1})
            if duplicated:
                raise ValueError(f"{name}: duplicated code(s) {duplicated}")
        fund_codes = {f.code for f in self.funds}
        evidence_codes = {e.code for e in self.evidence}
        for benefit in self.benefits:
            if benefit.fund not in fund_codes:
                raise ValueError(f"benefit {benefit.code}: unknown fund {benefit.fund!r}")
            unknown = [e for e in benefit.evidence if e not in evidence_codes]
            if unknown:
                raise ValueError(f"benefit {benefit.code}: unknown evidence {unknown}")
        if self.hardship.warmth_fund not in fund_codes:
            raise ValueError(f"hardship.warmth_fund: unknown fund {self.hardship.warmth_fund!r}")
        gifts = self.scheduled_gifts
        for name, code, scope in (("birthday_benefit", gifts.birthday_benefit, FrequencyScope.calendar_year),
                                  ("retirement_benefit", gifts.retirement_benefit, FrequencyScope.member)):
            if code is None:
                continue
            benefit = next((b for b in self.benefits if b.code == code), None)
            if benefit is None:
                raise ValueError(f"scheduled_gifts.{name}: unknown benefit {code!r}")
            if benefit.frequency.scope != scope or benefit.frequency.max_claims != 1:
                raise ValueError(f"scheduled_gifts.{name}: {code!r} must be limited to once per {scope.value}")
            if benefit.cap_fen is None:
                raise ValueError(f"scheduled_gifts.{name}: {code!r} needs a flat cap_fen (the amount filed)")
            if name == "birthday_benefit" and benefit.evidence:
                raise ValueError(f"scheduled_gifts.{name}: {code!r} may ask for no evidence (the register is the evidence)")
        if HARDSHIP_ASSESSMENT in {b.code for b in self.benefits}:
            raise ValueError(f"{HARDSHIP_ASSESSMENT!r} is reserved for the tier assessment")
        return self

    @cached_property
    def _benefits_by_code(self) -> dict[str, Benefit]:
        return {b.code: b for b in self.benefits}

    @cached_property
    def _evidence_by_code(self) -> dict[str, Evidence]:
        return {e.code: e for e in self.evidence}

    def benefit(self, code: str) -> Benefit | None:
        return self._benefits_by_code.get(code)

    def evidence_item(self, code: str) -> Evidence | None:
        return self._evidence_by_code.get(code)

    def in_force_on(self, day: dt.date) -> bool:
        return self.effective_from <= day and (self.effective_to is None or day <= self.effective_to)


HARDSHIP_ASSESSMENT = "hardship_assessment"
