"""The reference evaluator: the same policy, read by plain Python instead of durable-rules.

It shares nothing with the compiler but the policy model and the rule ids. A property test
holds the two to exact agreement. Like durable-rules, it treats an absent fact as matching no
condition at all, negative ones included.
"""

from __future__ import annotations

from typing import Any

from rules.decision import Decision, Effect
from rules.facts import exclusion_field
from rules.loader import LoadedPolicy
from rules.model import HARDSHIP_ASSESSMENT, Benefit, Form, FrequencyScope, OverCap, Policy, SchoolLevel, Tier
from rules.outcome import Hit, decide

ENGINE_NAME = "reference"


class _Facts:
    """Comparisons that are False whenever the fact is absent, as in durable-rules."""

    def __init__(self, flat: dict[str, Any]):
        self.flat = flat

    def has(self, *names: str) -> bool:
        return all(n in self.flat for n in names)

    def __getitem__(self, name: str) -> Any:
        return self.flat[name]

    def equals(self, name: str, value: Any) -> bool:
        return name in self.flat and self.flat[name] == value

    def is_in(self, name: str, values: list[str]) -> bool:
        return name in self.flat and self.flat[name] in values


def _applicable_caps(b: Benefit, f: _Facts) -> tuple[str, int, int | None, Tier | None] | None:
    """(qualifier, cap per claim, yearly cap, tier) for these facts, if any cap applies."""
    if b.tier_caps_fen is not None:
        for tier in Tier:
            if f.equals("file_tier", tier.value):
                cap = b.tier_caps_fen[tier]
                return f".{tier.value}", cap, cap, tier
        return None
    if b.level_caps_fen is not None:
        for level in SchoolLevel:
            if not f.equals("school_level", level.value):
                continue
            with_file = f.is_in("file_tier", [t.value for t in Tier])
            if with_file and level in b.level_caps_fen:
                return f".{level.value}", b.level_caps_fen[level], None, None
            without = b.level_caps_without_file_fen or {}
            if f.equals("file_tier", "none") and level in without:
                return f".{level.value}.without_file", without[level], None, None
        return None
    return "", b.cap_fen, b.period_cap_fen, None


def _benefit_hits(b: Benefit, f: _Facts) -> list[Hit]:
    hits: list[Hit] = []
    ok = f.equals("member_active", True)

    if b.max_event_age_days is not None:
        if f["event_age_days"] > b.max_event_age_days:
            hits.append(Hit(f"{b.code}.event_too_old", Effect.ineligible))
        ok = ok and f["event_age_days"] <= b.max_event_age_days
    if b.evidence:
        if f["evidence_missing"] > 0:
            hits.append(Hit(f"{b.code}.evidence_missing", Effect.ineligible))
        ok = ok and f["evidence_missing"] == 0
    if b.frequency.scope is not FrequencyScope.case:
        if f["prior_claims"] >= b.frequency.max_claims:
            hits.append(Hit(f"{b.code}.already_claimed", Effect.ineligible))
        ok = ok and f["prior_claims"] < b.frequency.max_claims
    if b.eligible_relations is not None:
        covered = [r.value for r in b.eligible_relations]
        if f.has("relation") and f["relation"] not in covered:
            hits.append(Hit(f"{b.code}.relation_not_covered", Effect.ineligible))
        ok = ok and f.is_in("relation", covered)
    if b.requires_active_file and f.equals("file_tier", "none"):
        hits.append(Hit(f"{b.code}.no_active_file", Effect.ineligible))

    caps = _applicable_caps(b, f)
    if caps is not None:
        qualifier, cap, yearly, tier = caps
        used, asked, total = f["period_used_fen"], f["requested_fen"], f["period_total_fen"]
        meta = {"cap_fen": cap, "period_cap_fen": yearly, "tier": tier}
        refuse = b.over_cap is OverCap.refuse
        claim_cap_binds = yearly is None or cap < yearly
        if yearly is not None and used >= yearly:
            hits.append(Hit(f"{b.code}.period_cap_reached{qualifier}", Effect.ineligible, **meta))
            ok = False
        if refuse and claim_cap_binds and asked > cap:
            hits.append(Hit(f"{b.code}.over_cap{qualifier}", Effect.ineligible, **meta))
            ok = False
        if refuse and yearly is not None and total > yearly:
            hits.append(Hit(f"{b.code}.over_period_cap{qualifier}", Effect.ineligible, **meta))
            ok = False
        if ok:
            hits.append(Hit(f"{b.code}.eligible{qualifier}", Effect.eligible, **meta))
        if not refuse and b.form is not Form.visit:
            if claim_cap_binds and asked > cap:
                hits.append(Hit(f"{b.code}.capped{qualifier}", Effect.info, **meta))
            if yearly is not None and total > yearly and used < yearly:
                hits.append(Hit(f"{b.code}.period_limited{qualifier}", Effect.info, **meta))

    if b.form is Form.goods:
        hits.append(Hit(f"{b.code}.goods_only", Effect.info))
    elif b.form is Form.visit:
        hits.append(Hit(f"{b.code}.visit_only", Effect.info))
    return hits


def _hardship_hits(policy: Policy, f: _Facts) -> list[Hit]:
    h = policy.hardship
    hits: list[Hit] = []
    fields = [exclusion_field(e.code) for e in h.exclusions]
    for exclusion, name in zip(h.exclusions, fields):
        if f.equals(name, True):
            hits.append(Hit(f"hardship.excluded.{exclusion.code}", Effect.ineligible))
    if not all(f.equals(name, False) for name in fields):
        return hits
    if not f.has("net_income_fen", "household_size"):
        return hits
    net, size = f["net_income_fen"], f["household_size"]
    if net < size * h.dibao_annual_fen * h.deep_multiplier:
        hits.append(Hit("hardship.tier.deep", Effect.eligible, tier=Tier.deep))
    elif net < size * h.dibao_annual_fen * h.relative_multiplier:
        hits.append(Hit("hardship.tier.relative", Effect.eligible, tier=Tier.relative))
    else:
        costs_known = f.has("costs_x100", "income_fen")
        limit = f["income_fen"] * h.accident_cost_ratio_pct if costs_known else None
        if f.equals("sudden_event", True) and costs_known and f["costs_x100"] > limit:
            hits.append(Hit("hardship.tier.accident", Effect.eligible, tier=Tier.accident))
        if f.equals("sudden_event", False):
            hits.append(Hit("hardship.not_in_hardship", Effect.ineligible))
        if f.equals("sudden_event", True) and costs_known and f["costs_x100"] <= limit:
            hits.append(Hit("hardship.not_in_hardship.costs_within_ratio", Effect.ineligible))
    return hits


def hits_for(policy: Policy, flat: dict[str, Any]) -> list[Hit]:
    f = _Facts(flat)
    hits: list[Hit] = []
    if f.equals("member_active", False):
        hits.append(Hit("member.inactive", Effect.ineligible))
    benefit = policy.benefit(flat["benefit"])
    if benefit is not None:
        hits += _benefit_hits(benefit, f)
    elif flat["benefit"] == HARDSHIP_ASSESSMENT:
        hits += _hardship_hits(policy, f)
    return hits


def evaluate_reference(loaded: LoadedPolicy, flat: dict[str, Any]) -> Decision:
    return decide(loaded, flat, hits_for(loaded.policy, flat), ENGINE_NAME)
