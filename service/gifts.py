"""Scheduled gifts from the member register: who gets which gift on which day, recorded once.

A gift is an ordinary application filed by the ``gifts-scheduler`` system user (a user row with no
roles and no usable password), with an idempotency key per member, benefit and scope
(``gift:birthday:<year>:m<member>``, ``gift:retirement:m<member>``): recording the same gift again
returns the first row. The keys of a range are read once, so re-processing days costs one query.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, replace

from sqlalchemy import Engine, select
from sqlmodel import Session

from rules.loader import PolicyRegistry, default_registry
from rules.model import BirthdayTiming, Policy
from rules.workdays import is_working_day
from service import filing
from service.models import Application, Member, MemberStatus, User
from workflows.types import Actor, ApplicationDetails, ApplicationInput

SYSTEM_USERNAME = "gifts-scheduler"
KEY_PREFIX = "gift:"


def system_actor(engine: Engine) -> Actor:
    """The user scheduled gifts are filed by; created on first use (no roles, cannot sign in)."""
    with Session(engine) as session, session.begin():
        user = session.execute(select(User).where(User.username == SYSTEM_USERNAME)).scalars().first()
        if user is None:
            user = User(username=SYSTEM_USERNAME, display_name="定时慰问 Scheduled gifts", password_hash="!disabled")
            session.add(user)
            session.flush()
        return Actor(user.id, user.username, [], None)


def birthday_in(year: int, born: dt.date) -> dt.date:
    """The birthday in ``year``; 29 February falls on the 28th in other years."""
    if born.month == 2 and born.day == 29 and not calendar.isleap(year):
        return dt.date(year, 2, 28)
    return born.replace(year=year)


def first_working_day(year: int, month: int) -> dt.date:
    day = dt.date(year, month, 1)
    while not is_working_day(day):
        day += dt.timedelta(days=1)
    return day


def birthday_gift_date(policy: Policy, year: int, born: dt.date) -> dt.date:
    if policy.scheduled_gifts.birthday_timing == BirthdayTiming.first_working_day_of_month:
        return first_working_day(year, born.month)
    return birthday_in(year, born)


@dataclass(frozen=True)
class Gift:
    member_id: int
    org_id: int
    benefit: str
    gift_date: dt.date  # the day it is filed for (also the event date)
    amount_fen: int
    key: str
    member_no: str = ""
    name: str = ""

    @property
    def batch(self) -> str:
        return f"{self.gift_date:%Y-%m}"


def _days(start: dt.date, end: dt.date) -> Iterator[dt.date]:
    day = start
    while day <= end:
        yield day
        day += dt.timedelta(days=1)


def gifts_between(engine: Engine, start: dt.date, end: dt.date, org_id: int | None = None,
                  registry: PolicyRegistry | None = None) -> list[Gift]:
    """Every gift due on a day of [start, end], by the policy in force on that day, in date and member order."""
    registry = registry or default_registry()
    query = select(Member.id, Member.org_id, Member.member_no, Member.name, Member.birth_date, Member.retired_on,
                   Member.status, Member.join_date)
    if org_id is not None:
        query = query.where(Member.org_id == org_id)
    with Session(engine) as session:
        members = session.execute(query.order_by(Member.id)).all()
    by_birth_month: dict[int, list] = defaultdict(list)
    by_retirement: dict[dt.date, list] = defaultdict(list)
    for m in members:
        if m.status == MemberStatus.active:
            by_birth_month[m.birth_date.month].append(m)
        if m.retired_on is not None and m.status != MemberStatus.left:
            by_retirement[m.retired_on].append(m)
    gifts: list[Gift] = []
    for day in _days(start, end):
        loaded = registry.for_date(day)
        if loaded is None:
            continue
        policy, sg = loaded.policy, loaded.policy.scheduled_gifts
        if sg.birthday_benefit:
            cap = policy.benefit(sg.birthday_benefit).cap_fen
            for m in by_birth_month[day.month]:
                if birthday_gift_date(policy, day.year, m.birth_date) == day and m.join_date <= day:
                    gifts.append(Gift(m.id, m.org_id, sg.birthday_benefit, day, cap,
                                      f"{KEY_PREFIX}{sg.birthday_benefit}:{day.year}:m{m.id}", m.member_no, m.name))
        if sg.retirement_benefit:
            cap = policy.benefit(sg.retirement_benefit).cap_fen
            for m in by_retirement.get(day, []):
                gifts.append(Gift(m.id, m.org_id, sg.retirement_benefit, day, cap, f"{KEY_PREFIX}{sg.retirement_benefit}:m{m.id}",
                                  m.member_no, m.name))
    return gifts


def _details(gift: Gift, registry: PolicyRegistry) -> ApplicationDetails:
    benefit = registry.for_date(gift.gift_date).policy.benefit(gift.benefit)
    # The register is the evidence: the birth date, or the retirement date the clerk entered with the approval.
    return ApplicationDetails(requested_fen=gift.amount_fen, evidence=list(benefit.evidence),
                              note=f"定时慰问 scheduled gift ({gift.gift_date.isoformat()})")


def _batch(gift: Gift, registry: PolicyRegistry) -> str | None:
    """Gifts on the auto route wait for the chair's monthly batch sign-off; others follow their route."""
    benefit = registry.for_date(gift.gift_date).policy.benefit(gift.benefit)
    return gift.batch if benefit.route.kind.value == "auto" else None


