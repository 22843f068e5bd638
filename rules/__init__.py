"""Welfare policy as dated data, compiled to durable-rules; every decision explained."""

from rules.decision import Decision, Outcome, Reason
from rules.durable_engine import RulesEngineError
from rules.evaluate import evaluate
from rules.facts import ApplicationFacts, FactsError, Household
from rules.loader import LoadedPolicy, PolicyError, PolicyRegistry, default_registry

__all__ = [
    "ApplicationFacts",
    "Decision",
    "FactsError",
    "Household",
    "LoadedPolicy",
    "Outcome",
    "PolicyError",
    "PolicyRegistry",
    "Reason",
    "RulesEngineError",
    "default_registry",
    "evaluate",
]
