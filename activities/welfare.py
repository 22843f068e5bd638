"""The activities an application workflow calls, bound to one database.

Each is idempotent, keyed by the application id and step (ledger keys, projection sequence numbers,
notification keys), so a retry after a crash changes nothing that already happened.
"""

from __future__ import annotations

import datetime as dt

import structlog
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import facts
from rules.evaluate import evaluate
from rules.loader import PolicyRegistry, default_registry
from rules.workdays import add_working_days
from service import ledger, projection
from service.models import Notification
from workflows.types import ApplicationDetails, ApplicationInput, Context, MoneyRequest, Notice, Projection, ReserveResult

log = structlog.get_logger("activities")


class WelfareActivities:
    def __init__(self, engine: Engine, registry: PolicyRegistry | None = None):
        self.engine = engine
        self.registry = registry or default_registry()

    def all(self) -> list:
        return [self.gather_facts, self.evaluate_rules, self.project, self.notify, self.working_days_after,
                self.reserve_funds, self.release_funds, self.disburse]

    @activity.defn(name="gather_facts")
    def gather_facts(self, inp: ApplicationInput, details: ApplicationDetails) -> Context:
        ctx = facts.gather(self.engine, self.registry, inp, details)
        log.info("facts_gathered", application_id=inp.application_id, problems=len(ctx.problems))
        return ctx

    @activity.defn(name="evaluate_rules")
    def evaluate_rules(self, facts_json: dict) -> dict:
        decision = evaluate(facts_json, self.registry)
        return decision.model_dump(mode="json")

    @activity.defn(name="project")
    def project(self, p: Projection) -> None:
        projection.apply(self.engine, p)
        log.info("state", application_id=p.application_id, seq=p.seq, status=p.status, stage=p.stage, action=p.event.action)

    @activity.defn(name="notify")
    def notify(self, n: Notice) -> None:
        try:
            with Session(self.engine) as session, session.begin():
                session.add(Notification(idempotency_key=n.key, application_id=n.application_id, kind=n.kind,
                                         recipient_role=n.recipient_role, recipient_user_id=n.recipient_user_id,
                                         text_zh=n.zh, text_en=n.en))
        except IntegrityError:
            return  # already sent
        log.info("notified", application_id=n.application_id, kind=n.kind, role=n.recipient_role)

    @activity.defn(name="working_days_after")
    def working_days_after(self, start: str, count: int) -> str:
        return add_working_days(dt.date.fromisoformat(start), count).isoformat()

    @activity.defn(name="reserve_funds")
    def reserve_funds(self, m: MoneyRequest) -> ReserveResult:
        result = ledger.reserve(self.engine, m)
        log.info("reserve", application_id=m.application_id, amount_fen=m.amount_fen, ok=result.ok, reason=result.reason)
        return result

    @activity.defn(name="release_funds")
    def release_funds(self, m: MoneyRequest) -> bool:
        done = ledger.release(self.engine, m)
        log.info("release", application_id=m.application_id)
        return done

    @activity.defn(name="disburse")
    def disburse(self, m: MoneyRequest) -> bool:
        try:
            done = ledger.disburse(self.engine, m)
        except ledger.LedgerError as exc:
            raise ApplicationError(str(exc), type="LedgerError", non_retryable=True) from exc
        log.info("disbursed", application_id=m.application_id, amount_fen=m.amount_fen, form=m.form)
        return done
