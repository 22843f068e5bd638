"""What an evaluation is given, and the flat facts both evaluators see.

Facts that need the database (earlier claims, the active hardship file, the relation) are prepared
by the caller, so the rules stay pure. ``prepare`` then derives every field a rule compares, so a
rule only ever compares a field with a constant or with ``field × constant``: durable-rules' C core
crashes on nested arithmetic, and silently fails to match fields that are absent.

A field the caller does not know is left out of the flat facts on purpose: no rule can then match
on it, and the case goes to a person (``refer``) instead of being decided on a guess.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from rules.model import HARDSHIP_ASSESSMENT, KNOWN_EXCLUSIONS, Policy, Relation, SchoolLevel, Tier

MAX_FEN = 10**10  # 100 million yuan: far above any benefit, far below float precision limits
FenIn = Annotated[StrictInt, Field(ge=0, le=MAX_FEN)]
FACT_KIND = "welfare_facts"


class Household(BaseModel):
    """A household's yearly finances, after insurance and other aid (入户调查 findings)."""

    model_config = ConfigDict(extra="forbid")

    size: Annotated[StrictInt, Field(ge=1, le=30)]
    annual_income_fen: FenIn
    unavoidable_costs_fen: FenIn = Field(description="illness, disability, schooling")
    sudden_event: StrictBool = Field(description="an accident, disaster or sudden illness")
    multiple_homes: StrictBool = False
    business_or_employer: StrictBool = False
    private_school_or_abroad: StrictBool = False
    private_car: StrictBool = False


class ApplicationFacts(BaseModel):
    model_config = ConfigDict(extra="forbid")

    benefit: Annotated[str, Field(min_length=1, max_length=48)]
    event_date: dt.date
    filed_on: dt.date
    requested_fen: FenIn = 0
    member_active: StrictBool
    prior_claims: Annotated[StrictInt, Field(ge=0, le=100_000)] = Field(
        default=0, description="claims already granted or pending in this benefit's frequency scope"
    )
    period_used_fen: FenIn = Field(default=0, description="already granted this calendar year (yearly caps)")
    evidence: list[Annotated[str, Field(max_length=48)]] = Field(default_factory=list, max_length=50)
    relation: Relation | None = None
    file_tier: Tier | None = Field(default=None, description="tier of the member's active hardship file; none = no file")
    school_level: SchoolLevel | None = None
    household: Household | None = None


class FactsError(ValueError):
    def __init__(self, field: str, reason_zh: str, reason_en: str):
        self.field, self.reason_zh, self.reason_en = field, reason_zh, reason_en
        super().__init__(f"{field}: {reason_en}")


def check_against_policy(policy: Policy, facts: ApplicationFacts) -> None:
    """Errors a person must fix before anything is evaluated (HTTP 422 at the API)."""
    if facts.benefit != HARDSHIP_ASSESSMENT and policy.benefit(facts.benefit) is None:
        known = ", ".join(b.code for b in policy.benefits)
        raise FactsError("benefit", f"未知的福利类型：{facts.benefit}", f"unknown benefit {facts.benefit!r}; known: {known}")
    if facts.event_date > facts.filed_on:
        raise FactsError("event_date", "事件日期不能晚于申请日期", "the event date may not be after the filing date")
    if facts.benefit == HARDSHIP_ASSESSMENT and facts.household is None:
        raise FactsError("household", "困难认定需要家庭收支情况", "a hardship assessment needs the household data")


def prepare(policy: Policy, facts: ApplicationFacts) -> dict[str, Any]:
    """The flat facts the rules match on: strings, booleans and integers only."""
    requested, used, tier = facts.requested_fen, facts.period_used_fen, facts.file_tier
    flat: dict[str, Any] = {
        "fact_kind": FACT_KIND,
        "benefit": facts.benefit,
        "requested_fen": requested,
        "member_active": facts.member_active,
        "prior_claims": facts.prior_claims,
        "period_used_fen": used,
        "period_total_fen": used + requested,
        "event_age_days": (facts.filed_on - facts.event_date).days,
        "file_tier": "none" if tier is None else tier.value,
    }
    benefit = policy.benefit(facts.benefit)
    if benefit is not None:
        missing = 0
        for code in benefit.evidence:
            if code not in facts.evidence:
                missing += 1
        flat["evidence_missing"] = missing
    if facts.relation is not None:
        flat["relation"] = facts.relation.value
    if facts.school_level is not None:
        flat["school_level"] = facts.school_level.value
    if facts.household is not None:
        h = facts.household
        flat |= {
            "household_size": h.size,
            "income_fen": h.annual_income_fen,
            "net_income_fen": h.annual_income_fen - h.unavoidable_costs_fen,
            "costs_x100": h.unavoidable_costs_fen * 100,
            "sudden_event": h.sudden_event,
        }
        flat |= {exclusion_field(code): getattr(h, code) for code in KNOWN_EXCLUSIONS}
    return flat


def exclusion_field(code: str) -> str:
    return f"excl_{code}"
