"""From the rules that fired to a decision: the one fold both evaluators share."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rules.decision import Decision, Effect, Outcome, Reason
from rules.explain import NO_RULE_DECIDED, explain
from rules.loader import LoadedPolicy
from rules.model import HARDSHIP_ASSESSMENT, Tier


@dataclass(frozen=True, slots=True)
class Hit:
    rule_id: str
    effect: Effect
    cap_fen: int | None = None
    period_cap_fen: int | None = None
    tier: Tier | None = None


class _Fold:
    """What a set of fired rules decides, the same for every application that fires exactly those rules:
    all of the decision but the amounts (and, under a yearly cap, the reasons that name the amount used)."""

    __slots__ = ("hits", "outcome", "grant", "fields")

    def __init__(self, loaded: LoadedPolicy, benefit: str, hits: list[Hit], engine: str) -> None:
        granting = [h for h in hits if h.effect == Effect.eligible]
        if len(granting) > 1:
            raise ValueError(f"more than one granting rule fired: {[h.rule_id for h in granting]}")
        if any(h.effect == Effect.ineligible for h in hits):
            self.outcome = Outcome.ineligible
        elif granting:
            self.outcome = Outcome.eligible
        else:
            self.outcome = Outcome.refer
        self.hits = hits
        self.grant = granting[0] if self.outcome == Outcome.eligible else None
        policy = loaded.policy
        if benefit == HARDSHIP_ASSESSMENT:
            route, form, fund, legal_ref = policy.hardship.file_route, None, None, policy.hardship.legal_ref
        else:
            b = policy.benefit(benefit)
            route, form, fund, legal_ref = b.route, b.form, b.fund, b.legal_ref
        uses_period = any(h.period_cap_fen is not None for h in hits)
        self.fields = {
            "outcome": self.outcome,
            "benefit": benefit,
            "requested_fen": 0,
            "approved_fen": 0,
            "cap_fen": None,
            "form": form,
            "fund": fund,
            "route": route,
            "tier": None,
            "fired": [h.rule_id for h in hits],
            "reasons": None if uses_period else self.reasons_for(loaded, {}),
            "policy_version": loaded.version,
            "policy_hash": loaded.hash,
            "legal_ref": legal_ref,
            "engine": engine,
        }
        if self.fields.keys() != _DECISION_FIELDS:  # model_dump would silently leave a missing field out
            raise RuntimeError(f"decision fields out of date: {sorted(self.fields.keys() ^ _DECISION_FIELDS)}")

    def reasons_for(self, loaded: LoadedPolicy, facts: dict[str, Any]) -> list[Reason]:
        reasons = [explain(loaded.policy, h.rule_id, facts, h.cap_fen, h.period_cap_fen) for h in self.hits]
        if self.outcome == Outcome.refer:
            reasons.append(NO_RULE_DECIDED)
        return reasons


_DECISION_FIELDS = frozenset(Decision.model_fields)
_MAX_CACHED = 50_000
_FOLDS: dict[tuple, _Fold] = {}
_REASONS: dict[tuple, list[Reason]] = {}


def decide(loaded: LoadedPolicy, facts: dict[str, Any], hits: list[Hit], engine: str) -> Decision:
    """Any ineligible rule refuses; else an eligible rule grants; else a person decides."""
    key = (loaded.hash, engine, facts["benefit"], *hits)
    return _decide(loaded, facts, key, _FOLDS.get(key) or _fold(key, loaded, facts["benefit"], hits, engine))


def decide_fired(loaded: LoadedPolicy, facts: dict[str, Any], fired: list[str], hits: Mapping[str, Hit], engine: str) -> Decision:
    """``decide`` for the ids of the rules that fired, in priority order, and what each rule of the
    ruleset contributes (``CompiledPolicy.hits``: one ``Hit`` per rule id, fixed)."""
    key = (loaded.hash, engine, facts["benefit"], *fired)
    fold = _FOLDS.get(key) or _fold(key, loaded, facts["benefit"], [hits[rule_id] for rule_id in fired], engine)
    return _decide(loaded, facts, key, fold)


def _fold(key: tuple, loaded: LoadedPolicy, benefit: str, hits: list[Hit], engine: str) -> _Fold:
    if len(_FOLDS) > _MAX_CACHED:
        _FOLDS.clear()
    fold = _FOLDS[key] = _Fold(loaded, benefit, list(hits), engine)
    return fold


_new = object.__new__
_set = object.__setattr__


def _decide(loaded: LoadedPolicy, facts: dict[str, Any], key: tuple, fold: _Fold) -> Decision:
    fields = fold.fields.copy()
    fields["fired"] = fields["fired"].copy()
    reasons = fields["reasons"]
    if reasons is None:
        key = (*key, facts.get("period_used_fen", 0))
        reasons = _REASONS.get(key)
        if reasons is None:
            if len(_REASONS) > _MAX_CACHED:
                _REASONS.clear()
            reasons = _REASONS[key] = fold.reasons_for(loaded, facts)
    fields["reasons"] = reasons.copy()

    requested = fields["requested_fen"] = facts["requested_fen"]
    grant = fold.grant
    if grant is not None:
        fields["tier"] = grant.tier
        if grant.cap_fen is not None:
            cap = grant.cap_fen
            if grant.period_cap_fen is not None:
                cap = min(cap, grant.period_cap_fen - facts["period_used_fen"])
            fields["cap_fen"] = cap
            fields["approved_fen"] = min(requested, cap)

    # Decision.model_construct without its slow per-field loop, and without validating again what is
    # already typed: values from the validated policy, or integers computed from validated facts.
    decision = _new(Decision)
    _set(decision, "__dict__", fields)
    _set(decision, "__pydantic_fields_set__", set(_DECISION_FIELDS))
    _set(decision, "__pydantic_extra__", None)
    _set(decision, "__pydantic_private__", None)
    return decision
