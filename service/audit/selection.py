"""Which histories an audit covers: some ids, a visibility query, or a whole year."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio.client import Client, WorkflowHistory

from service.audit.history import RecordedApplication, decode, fetch_many

MAX_HISTORIES = 100_000


@dataclass
class Selection:
    ids: list[str] | None = None
    year: int | None = None
    query: str | None = None
    limit: int | None = MAX_HISTORIES


async def histories(client: Client, selection: Selection) -> list[WorkflowHistory]:
    return [h async for h in fetch_many(client, ids=selection.ids, query=selection.query, year=selection.year,
                                        limit=selection.limit)]


def records_of(found: list[WorkflowHistory], org_ids: set[int] | None = None) -> list[RecordedApplication]:
    """Decoded, and limited to the given organisations when asked (an auditor sees their own union)."""
    records = [decode(h) for h in found]
    if org_ids is not None:
        records = [r for r in records if r.input.get("org_id") in org_ids]
    return records
