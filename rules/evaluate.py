"""``evaluate(facts) -> Decision``: pick the policy in force on the event date, fire the rules."""

from __future__ import annotations

import datetime as dt
from functools import cache, lru_cache
from typing import Any

from pydantic import ValidationError

from rules.decision import Decision
from rules.durable_engine import DurableRulesEngine
from rules.facts import ApplicationFacts, FactsError, check_against_policy, prepare
from rules.messages import field_path, reason_zh
from rules.loader import LoadedPolicy, PolicyRegistry, default_registry
from rules.outcome import decide_fired
from rules.reference import evaluate_reference

ENGINE_NAME = "durable-rules"


@cache
def shared_engine() -> DurableRulesEngine:
    """One host per process: rulesets can be registered only once."""
    return DurableRulesEngine()


_validate_facts = ApplicationFacts.__pydantic_validator__.validate_python


def parse_facts(raw: ApplicationFacts | dict[str, Any]) -> ApplicationFacts:
    if isinstance(raw, ApplicationFacts):
        return raw
    try:
        return _validate_facts(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise FactsError(field_path(first["loc"]), reason_zh(first), first["msg"]) from None


@lru_cache(maxsize=4096)
def _in_force(registry: PolicyRegistry, day: dt.date) -> LoadedPolicy | None:
    return registry.for_date(day)  # a registry never changes once built


def policy_for(facts: ApplicationFacts, registry: PolicyRegistry) -> LoadedPolicy:
    loaded = _in_force(registry, facts.event_date)
    if loaded is None:
        raise FactsError(
            "event_date",
            f"{facts.event_date} 没有生效的福利政策",
            f"no policy version is in force on {facts.event_date}",
        )
    check_against_policy(loaded.policy, facts)
    return loaded


def evaluate(
    raw: ApplicationFacts | dict[str, Any],
    registry: PolicyRegistry | None = None,
    *,
    reference: bool = False,
) -> Decision:
    """Decide one application with the policy in force on its event date.

    Raises ``FactsError`` for input a person must correct, ``RulesEngineError`` when the engine
    itself fails (never to be read as a decision).
    """
    facts = parse_facts(raw)
    loaded = policy_for(facts, registry or default_registry())
    return evaluate_prepared(loaded, prepare(loaded.policy, facts), reference=reference)


def evaluate_prepared(loaded: LoadedPolicy, flat: dict[str, Any], *, reference: bool = False) -> Decision:
    if reference:
        return evaluate_reference(loaded, flat)
    engine = shared_engine()
    return decide_fired(loaded, flat, engine.fire(loaded, flat), engine.compiled(loaded).hits, ENGINE_NAME)
