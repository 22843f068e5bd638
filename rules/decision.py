"""The result of an evaluation and its explanation."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from rules.model import Form, Route, Tier


class Outcome(StrEnum):
    eligible = "eligible"
    ineligible = "ineligible"
    refer = "refer"  # no rule decided: a person decides, never an automatic approval


class Effect(StrEnum):
    eligible = "eligible"
    ineligible = "ineligible"
    info = "info"


class Reason(BaseModel):
    model_config = ConfigDict(frozen=True)

    rule_id: str | None  # None: the engine's own note that no rule decided
    zh: str
    en: str


class Decision(BaseModel):
    model_config = ConfigDict(frozen=True)

    outcome: Outcome
    benefit: str
    requested_fen: int
    approved_fen: int
    cap_fen: int | None  # the cap that applied: per claim, or what was left of a yearly cap
    form: Form | None  # None for a tier assessment
    fund: str | None
    route: Route
    tier: Tier | None = None
    fired: list[str]  # every rule that fired, in priority order
    reasons: list[Reason]
    policy_version: str
    policy_hash: str
    legal_ref: str
    engine: str
