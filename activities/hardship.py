"""The activities of the hardship-file workflow, bound to one database.

Each is idempotent: a story step is keyed by file id, run and step (audit log) and writes its rows
whole by (file id, period); a notice is keyed by file and step; the others only read.
"""

from __future__ import annotations

import datetime as dt

import structlog
from pydantic import ValidationError
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session
from temporalio import activity

from activities.facts import conflicted_members, users_with_role
from rules.evaluate import evaluate
from rules.facts import FactsError
from rules.loader import PolicyRegistry, default_registry
from rules.messages import field_path, reason_zh
from rules.model import HARDSHIP_ASSESSMENT
from rules.workdays import add_working_days
from service import audit_log
from service.models import HardshipFile, Member, MemberStatus, Notification, Role
from workflows.hardship_types import Assessment, FileContext, FileNotice, FileRecord

log = structlog.get_logger("activities")

# Not in the seeds: how long before a file expires the clerks are reminded to review it.
REVIEW_REMINDER_DAYS = 30


class HardshipActivities:
    def __init__(self, engine: Engine, registry: PolicyRegistry | None = None,
                 calendar: dict[dt.date, bool] | None = None):
        """``calendar``: extra working-day overrides over rules/calendar/overrides.yaml (tests, a union's own)."""
        self.engine = engine
        self.registry = registry or default_registry()
        self.calendar = calendar

    def all(self) -> list:
        return [self.hardship_context, self.hardship_assess, self.hardship_notice_end, self.hardship_record, self.hardship_notify]

    @activity.defn(name="hardship_context")
    def hardship_context(self, org_id: int, member_id: int, opened_by_user_id: int, on: str) -> FileContext:
        loaded = self.registry.for_date(dt.date.fromisoformat(on))
        if loaded is None:
            raise RuntimeError(f"no policy in force on {on}")
        policy = loaded.policy
        route = policy.hardship.file_route
        with Session(self.engine) as session:
            member = session.get(Member, member_id)
            conflicted = conflicted_members(session, member_id)
            committee = users_with_role(session, org_id, Role.committee, conflicted, opened_by_user_id)
        return FileContext(
            member_active=member is not None and member.status == MemberStatus.active,
            committee_user_ids=committee,
            conflicted_member_ids=conflicted,
            committee_mode=route.committee_mode.value if route.committee_mode else "majority",
            quorum=route.quorum or 1,
            notice_working_days=route.public_notice_working_days,
            review_months=policy.hardship.review_months,
            remind_before_days=REVIEW_REMINDER_DAYS,
            remind_after_days=policy.approval.remind_after_days,
            policy_version=loaded.version,
        )

    @activity.defn(name="hardship_assess")
    def hardship_assess(self, member_id: int, on: str, household: dict) -> Assessment:
        """The rules' tier for the household as visited; input the rules cannot take comes back ``invalid``."""
        with Session(self.engine) as session:
            member = session.get(Member, member_id)
        facts = {"benefit": HARDSHIP_ASSESSMENT, "event_date": on, "filed_on": on,
                 "member_active": member is not None and member.status == MemberStatus.active, "household": household}
        try:
            d = evaluate(facts, self.registry)
        except FactsError as exc:
            return Assessment("invalid", None, [{"rule_id": None, "field": exc.field, "zh": exc.reason_zh, "en": exc.reason_en}],
                              [], "", "", household)
        except ValidationError as exc:
            first = exc.errors()[0]
            return Assessment("invalid", None, [{"rule_id": None, "field": field_path(first["loc"]), "zh": reason_zh(first),
                                                 "en": first["msg"]}], [], "", "", household)
        return Assessment(d.outcome.value, d.tier.value if d.tier else None, [r.model_dump(mode="json") for r in d.reasons],
                          list(d.fired), d.policy_version, d.policy_hash, household)

    @activity.defn(name="hardship_notice_end")
    def hardship_notice_end(self, start: str, count: int) -> str:
        """The last day of a public notice of ``count`` working days starting the day after ``start``."""
        return add_working_days(dt.date.fromisoformat(start), count, self.calendar).isoformat()

    @activity.defn(name="hardship_record")
    def hardship_record(self, r: FileRecord) -> None:
        item = r.item
        for _ in range(20):
            try:
                with Session(self.engine) as session, session.begin():
                    for w in r.rows:
                        _write_row(session, w)
                    audit_log.append(session, r.key, r.file_id, item.actor, f"hardship_{item.action}",
                                     {"at": item.at, **item.detail})
                break
            except IntegrityError:
                continue  # a concurrent audit append took our place in the chain: try again
        else:
            raise RuntimeError(f"{r.key}: kept conflicting")
        log.info("hardship_file", file_id=r.file_id, action=item.action)

    @activity.defn(name="hardship_notify")
    def hardship_notify(self, n: FileNotice) -> None:
        try:
            with Session(self.engine) as session, session.begin():
                session.add(Notification(idempotency_key=n.key, application_id=n.file_id, kind=n.kind,
                                         recipient_role=n.recipient_role, text_zh=n.zh, text_en=n.en))
        except IntegrityError:
            return  # already sent
        log.info("notified", file_id=n.file_id, kind=n.kind, role=n.recipient_role)


def _write_row(session: Session, w) -> None:
    row = session.execute(select(HardshipFile).where(HardshipFile.file_id == w.file_id, HardshipFile.period == w.period)
                          .with_for_update()).scalars().first()
    if row is None:
        opened = dt.date.fromisoformat(w.active_from) if w.active_from else dt.date.today()
        row = HardshipFile(file_id=w.file_id, member_id=w.member_id, period=w.period, tier="", status="pending",
                           stage="", active_from=opened, active_until=opened, assessment={})
        session.add(row)
    for name in ("tier", "status", "stage", "closed_reason"):
        value = getattr(w, name)
        if value is not None:
            setattr(row, name, value)
    if w.active_from is not None:
        row.active_from = dt.date.fromisoformat(w.active_from)
    if w.active_until is not None:
        row.active_until = dt.date.fromisoformat(w.active_until)
    if w.assessment is not None:
        row.assessment = w.assessment
    session.flush()
