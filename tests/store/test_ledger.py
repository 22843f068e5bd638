"""The ledger under concurrency, retries and misuse, on SQLite and PostgreSQL."""

import threading

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from service import ledger
from service.models import ClaimSlot, Fund, LedgerEntry
from workflows.types import MoneyRequest

from ..world import YEAR, build, fund


def request(world, n: int, amount: int = 30_000, claim: str | None = None, max_claims: int = 1) -> MoneyRequest:
    return MoneyRequest(application_id=f"APP-{n}", org_id=world.org_id, fund_code="member_welfare", fund_year=YEAR,
                        amount_fen=amount, claim_key=claim or f"claim-{n}", period_key=f"period-{n}", max_claims=max_claims)


def test_forty_concurrent_reservations_on_room_for_twenty_five(any_engine):
    world = build(any_engine, welfare_fen=25 * 30_000)
    results: list[bool] = []
    barrier = threading.Barrier(40)

    def reserve(n: int) -> None:
        barrier.wait()
        results.append(ledger.reserve(any_engine, request(world, n)).ok)

    threads = [threading.Thread(target=reserve, args=(n,)) for n in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(results) == 25 and len(results) == 40
    f = fund(any_engine, world.funds["member_welfare"])
    assert f.reserved_fen == 25 * 30_000 and f.budget_fen - f.reserved_fen - f.spent_fen == 0
    with Session(any_engine) as s:
        assert len(s.exec(select(LedgerEntry).where(LedgerEntry.kind == "reserve")).all()) == 25


def test_every_step_is_idempotent(any_engine):
    world = build(any_engine)
    m = request(world, 1)
    assert ledger.reserve(any_engine, m).ok and ledger.reserve(any_engine, m).ok
    assert ledger.disburse(any_engine, m) and ledger.disburse(any_engine, m)
    f = fund(any_engine, world.funds["member_welfare"])
    assert (f.reserved_fen, f.spent_fen) == (0, 30_000)
    with pytest.raises(ledger.LedgerError):
        ledger.release(any_engine, m)  # paid money is never "released"
    with Session(any_engine) as s:
        kinds = [e.kind for e in s.exec(select(LedgerEntry).where(LedgerEntry.application_id == "APP-1")).all()]
    assert kinds == ["reserve", "disburse"]


def test_once_per_event_is_a_database_fact(any_engine):
    world = build(any_engine)
    first = ledger.reserve(any_engine, request(world, 1, claim="hospitalization:m1:e:stay-1"))
    second = ledger.reserve(any_engine, request(world, 2, claim="hospitalization:m1:e:stay-1"))
    assert first.ok and not second.ok and second.reason == "claim_taken" and second.zh
    assert fund(any_engine, world.funds["member_welfare"]).reserved_fen == 30_000
    # Released (withdrawn before payment), the event can be claimed again.
    assert ledger.release(any_engine, request(world, 1, claim="hospitalization:m1:e:stay-1"))
    assert ledger.reserve(any_engine, request(world, 3, claim="hospitalization:m1:e:stay-1")).ok
    # Scopes with several claims (hardship: up to 12 a year) hand out numbered slots.
    for n in range(10, 13):
        assert ledger.reserve(any_engine, request(world, n, claim="hardship:m1:y2024", max_claims=2)).ok is (n < 12)
    with Session(any_engine) as s:
        slots = s.exec(select(ClaimSlot.slot).where(ClaimSlot.claim_key == "hardship:m1:y2024")).all()
    assert sorted(slots) == [1, 2]


def test_database_refuses_an_overdrawn_fund_even_from_raw_sql(any_engine):
    world = build(any_engine, welfare_fen=100)
    with pytest.raises(IntegrityError), Session(any_engine) as s, s.begin():
        s.execute(text("UPDATE fund SET reserved_fen = 101 WHERE id = :id"), {"id": world.funds["member_welfare"]})
    with pytest.raises(IntegrityError), Session(any_engine) as s, s.begin():
        s.execute(text("UPDATE fund SET spent_fen = -1 WHERE id = :id"), {"id": world.funds["member_welfare"]})
    assert fund(any_engine, world.funds["member_welfare"]).reserved_fen == 0


def test_insufficient_funds_changes_nothing(any_engine):
    world = build(any_engine, welfare_fen=29_999)
    result = ledger.reserve(any_engine, request(world, 1))
    assert not result.ok and result.reason == "insufficient_funds"
    with Session(any_engine) as s:
        assert s.exec(select(ClaimSlot)).all() == [] and s.exec(select(LedgerEntry).where(LedgerEntry.kind == "reserve")).all() == []
        assert s.get(Fund, world.funds["member_welfare"]).reserved_fen == 0
