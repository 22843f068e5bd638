"""Tamper evidence: walk the audit log in id order and check every hash and every link.

Each event's hash covers its content and the previous event's hash (``service.audit_log``), so an
edited row no longer matches its own hash, and a deleted or inserted row breaks the link of the
row after it. Deleting rows at the very end leaves no trace inside the chain: compare
``last_hash`` with a copy kept elsewhere (a printed report, a message to the higher-level union).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import Session

from service.audit_log import GENESIS, event_hash
from service.models import AuditEvent

HASH_MISMATCH = "hash_mismatch"
BROKEN_PREV_LINK = "broken_prev_link"


@dataclass(frozen=True)
class ChainBreak:
    event_id: int
    problem: str  # HASH_MISMATCH or BROKEN_PREV_LINK
    zh: str
    en: str


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int  # events walked
    broken: int  # events with a problem
    first_break: ChainBreak | None
    last_hash: str  # the newest event's hash (GENESIS for an empty log): keep a copy to detect truncation
    zh: str
    en: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def render_at(at: dt.datetime | str) -> str:
    """``at`` as ``audit_log.append`` hashed it: ``isoformat()`` of an aware UTC datetime.

    The column returns aware UTC on SQLite and PostgreSQL alike; a naive value (a driver or raw
    query that drops the offset) is UTC by construction, so it is normalised to the same text.
    """
    if isinstance(at, str):
        at = dt.datetime.fromisoformat(at)
    if at.tzinfo is None or at.utcoffset() is None:
        at = at.replace(tzinfo=dt.UTC)
    return at.astimezone(dt.UTC).isoformat()


def expected_hash(event: AuditEvent) -> str:
    return event_hash(event.prev_hash, event.idempotency_key, event.application_id, event.actor, event.action,
                      event.detail or {}, render_at(event.at))


def _problem(event: AuditEvent, prev: str) -> ChainBreak | None:
    if event.prev_hash != prev:
        return ChainBreak(event.id, BROKEN_PREV_LINK,
                          f"第 {event.id} 号审计事件的前序哈希与上一条记录不衔接（其前的记录被删除、插入或改动）",
                          f"Audit event {event.id}: its prev_hash does not match the previous event's hash "
                          "(an earlier row was deleted, inserted or altered)")
    if expected_hash(event) != event.hash:
        return ChainBreak(event.id, HASH_MISMATCH,
                          f"第 {event.id} 号审计事件的内容与其哈希不符（该记录被改动）",
                          f"Audit event {event.id}: its content does not match its hash (the row was altered)")
    return None


def verify_chain(engine: Engine, batch: int = 1000) -> ChainReport:
    """Check the whole log; after a break, carry on from the stored hash so later rows are checked too."""
    prev, checked, broken, first = GENESIS, 0, 0, None
    with Session(engine) as session:
        rows = session.execute(select(AuditEvent).order_by(AuditEvent.id).execution_options(yield_per=batch)).scalars()
        for event in rows:
            checked += 1
            problem = _problem(event, prev)
            if problem is not None:
                broken += 1
                first = first or problem
            prev = event.hash
    if first is None:
        return ChainReport(True, checked, 0, None, prev, f"审计日志完整：已校验 {checked} 条记录，哈希链无断裂",
                           f"Audit log intact: {checked} events checked, the hash chain is unbroken")
    return ChainReport(False, checked, broken, first, prev,
                       f"审计日志被改动：{checked} 条记录中 {broken} 条有问题；首个断点：{first.zh}",
                       f"Audit log tampered with: {broken} of {checked} events have a problem; first break: {first.en}")
