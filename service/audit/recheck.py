"""Re-check every recorded decision with the policy version recorded with it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rules.evaluate import evaluate_prepared, parse_facts
from rules.facts import FactsError, check_against_policy, prepare
from rules.loader import PolicyRegistry
from service.audit.history import RecordedApplication

COMPARED = ("outcome", "approved_fen", "cap_fen", "fired", "tier")


@dataclass
class Difference:
    workflow_id: str
    event_id: int
    field: str
    recorded: Any
    now: Any


@dataclass
class RecheckReport:
    decisions: int
    differences: list[Difference]

    @property
    def ok(self) -> bool:
        return not self.differences


def recheck_one(rec: RecordedApplication, registry: PolicyRegistry) -> tuple[int, list[Difference]]:
    checked, differences = 0, []
    for evaluation in rec.evaluations:
        recorded = evaluation.decision
        if recorded is None:
            continue
        checked += 1
        loaded = registry.get(recorded["policy_version"], recorded["policy_hash"])
        if loaded is None:
            differences.append(Difference(rec.workflow_id, evaluation.event_id, "policy",
                                          f"{recorded['policy_version']}@{recorded['policy_hash'][:12]}", "not found"))
            continue
        try:
            facts = parse_facts(evaluation.facts)
            check_against_policy(loaded.policy, facts)
            again = evaluate_prepared(loaded, prepare(loaded.policy, facts)).model_dump(mode="json")
        except FactsError as exc:
            differences.append(Difference(rec.workflow_id, evaluation.event_id, exc.field, "valid facts", exc.reason_en))
            continue
        for name in COMPARED:
            if recorded.get(name) != again.get(name):
                differences.append(Difference(rec.workflow_id, evaluation.event_id, name, recorded.get(name), again.get(name)))
    return checked, differences


def recheck(records: list[RecordedApplication], registry: PolicyRegistry) -> RecheckReport:
    total, differences = 0, []
    for rec in records:
        checked, found = recheck_one(rec, registry)
        total += checked
        differences += found
    return RecheckReport(total, differences)
