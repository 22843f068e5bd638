"""Creating organisations, members, users and funds: used by the demo data, imports and tests."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Session

from rules.loader import default_registry
from service.models import Fund, LedgerEntry, LedgerKind, Member, MemberStatus, Organisation, Relative, Role, RoleGrant, User  # noqa: F401
from service.security import hash_password, id_card_digest, mask_id_card
from service.settings import get_settings


def organisation(session: Session, code: str, name_zh: str, name_en: str, parent: Organisation | None = None) -> Organisation:
    org = Organisation(code=code, name_zh=name_zh, name_en=name_en, parent_id=parent.id if parent else None)
    session.add(org)
    session.flush()
    return org


def member(session: Session, org: Organisation, member_no: str, name: str, id_card: str, birth_date: dt.date,
           join_date: dt.date = dt.date(2010, 1, 1), status: MemberStatus = MemberStatus.active) -> Member:
    key = get_settings().id_card_key
    m = Member(member_no=member_no, org_id=org.id, name=name, id_card_digest=id_card_digest(key, id_card),
               id_card_masked=mask_id_card(id_card), birth_date=birth_date, join_date=join_date, status=status)
    session.add(m)
    session.flush()
    return m


def relative(session: Session, of: Member, name: str, relation: str, relative_member: Member | None = None) -> Relative:
    r = Relative(member_id=of.id, name=name, relation=relation, relative_member_id=relative_member.id if relative_member else None)
    session.add(r)
    session.flush()
    return r


def user(session: Session, username: str, password: str, org: Organisation, roles: list[Role], display_name: str | None = None,
         of_member: Member | None = None, password_hash: str | None = None) -> User:
    u = User(username=username, display_name=display_name or username, password_hash=password_hash or hash_password(password),
             member_id=of_member.id if of_member else None)
    session.add(u)
    session.flush()
    for role in roles:
        session.add(RoleGrant(user_id=u.id, org_id=org.id, role=role))
    session.flush()
    return u


def funds(session: Session, org: Organisation, year: int, budgets_fen: dict[str, int]) -> list[Fund]:
    """One fund per code of the policy in force, with the budgets given (others at zero)."""
    policy = default_registry().for_date(dt.date(year, 1, 1)).policy
    created = []
    for f in policy.funds:
        fund = Fund(org_id=org.id, year=year, code=f.code, name_zh=f.name_zh, name_en=f.name_en,
                    budget_fen=budgets_fen.get(f.code, 0))
        session.add(fund)
        session.flush()
        session.add(LedgerEntry(idempotency_key=f"budget:{fund.id}:initial", fund_id=fund.id, kind=LedgerKind.budget,
                                amount_fen=fund.budget_fen, actor="seed"))
        created.append(fund)
    session.flush()
    return created
