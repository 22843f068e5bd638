"""Write a workflow's state change into the read model (applications, tasks) and the audit log."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from service import audit_log
from service.models import Application, ApprovalTask, utcnow
from workflows.types import Projection


class ProjectionMissing(RuntimeError):
    """The application row is not there (yet): the activity retries."""


def _parse(ts: str | None) -> dt.datetime | None:
    if not ts:
        return None
    value = dt.datetime.fromisoformat(ts)
    return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)


def apply(engine: Engine, p: Projection) -> None:
    for _ in range(20):
        try:
            with Session(engine) as session, session.begin():
                _apply(session, p)
            return
        except IntegrityError:
            continue  # a concurrent audit append took our place in the chain: try again
    raise RuntimeError(f"{p.application_id}: projection {p.seq} kept conflicting")


def _apply(session: Session, p: Projection) -> None:
    app = session.get(Application, p.application_id, with_for_update=True)
    if app is None:
        raise ProjectionMissing(p.application_id)
    event = asdict(p.event) | {"seq": p.seq}
    # A step seen before was re-run after its worker died: the workflow kept the re-run's time, so do we.
    app.history = sorted([*(item for item in app.history if item.get("seq") != p.seq), event], key=lambda item: item["seq"])
    if p.seq > app.projection_seq:
        app.projection_seq = p.seq
        app.status = p.status
        app.stage = p.stage
        app.approved_fen = p.approved_fen
        app.updated_at = utcnow()
        if p.decision is not None:
            app.decision = p.decision
            app.outcome = p.decision["outcome"]
            app.policy_version = p.decision["policy_version"]
            app.policy_hash = p.decision["policy_hash"]
    session.add(app)
    for view in p.tasks:
        task = session.get(ApprovalTask, view.task_id)
        if task is None:
            task = ApprovalTask(id=view.task_id, application_id=p.application_id, org_id=app.org_id, stage=view.stage,
                                role=view.role, assignee_user_id=view.assignee_user_id, created_at=_parse(p.event.at) or utcnow())
        elif task.status != "open" and view.status == "open":
            continue  # never reopen a task from an older state
        task.status = view.status
        task.outcome = view.outcome
        task.comment = view.comment
        task.decided_by_user_id = view.decided_by_user_id
        task.due_at = _parse(view.due_at)
        task.reminded = view.reminded
        task.escalated = view.escalated
        if view.status == "done" and task.decided_at is None:
            task.decided_at = _parse(p.event.at)
        session.add(task)
    audit_log.append(session, f"{p.application_id}:{p.seq}", p.application_id, p.event.actor, p.event.action,
                     {"status": p.status, "stage": p.stage, **p.event.detail})
