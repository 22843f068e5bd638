"""Compile a policy into durable-rules conditions (JSON form), one rule per check.

Conditions only compare a field with a constant, or a field with ``field × constant``: the C core
crashes on anything more nested. Eligibility is always written positively (every condition
required to grant is matched on a present field), so a missing fact can never grant anything.
An ``$or`` fires its rule once per matching branch, so it is used only where the branches exclude
each other (one field against several values).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rules.decision import Effect
from rules.facts import FACT_KIND, exclusion_field
from rules.outcome import Hit
from rules.model import (
    HARDSHIP_ASSESSMENT,
    Benefit,
    Form,
    FrequencyScope,
    OverCap,
    Policy,
    Relation,
    SchoolLevel,
    Tier,
)

Condition = dict[str, Any]
SENTINEL_ID = "engine.sentinel"


@dataclass(frozen=True)
class CompiledRule:
    rule_id: str
    effect: Effect
    condition: list[Condition]  # all must hold
    cap_fen: int | None = None
    period_cap_fen: int | None = None
    tier: Tier | None = None

    def as_hit(self) -> Hit:
        return Hit(self.rule_id, self.effect, self.cap_fen, self.period_cap_fen, self.tier)


@dataclass
class CompiledPolicy:
    rules: list[CompiledRule] = field(default_factory=list)  # in priority order
    hits: dict[str, Hit] = field(default_factory=dict)  # what each rule contributes to a decision

    def add(self, rule: CompiledRule) -> None:
        if rule.rule_id in self.hits:
            raise ValueError(f"duplicate rule id {rule.rule_id}")
        self.rules.append(rule)
        self.hits[rule.rule_id] = rule.as_hit()


# --- condition builders (durable-rules JSON) ---------------------------------------------------

def eq(name: str, value: Any) -> Condition:
    return {name: value}


def cmp(op: str, name: str, value: int) -> Condition:
    return {f"${op}": {name: value}}


def cmp_scaled(op: str, name: str, other: str, factor: int) -> Condition:
    """``name <op> other × factor``, only when both fields are present.

    Unguarded, durable-rules evaluates arithmetic on an absent field to something that satisfies
    both ``<`` and ``>=``: a missing household size would match every income tier at once.
    """
    scaled = {f"${op}": {name: {"$mul": {"$l": {"$m": other}, "$r": factor}}}}
    return {"$and": [{"$ex": {name: 1}}, {"$ex": {other: 1}}, scaled]}


def one_of(name: str, values: list[str]) -> Condition:
    return {"$or": [{name: v} for v in values]}


def durable_condition(conditions: list[Condition]) -> dict[str, Any]:
    return {"all": [{"m": {"$and": conditions} if len(conditions) > 1 else conditions[0]}]}


# --- the rules -------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Variant:
    """One way a benefit is capped: flat, per hardship tier, per school level (with or without a file)."""

    qualifier: str
    conditions: list[Condition]
    cap_fen: int
    period_cap_fen: int | None
    tier: Tier | None = None


_ACTIVE_TIERS = [t.value for t in Tier]


def _variants(benefit: Benefit) -> list[_Variant]:
    if benefit.tier_caps_fen is not None:
        # Tier caps are yearly per household: the cap per claim and the yearly cap are one figure.
        return [
            _Variant(f".{t.value}", [eq("file_tier", t.value)], cap, cap, t)
            for t, cap in sorted(benefit.tier_caps_fen.items(), key=lambda kv: list(Tier).index(kv[0]))
        ]
    if benefit.level_caps_fen is not None:
        out = []
        for level in SchoolLevel:
            if level in benefit.level_caps_fen:
                conds = [eq("school_level", level.value), one_of("file_tier", _ACTIVE_TIERS)]
                out.append(_Variant(f".{level.value}", conds, benefit.level_caps_fen[level], None))
            if benefit.level_caps_without_file_fen and level in benefit.level_caps_without_file_fen:
                conds = [eq("school_level", level.value), eq("file_tier", "none")]
                cap = benefit.level_caps_without_file_fen[level]
                out.append(_Variant(f".{level.value}.without_file", conds, cap, None))
        return out
    assert benefit.cap_fen is not None
    return [_Variant("", [], benefit.cap_fen, benefit.period_cap_fen)]


def _per_claim_cap_binds(v: _Variant) -> bool:
    return v.period_cap_fen is None or v.cap_fen < v.period_cap_fen


def _benefit_rules(policy: Policy, b: Benefit, out: CompiledPolicy) -> None:
    this = eq("benefit", b.code)
    grant: list[Condition] = [this, eq("member_active", True)]
    ineligible = Effect.ineligible

    if b.max_event_age_days is not None:
        out.add(CompiledRule(f"{b.code}.event_too_old", ineligible, [this, cmp("gt", "event_age_days", b.max_event_age_days)]))
        grant.append(cmp("lte", "event_age_days", b.max_event_age_days))
    if b.evidence:
        out.add(CompiledRule(f"{b.code}.evidence_missing", ineligible, [this, cmp("gt", "evidence_missing", 0)]))
        grant.append(eq("evidence_missing", 0))
    if b.frequency.scope != FrequencyScope.case:
        limit = b.frequency.max_claims
        out.add(CompiledRule(f"{b.code}.already_claimed", ineligible, [this, cmp("gte", "prior_claims", limit)]))
        grant.append(cmp("lt", "prior_claims", limit))
    if b.eligible_relations is not None:
        covered = [r.value for r in b.eligible_relations]
        others = [r.value for r in Relation if r.value not in covered]
        if others:
            out.add(CompiledRule(f"{b.code}.relation_not_covered", ineligible, [this, one_of("relation", others)]))
        grant.append(one_of("relation", covered))
    if b.requires_active_file:
        out.add(CompiledRule(f"{b.code}.no_active_file", ineligible, [this, eq("file_tier", "none")]))

    for v in _variants(b):
        scope = [this, *v.conditions]
        rid = lambda check: f"{b.code}.{check}{v.qualifier}"  # noqa: E731
        caps = {"cap_fen": v.cap_fen, "period_cap_fen": v.period_cap_fen, "tier": v.tier}
        variant_grant = [*grant, *v.conditions]
        if v.period_cap_fen is not None:
            out.add(CompiledRule(rid("period_cap_reached"), ineligible, [*scope, cmp("gte", "period_used_fen", v.period_cap_fen)], **caps))
            variant_grant.append(cmp("lt", "period_used_fen", v.period_cap_fen))
        if b.over_cap == OverCap.refuse:
            if _per_claim_cap_binds(v):
                out.add(CompiledRule(rid("over_cap"), ineligible, [*scope, cmp("gt", "requested_fen", v.cap_fen)], **caps))
                variant_grant.append(cmp("lte", "requested_fen", v.cap_fen))
            if v.period_cap_fen is not None:
                out.add(CompiledRule(rid("over_period_cap"), ineligible, [*scope, cmp("gt", "period_total_fen", v.period_cap_fen)], **caps))
                variant_grant.append(cmp("lte", "period_total_fen", v.period_cap_fen))
        out.add(CompiledRule(rid("eligible"), Effect.eligible, variant_grant, **caps))
        if b.over_cap == OverCap.reduce and b.form != Form.visit:
            if _per_claim_cap_binds(v):
                out.add(CompiledRule(rid("capped"), Effect.info, [*scope, cmp("gt", "requested_fen", v.cap_fen)], **caps))
            if v.period_cap_fen is not None:
                limited = [*scope, cmp("gt", "period_total_fen", v.period_cap_fen), cmp("lt", "period_used_fen", v.period_cap_fen)]
                out.add(CompiledRule(rid("period_limited"), Effect.info, limited, **caps))

    if b.form == Form.goods:
        out.add(CompiledRule(f"{b.code}.goods_only", Effect.info, [this]))
    elif b.form == Form.visit:
        out.add(CompiledRule(f"{b.code}.visit_only", Effect.info, [this]))


def _hardship_rules(policy: Policy, out: CompiledPolicy) -> None:
    h = policy.hardship
    this = eq("benefit", HARDSHIP_ASSESSMENT)
    deep_line = h.dibao_annual_fen * h.deep_multiplier
    relative_line = h.dibao_annual_fen * h.relative_multiplier
    not_excluded = []
    for exclusion in h.exclusions:
        name = exclusion_field(exclusion.code)
        out.add(CompiledRule(f"hardship.excluded.{exclusion.code}", Effect.ineligible, [this, eq(name, True)]))
        not_excluded.append(eq(name, False))
    base = [this, *not_excluded]
    below_deep = cmp_scaled("lt", "net_income_fen", "household_size", deep_line)
    at_least_deep = cmp_scaled("gte", "net_income_fen", "household_size", deep_line)
    below_relative = cmp_scaled("lt", "net_income_fen", "household_size", relative_line)
    at_least_relative = cmp_scaled("gte", "net_income_fen", "household_size", relative_line)
    costs_above_ratio = cmp_scaled("gt", "costs_x100", "income_fen", h.accident_cost_ratio_pct)
    costs_within_ratio = cmp_scaled("lte", "costs_x100", "income_fen", h.accident_cost_ratio_pct)
    out.add(CompiledRule("hardship.tier.deep", Effect.eligible, [*base, below_deep], tier=Tier.deep))
    out.add(CompiledRule("hardship.tier.relative", Effect.eligible, [*base, at_least_deep, below_relative], tier=Tier.relative))
    accident = [*base, at_least_relative, eq("sudden_event", True), costs_above_ratio]
    out.add(CompiledRule("hardship.tier.accident", Effect.eligible, accident, tier=Tier.accident))
    out.add(CompiledRule("hardship.not_in_hardship", Effect.ineligible, [*base, at_least_relative, eq("sudden_event", False)]))
    within = [*base, at_least_relative, eq("sudden_event", True), costs_within_ratio]
    out.add(CompiledRule("hardship.not_in_hardship.costs_within_ratio", Effect.ineligible, within))


def compile_policy(policy: Policy) -> CompiledPolicy:
    out = CompiledPolicy()
    out.add(CompiledRule("member.inactive", Effect.ineligible, [eq("member_active", False)]))
    for benefit in policy.benefits:
        _benefit_rules(policy, benefit, out)
    _hardship_rules(policy, out)
    # Matches every well-formed fact, last: "nothing matched" must never reach durable-rules,
    # whose delete_state crashes the process after an unhandled assert.
    out.add(CompiledRule(SENTINEL_ID, Effect.info, [eq("fact_kind", FACT_KIND)]))
    return out


def to_durable_ruleset(compiled: CompiledPolicy, action_for) -> dict[str, Any]:
    """The ruleset definition for ``Host.set_rulesets``; ``action_for(rule_id)`` gives each action."""
    return {
        rule.rule_id: {**durable_condition(rule.condition), "pri": priority, "run": action_for(rule.rule_id)}
        for priority, rule in enumerate(compiled.rules, start=1)
    }
