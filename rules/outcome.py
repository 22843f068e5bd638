"""From the rules that fired to a decision: the one fold both evaluators share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rules.decision import Decision, Effect, Outcome, Reason
from rules.explain import NO_RULE_DECIDED, explain
from rules.loader import LoadedPolicy
from rules.model import HARDSHIP_ASSESSMENT, Tier


@dataclass(frozen=True)
class Hit:
    rule_id: str
    effect: Effect
    cap_fen: int | None = None
    period_cap_fen: int | None = None
    tier: Tier | None = None


_REASONS: dict[tuple, Reason] = {}


def _reason(loaded: LoadedPolicy, hit: Hit, facts: dict[str, Any]) -> Reason:
    """Reasons depend on the policy, the rule and (for yearly caps) the amount already used: cache them."""
    used = facts.get("period_used_fen", 0) if hit.period_cap_fen is not None else None
    key = (loaded.hash, hit.rule_id, hit.cap_fen, hit.period_cap_fen, used)
    found = _REASONS.get(key)
    if found is None:
        if len(_REASONS) > 50_000:
            _REASONS.clear()
        found = _REASONS[key] = explain(loaded.policy, hit.rule_id, facts, hit.cap_fen, hit.period_cap_fen)
    return found


def decide(loaded: LoadedPolicy, facts: dict[str, Any], hits: list[Hit], engine: str) -> Decision:
    """Any ineligible rule refuses; else an eligible rule grants; else a person decides."""
    policy = loaded.policy
    granting = [h for h in hits if h.effect == Effect.eligible]
    if len(granting) > 1:
        raise ValueError(f"more than one granting rule fired: {[h.rule_id for h in granting]}")
    if any(h.effect == Effect.ineligible for h in hits):
        outcome = Outcome.ineligible
    elif granting:
        outcome = Outcome.eligible
    else:
        outcome = Outcome.refer

    requested = facts["requested_fen"]
    approved, cap_applied, tier = 0, None, None
    if outcome == Outcome.eligible:
        grant = granting[0]
        tier = grant.tier
        if grant.cap_fen is not None:
            cap_applied = grant.cap_fen
            if grant.period_cap_fen is not None:
                cap_applied = min(cap_applied, grant.period_cap_fen - facts["period_used_fen"])
            approved = min(requested, cap_applied)

    reasons = [_reason(loaded, h, facts) for h in hits]
    if outcome == Outcome.refer:
        reasons.append(NO_RULE_DECIDED)

    if facts["benefit"] == HARDSHIP_ASSESSMENT:
        route, form, fund, legal_ref = policy.hardship.file_route, None, None, policy.hardship.legal_ref
    else:
        benefit = policy.benefit(facts["benefit"])
        route, form, fund, legal_ref = benefit.route, benefit.form, benefit.fund, benefit.legal_ref
    return Decision(
        outcome=outcome,
        benefit=facts["benefit"],
        requested_fen=requested,
        approved_fen=approved,
        cap_fen=cap_applied,
        form=form,
        fund=fund,
        route=route,
        tier=tier,
        fired=[h.rule_id for h in hits],
        reasons=reasons,
        policy_version=loaded.version,
        policy_hash=loaded.hash,
        legal_ref=legal_ref,
        engine=engine,
    )
