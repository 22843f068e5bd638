"""Policy what-if: a proposed policy over past applications' recorded facts, touching nothing.

It runs on the reference evaluator: durable-rules keeps every ruleset it is given for the life of
the process, and hypothetical policies must not pile up in the worker. The property test holds
both evaluators to the same answers.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from rules.evaluate import evaluate_prepared, parse_facts
from rules.facts import FactsError, check_against_policy, prepare
from rules.loader import LoadedPolicy
from service.audit.history import RecordedApplication


@dataclass
class BenefitImpact:
    benefit: str
    decisions: int = 0
    outcome_changed: int = 0
    amount_changed: int = 0
    recorded_fen: int = 0
    proposed_fen: int = 0
    changed: list[dict] = field(default_factory=list)

    @property
    def difference_fen(self) -> int:
        return self.proposed_fen - self.recorded_fen


@dataclass
class WhatIfReport:
    policy_version: str
    policy_hash: str
    benefits: dict[str, BenefitImpact]
    not_evaluable: list[dict]

    @property
    def difference_fen(self) -> int:
        return sum(b.difference_fen for b in self.benefits.values())


def what_if(records: list[RecordedApplication], proposed: LoadedPolicy) -> WhatIfReport:
    """The last decision of each application, against the proposed policy's verdict on the same facts."""
    impacts: dict[str, BenefitImpact] = defaultdict(lambda: BenefitImpact(""))
    not_evaluable = []
    for rec in records:
        evaluation = next((e for e in reversed(rec.evaluations) if e.decision is not None), None)
        if evaluation is None:
            continue
        recorded = evaluation.decision
        try:
            facts = parse_facts(evaluation.facts)
            check_against_policy(proposed.policy, facts)
            again = evaluate_prepared(proposed, prepare(proposed.policy, facts), reference=True)
        except FactsError as exc:
            not_evaluable.append({"application_id": rec.workflow_id, "field": exc.field, "reason_zh": exc.reason_zh,
                                  "reason_en": exc.reason_en})
            continue
        impact = impacts[recorded["benefit"]]
        impact.benefit = recorded["benefit"]
        impact.decisions += 1
        impact.recorded_fen += recorded["approved_fen"]
        impact.proposed_fen += again.approved_fen
        outcome_changed = again.outcome.value != recorded["outcome"]
        amount_changed = again.approved_fen != recorded["approved_fen"]
        impact.outcome_changed += outcome_changed
        impact.amount_changed += amount_changed
        if outcome_changed or amount_changed:
            impact.changed.append({"application_id": rec.workflow_id, "recorded_outcome": recorded["outcome"],
                                   "proposed_outcome": again.outcome.value, "recorded_fen": recorded["approved_fen"],
                                   "proposed_fen": again.approved_fen, "fired": again.fired})
    return WhatIfReport(proposed.version, proposed.hash, dict(impacts), not_evaluable)
