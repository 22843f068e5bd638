"""The append-only audit log: each event carries the hash of the one before it."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from service.models import AuditEvent, utcnow

GENESIS = "0" * 64


def event_hash(prev_hash: str, idempotency_key: str, application_id: str | None, actor: str | None, action: str,
               detail: dict[str, Any], at: str) -> str:
    body = json.dumps([prev_hash, idempotency_key, application_id, actor, action, detail, at], sort_keys=True,
                      ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def append(session: Session, idempotency_key: str, application_id: str | None, actor: str | None, action: str,
           detail: dict[str, Any]) -> AuditEvent:
    """Append within the caller's transaction; the unique prev_hash keeps the chain from forking."""
    found = session.execute(select(AuditEvent).where(AuditEvent.idempotency_key == idempotency_key)).scalars().first()
    if found is not None:
        return found
    last = session.execute(select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)).scalar()
    prev = last or GENESIS
    at = utcnow()
    event = AuditEvent(idempotency_key=idempotency_key, application_id=application_id, at=at, actor=actor, action=action,
                       detail=detail, prev_hash=prev,
                       hash=event_hash(prev, idempotency_key, application_id, actor, action, detail, at.isoformat()))
    session.add(event)
    session.flush()
    return event


def append_with_retry(engine, idempotency_key: str, application_id: str | None, actor: str | None, action: str,
                      detail: dict[str, Any], attempts: int = 20) -> None:
    """Append in a transaction of its own, retrying when a concurrent append took the same place."""
    for _ in range(attempts):
        try:
            with Session(engine) as session, session.begin():
                append(session, idempotency_key, application_id, actor, action, detail)
            return
        except IntegrityError:
            continue
    raise RuntimeError("audit log: could not append after repeated conflicts")
