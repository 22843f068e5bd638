"""Which earlier claims count against a new one: the claim key of a benefit's frequency scope."""

from __future__ import annotations

import datetime as dt
import re

from rules.model import Benefit, FrequencyScope


def school_year(day: dt.date) -> str:
    """A Chinese school year starts in September: 2024-09-01 .. 2025-08-31 is "2024-2025"."""
    start = day.year if day.month >= 9 else day.year - 1
    return f"{start}-{start + 1}"


def _normal(event_key: str | None, fallback: str) -> str:
    text = re.sub(r"\s+", " ", (event_key or "").strip().lower())
    return text or fallback


def claim_key(benefit: Benefit, member_id: int, event_date: dt.date, event_key: str | None, application_id: str) -> str:
    base = f"{benefit.code}:m{member_id}"
    match benefit.frequency.scope:
        case FrequencyScope.calendar_year | FrequencyScope.household_year:
            return f"{base}:y{event_date.year}"
        case FrequencyScope.event:
            return f"{base}:e:{_normal(event_key, event_date.isoformat())}"
        case FrequencyScope.member:
            return base
        case FrequencyScope.child:
            return f"{base}:c:{_normal(event_key, 'child')}"
        case FrequencyScope.child_school_year:
            return f"{base}:c:{_normal(event_key, 'child')}:{school_year(event_date)}"
        case FrequencyScope.case:
            return f"{base}:case:{application_id}"
    raise ValueError(benefit.frequency.scope)


def period_key(benefit: Benefit, member_id: int, event_date: dt.date) -> str:
    """What a yearly cap adds up: this member's grants of this benefit in the event's year."""
    return f"{benefit.code}:m{member_id}:y{event_date.year}"
