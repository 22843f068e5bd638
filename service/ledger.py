"""Money moves here and nowhere else.

Every movement is one transaction with a ledger row whose idempotency key makes a retried step a
no-op. A reservation is a single conditional UPDATE (``... WHERE budget - reserved - spent >= amount``)
so concurrent approvals cannot overdraw a fund; the table's CHECK constraints say the same again.
A claim slot (unique per claim key and slot number) makes "once per event" a database fact.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from service.models import ClaimSlot, Fund, LedgerEntry, LedgerKind
from workflows.types import MoneyRequest, ReserveResult

INSUFFICIENT = ReserveResult(False, "insufficient_funds", "经费余额不足，等待追加预算", "Not enough left in the fund; waiting for more budget")
NO_FUND = ReserveResult(False, "insufficient_funds", "本年度尚未设立该项经费，等待设立预算", "No such fund for this year yet; waiting for a budget")
CLAIM_TAKEN = ReserveResult(False, "claim_taken", "同一事件已经享受过该福利", "This event has already been granted this benefit")


class LedgerError(RuntimeError):
    """The ledger and a request disagree (e.g. disbursing what was never reserved)."""


def _key(application_id: str, kind: LedgerKind) -> str:
    return f"{application_id}:{kind.value}"


def _entry(session: Session, key: str) -> LedgerEntry | None:
    return session.execute(select(LedgerEntry).where(LedgerEntry.idempotency_key == key)).scalars().first()


def _fund(session: Session, org_id: int, year: int, code: str) -> Fund | None:
    query = select(Fund).where(Fund.org_id == org_id, Fund.year == year, Fund.code == code)
    return session.execute(query).scalars().first()


def reserve(engine: Engine, m: MoneyRequest) -> ReserveResult:
    key = _key(m.application_id, LedgerKind.reserve)
    try:
        with Session(engine) as session, session.begin():
            if _entry(session, key) is not None:
                return ReserveResult(True)
            fund = _fund(session, m.org_id, m.fund_year, m.fund_code)
            if fund is None:
                return NO_FUND
            taken = set(session.execute(select(ClaimSlot.slot).where(ClaimSlot.claim_key == m.claim_key)).scalars())
            free = next((n for n in range(1, m.max_claims + 1) if n not in taken), None)
            if free is None:
                return CLAIM_TAKEN
            session.add(ClaimSlot(claim_key=m.claim_key, slot=free, application_id=m.application_id,
                                  amount_fen=m.amount_fen, period_key=m.period_key))
            session.flush()
            reserved = session.execute(
                update(Fund)
                .where(Fund.id == fund.id, Fund.budget_fen - Fund.reserved_fen - Fund.spent_fen >= m.amount_fen)
                .values(reserved_fen=Fund.reserved_fen + m.amount_fen)
            )
            if reserved.rowcount != 1:
                session.rollback()
                return INSUFFICIENT
            session.add(LedgerEntry(idempotency_key=key, fund_id=fund.id, application_id=m.application_id,
                                    kind=LedgerKind.reserve, amount_fen=m.amount_fen, actor=m.actor))
    except IntegrityError:
        # A concurrent twin of this step, or another application taking the same claim slot.
        with Session(engine) as session:
            if _entry(session, key) is not None:
                return ReserveResult(True)
        return CLAIM_TAKEN
    return ReserveResult(True)


def _once(engine: Engine, key: str, move: Callable[[Session], None]) -> bool:
    """``move`` in one transaction, unless the ledger already holds ``key``; a concurrent twin's
    unique-key conflict means the step is done, anything else is raised."""
    try:
        with Session(engine) as session, session.begin():
            if _entry(session, key) is None:
                move(session)
    except IntegrityError:
        with Session(engine) as session:
            if _entry(session, key) is not None:
                return True
        raise
    return True


def release(engine: Engine, m: MoneyRequest) -> bool:
    """Give a reservation back (rejection, withdrawal, revocation) and free the claim slot."""
    key = _key(m.application_id, LedgerKind.release)

    def move(session: Session) -> None:
        reservation = _entry(session, _key(m.application_id, LedgerKind.reserve))
        if reservation is None:
            return
        if _entry(session, _key(m.application_id, LedgerKind.disburse)) is not None:
            raise LedgerError(f"{m.application_id}: already disbursed, cannot release")
        done = session.execute(
            update(Fund).where(Fund.id == reservation.fund_id, Fund.reserved_fen >= reservation.amount_fen)
            .values(reserved_fen=Fund.reserved_fen - reservation.amount_fen)
        )
        if done.rowcount != 1:
            raise LedgerError(f"{m.application_id}: fund holds less in reserve than this reservation")
        session.add(LedgerEntry(idempotency_key=key, fund_id=reservation.fund_id, application_id=m.application_id,
                                kind=LedgerKind.release, amount_fen=reservation.amount_fen, actor=m.actor))
        slot = session.execute(select(ClaimSlot).where(ClaimSlot.application_id == m.application_id)).scalars().first()
        if slot is not None:
            session.delete(slot)

    return _once(engine, key, move)


def disburse(engine: Engine, m: MoneyRequest) -> bool:
    """Pay what was reserved, exactly once: reserved moves to spent."""
    key = _key(m.application_id, LedgerKind.disburse)

    def move(session: Session) -> None:
        reservation = _entry(session, _key(m.application_id, LedgerKind.reserve))
        if reservation is None or _entry(session, _key(m.application_id, LedgerKind.release)) is not None:
            raise LedgerError(f"{m.application_id}: nothing reserved to disburse")
        done = session.execute(
            update(Fund).where(Fund.id == reservation.fund_id, Fund.reserved_fen >= reservation.amount_fen)
            .values(reserved_fen=Fund.reserved_fen - reservation.amount_fen, spent_fen=Fund.spent_fen + reservation.amount_fen)
        )
        if done.rowcount != 1:
            raise LedgerError(f"{m.application_id}: fund holds less in reserve than this reservation")
        session.add(LedgerEntry(idempotency_key=key, fund_id=reservation.fund_id, application_id=m.application_id,
                                kind=LedgerKind.disburse, amount_fen=reservation.amount_fen, form=m.form, actor=m.actor))

    return _once(engine, key, move)


@dataclass(frozen=True)
class BudgetChange:
    fund_id: int
    budget_fen: int


def raise_budget(engine: Engine, fund_id: int, amount_fen: int, key: str, actor: str) -> BudgetChange:
    """Add to a fund's budget once per key (a retried request changes nothing)."""
    with Session(engine) as session, session.begin():
        if _entry(session, key) is None:
            session.execute(update(Fund).where(Fund.id == fund_id).values(budget_fen=Fund.budget_fen + amount_fen))
            session.add(LedgerEntry(idempotency_key=key, fund_id=fund_id, kind=LedgerKind.budget, amount_fen=amount_fen, actor=actor))
        fund = session.get(Fund, fund_id)
        return BudgetChange(fund_id, fund.budget_fen)


def claims_in_scope(session: Session, claim_key: str, excluding: str) -> int:
    query = select(func.count()).select_from(ClaimSlot).where(ClaimSlot.claim_key == claim_key, ClaimSlot.application_id != excluding)
    return session.execute(query).scalar_one()


def used_in_period(session: Session, period_key: str, excluding: str) -> int:
    query = select(func.coalesce(func.sum(ClaimSlot.amount_fen), 0)).where(
        ClaimSlot.period_key == period_key, ClaimSlot.application_id != excluding
    )
    return int(session.execute(query).scalar_one())