def input_for(app: Application, actor: Actor, registry: PolicyRegistry | None = None) -> ApplicationInput:
    registry = registry or default_registry()
    benefit = registry.for_date(app.event_date).policy.benefit(app.benefit)
    batch = f"{app.event_date:%Y-%m}" if benefit is not None and benefit.route.kind.value == "auto" else None
    return replace(filing.to_input(app, actor), batch=batch)


@dataclass
class Recorded:
    created: list[ApplicationInput]
    existing: int
    unstarted: list[ApplicationInput]  # recorded earlier but perhaps never started (a crash between the two)


def record_gifts(engine: Engine, start: dt.date, end: dt.date, org_id: int | None = None,
                 registry: PolicyRegistry | None = None, today: dt.date | None = None) -> Recorded:
    """Record the applications of every gift due in [start, end] that is not recorded yet."""
    registry = registry or default_registry()
    actor = system_actor(engine)
    gifts = gifts_between(engine, start, end, org_id, registry)
    with Session(engine) as session:
        rows = session.execute(select(Application.idempotency_key, Application.id, Application.projection_seq)
                               .where(Application.filed_by_user_id == actor.user_id,
                                      Application.idempotency_key.like(f"{KEY_PREFIX}%"))).all()
    known = {key: (app_id, seq) for key, app_id, seq in rows}
    created: list[ApplicationInput] = []
    existing = 0
    unstarted_ids: list[str] = []
    for gift in gifts:
        if gift.key in known:
            existing += 1
            app_id, seq = known[gift.key]
            if seq <= 1:
                unstarted_ids.append(app_id)
            continue
        app, new = filing.record(engine, org_id=gift.org_id, member_id=gift.member_id, benefit=gift.benefit,
                                 event_date=gift.gift_date, details=_details(gift, registry), filed_by=actor,
                                 idempotency_key=gift.key, today=today)
        known[gift.key] = (app.id, app.projection_seq)
        inp = replace(filing.to_input(app, actor), batch=_batch(gift, registry))
        if new:
            created.append(inp)
        else:
            existing += 1
            unstarted_ids.append(app.id)
    unstarted: list[ApplicationInput] = []
    if unstarted_ids:
        with Session(engine) as session:
            for app in session.execute(select(Application).where(Application.id.in_(unstarted_ids))).scalars():
                unstarted.append(input_for(app, actor, registry))
    return Recorded(created, existing, unstarted)


def upcoming(engine: Engine, org_ids: list[int], today: dt.date, days: int,
             registry: PolicyRegistry | None = None) -> list[Gift]:
    """The gifts due in the next ``days`` days (today included), as the policy in force then says."""
    gifts: list[Gift] = []
    for org_id in org_ids:
        gifts.extend(gifts_between(engine, today, today + dt.timedelta(days=days - 1), org_id, registry))
    return sorted(gifts, key=lambda g: (g.gift_date, g.member_no, g.benefit))
