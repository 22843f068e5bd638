"""A year of birthdays for 10,000 members, created by the gift logic straight against the database:
10,000 applications, one per member, and a second pass over the year creates none."""

from __future__ import annotations

import datetime as dt
import time

from sqlalchemy import func, select
from sqlmodel import Session

from service import gifts, seed
from service.models import Application, MemberStatus, Organisation

from ..world import build

MEMBERS = 10_000


def add_members(engine, org_id: int, count: int) -> None:
    with Session(engine) as s, s.begin():
        org = s.get(Organisation, org_id)
        for n in range(count):
            born = dt.date(1980, 1, 1) + dt.timedelta(days=n % 366)  # 1980 is a leap year: 29 February too
            seed.member(s, org, f"Y{n:06d}", f"会员{n}", f"3303021980{n:08d}", born)


def test_a_year_of_birthdays_for_10000_members_without_a_duplicate(engine):
    world = build(engine)
    add_members(engine, world.org_id, MEMBERS)
    with Session(engine) as s:
        active = s.execute(select(func.count()).where(seed.Member.status == MemberStatus.active)).scalar_one()
    year = dt.date.today().year - 1
    started = time.perf_counter()
    first = gifts.record_gifts(engine, dt.date(year, 1, 1), dt.date(year, 12, 31))
    took = time.perf_counter() - started
    assert len(first.created) == active == MEMBERS + 9 and first.existing == 0
    assert all(inp.batch == inp.event_date[:7] for inp in first.created)  # each waits for its month's sign-off
    with Session(engine) as s:
        rows = s.execute(select(Application.member_id, Application.idempotency_key, Application.event_date)
                         .where(Application.benefit == "birthday")).all()
    assert len(rows) == active
    assert len({r.member_id for r in rows}) == active and len({r.idempotency_key for r in rows}) == active
    assert all(r.event_date.year == year for r in rows)
    assert sum(1 for r in rows if (r.event_date.month, r.event_date.day) == (2, 28)) > MEMBERS // 366  # 29 Feb births too

    again = gifts.record_gifts(engine, dt.date(year, 1, 1), dt.date(year, 12, 31))  # the whole year again
    assert (len(again.created), again.existing) == (0, active)
    overlap = gifts.record_gifts(engine, dt.date(year, 6, 1), dt.date(year + 1, 1, 1) - dt.timedelta(days=1))
    assert len(overlap.created) == 0
    with Session(engine) as s:
        assert s.execute(select(func.count()).select_from(Application)).scalar_one() == active
    assert took < 60, f"{took:.1f} s for a year"
