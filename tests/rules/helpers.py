"""Building facts for rules tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

from rules.loader import default_registry

EVENT = dt.date(2024, 3, 1)


def required_evidence(benefit: str) -> list[str]:
    b = default_registry().for_date(EVENT).policy.benefit(benefit)
    return list(b.evidence) if b else []


def facts(benefit: str, **overrides: Any) -> dict[str, Any]:
    """A complete, eligible-looking application for ``benefit``; override what the test is about."""
    base: dict[str, Any] = {
        "benefit": benefit,
        "event_date": EVENT.isoformat(),
        "filed_on": (EVENT + dt.timedelta(days=3)).isoformat(),
        "requested_fen": 0,
        "member_active": True,
        "prior_claims": 0,
        "evidence": required_evidence(benefit),
    }
    return base | overrides
