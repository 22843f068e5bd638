"""Filing an application: the projection row first (idempotently), then its workflow."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from dataclasses import asdict

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from rules.claims import claim_key
from rules.loader import default_registry
from service import audit_log
from service.models import Application, AppStatus
from workflows.application import CHINA, ApplicationWorkflow
from workflows.types import Actor, ApplicationDetails, ApplicationInput, Snapshot

CHAIN_ATTEMPTS = 20
ASSESSMENT_WAIT_S = 10.0  # a filing answers within this even while its facts cannot be gathered


def new_application_id(today: dt.date) -> str:
    return f"A{today:%Y%m%d}-{secrets.token_hex(5).upper()}"


def to_input(app: Application, filed_by: Actor) -> ApplicationInput:
    details = ApplicationDetails(**app.details)
    filed_on = app.created_at.astimezone(CHINA).date().isoformat()
    return ApplicationInput(app.id, app.org_id, app.member_id, app.benefit, app.event_date.isoformat(), filed_on, details, filed_by)


def record(engine: Engine, *, org_id: int, member_id: int, benefit: str, event_date: dt.date, details: ApplicationDetails,
           filed_by: Actor, idempotency_key: str | None = None, today: dt.date | None = None) -> tuple[Application, bool]:
    """Insert the application row; with an idempotency key, a retry returns the first row instead."""
    today = today or dt.datetime.now(CHINA).date()
    loaded = default_registry().for_date(event_date)
    benefit_policy = loaded.policy.benefit(benefit) if loaded else None
    app_id = new_application_id(today)
    key = claim_key(benefit_policy, member_id, event_date, details.event_key, app_id) if benefit_policy else f"{benefit}:{app_id}"
    for _ in range(CHAIN_ATTEMPTS):
        app = Application(id=app_id, org_id=org_id, member_id=member_id, benefit=benefit, event_date=event_date,
                          event_key=details.event_key, claim_key=key, requested_fen=details.requested_fen,
                          status=AppStatus.submitted, details=asdict(details), filed_by_user_id=filed_by.user_id,
                          idempotency_key=idempotency_key)
        app.history = [{"seq": 1, "at": app.created_at.isoformat(), "action": "filed", "actor": filed_by.username,
                        "detail": {"requested_fen": details.requested_fen}}]
        app.projection_seq = 1
        try:
            with Session(engine, expire_on_commit=False) as session, session.begin():
                session.add(app)
                session.flush()
                audit_log.append(session, f"{app_id}:1", app_id, filed_by.username, "filed",
                                 {"status": "submitted", "stage": None, "requested_fen": details.requested_fen})
            return app, True
        except IntegrityError:
            if idempotency_key is not None:
                with Session(engine, expire_on_commit=False) as session:
                    query = select(Application).where(Application.filed_by_user_id == filed_by.user_id,
                                                      Application.idempotency_key == idempotency_key)
                    existing = session.execute(query).scalars().first()
                if existing is not None:
                    return existing, False
            # A concurrent audit append took our place in the chain (PostgreSQL lets them overlap): try again.
    raise RuntimeError(f"{app_id}: the audit log kept conflicting; nothing was filed")


async def start(client: Client, inp: ApplicationInput, task_queue: str) -> WorkflowHandle:
    """Start the workflow; starting it again (a retried request) finds the running one."""
    return await client.start_workflow(
        ApplicationWorkflow.run, inp, id=inp.application_id, task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
    )


async def start_and_assess(client: Client, inp: ApplicationInput, task_queue: str,
                           wait_s: float = ASSESSMENT_WAIT_S) -> Snapshot | None:
    """Start the workflow (or find it running) and wait, at most ``wait_s``, until the rules have decided.

    None when the workflow has already finished (a retry long after the first request), or when the
    rules have not decided in time (the database slow or away while the facts are gathered): the
    workflow is started either way and runs on, and the projection says what is known.
    """
    try:
        handle = await start(client, inp, task_queue)
    except WorkflowAlreadyStartedError:
        return None
    try:
        return await asyncio.wait_for(handle.execute_update(ApplicationWorkflow.await_assessment), wait_s)
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):  # the client raises the latter when wait_for cancels it
        return None
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:  # finished between the start and the update
            return None
        raise
