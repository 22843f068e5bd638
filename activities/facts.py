"""Gather from the database what the rules and the route need to know about one application."""

from __future__ import annotations

import datetime as dt

from pydantic import ValidationError
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from rules.claims import claim_key, period_key
from rules.evaluate import policy_for
from rules.facts import ApplicationFacts, FactsError
from rules.loader import PolicyRegistry
from rules.messages import field_path, reason_zh
from rules.model import Benefit, Tier
from service.ledger import claims_in_scope, used_in_period
from service.models import Application, HardshipFile, Member, MemberStatus, Relative, Role, RoleGrant, User
from workflows.types import (
    AWAITING_FUNDS,
    PENDING_APPROVAL,
    RETURNED,
    SUBMITTED,
    ApplicationDetails,
    ApplicationInput,
    Context,
    Problem,
)

OPEN_STATUSES = (SUBMITTED, PENDING_APPROVAL, RETURNED, AWAITING_FUNDS)


def max_grant(benefit: Benefit) -> int:
    caps = [benefit.cap_fen or 0, *(benefit.tier_caps_fen or {}).values(), *(benefit.level_caps_fen or {}).values()]
    return max(caps)


def users_with_role(session: Session, org_id: int, role: Role, recused_members: list[int] = (), recused_user: int | None = None) -> list[int]:
    """Users holding ``role`` in the organisation, less those who must recuse themselves (回避)."""
    query = (
        select(RoleGrant.user_id, User.member_id)
        .join(User, User.id == RoleGrant.user_id)
        .where(RoleGrant.org_id == org_id, RoleGrant.role == role)
        .order_by(RoleGrant.user_id)
    )
    return [uid for uid, member_id in session.execute(query) if member_id not in recused_members and uid != recused_user]


def conflicted_members(session: Session, member_id: int) -> list[int]:
    """The member, the relatives they registered who are members, and members who registered them."""
    theirs = select(Relative.relative_member_id).where(Relative.member_id == member_id, Relative.relative_member_id.is_not(None))
    reverse = select(Relative.member_id).where(Relative.relative_member_id == member_id)
    ids = {member_id, *session.execute(theirs).scalars(), *session.execute(reverse).scalars()}
    return sorted(ids)


def pending_in_scope(session: Session, key: str, excluding: str) -> int:
    query = select(func.count()).select_from(Application).where(
        Application.claim_key == key, Application.id != excluding, Application.status.in_(OPEN_STATUSES)
    )
    return session.execute(query).scalar_one()


def active_file_tier(session: Session, member_id: int, on: dt.date) -> str | None:
    """The tier of the member's hardship file in force on ``on`` (依档帮扶), if any."""
    query = select(HardshipFile.tier).where(HardshipFile.member_id == member_id, HardshipFile.status == "active",
                                              HardshipFile.active_from <= on, HardshipFile.active_until >= on)
    return session.execute(query).scalars().first()


def gather(engine: Engine, registry: PolicyRegistry, inp: ApplicationInput, details: ApplicationDetails) -> Context:
    problems: list[Problem] = []
    with Session(engine) as session:
        member = session.get(Member, inp.member_id)
        if member is None or member.org_id != inp.org_id:
            problems.append(Problem("member_id", "会员不存在或不属于本工会", "No such member in this union"))
        relation = None
        if details.relative_id is not None:
            relative = session.get(Relative, details.relative_id)
            if relative is None or relative.member_id != inp.member_id:
                problems.append(Problem("relative_id", "该亲属未在会员台帐中登记", "This relative is not registered for the member"))
            else:
                relation = relative.relation
        raw = {
            "benefit": inp.benefit,
            "event_date": inp.event_date,
            "filed_on": inp.filed_on,
            "requested_fen": details.requested_fen,
            "member_active": member is not None and member.status == MemberStatus.active,
            "evidence": details.evidence,
            "relation": relation,
            "school_level": details.school_level,
            "household": details.household,
        }
        raw = {k: v for k, v in raw.items() if v is not None}
        try:
            facts = ApplicationFacts.model_validate(raw)
            loaded = policy_for(facts, registry)
        except ValidationError as exc:
            first = exc.errors()[0]
            problems.append(Problem(field_path(first["loc"]), reason_zh(first), first["msg"]))
        except FactsError as exc:
            problems.append(Problem(exc.field, exc.reason_zh, exc.reason_en))
        if problems:
            return _rejected_context(raw, problems)

        benefit = loaded.policy.benefit(inp.benefit)
        event_date = dt.date.fromisoformat(inp.event_date)
        ckey = claim_key(benefit, inp.member_id, event_date, details.event_key, inp.application_id)
        pkey = period_key(benefit, inp.member_id, event_date)
        tier = active_file_tier(session, inp.member_id, event_date)
        facts = facts.model_copy(update={
            "prior_claims": claims_in_scope(session, ckey, inp.application_id) + pending_in_scope(session, ckey, inp.application_id),
            "period_used_fen": used_in_period(session, pkey, inp.application_id),
            "file_tier": Tier(tier) if tier else None,
        })
        approval = loaded.policy.approval
        conflicted = conflicted_members(session, inp.member_id)
        return Context(
            facts=facts.model_dump(mode="json"),
            claim_key=ckey,
            period_key=pkey,
            fund_code=benefit.fund,
            fund_year=dt.date.fromisoformat(inp.filed_on).year,
            max_fen=max_grant(benefit),
            max_claims=benefit.frequency.max_claims,
            chair_user_ids=users_with_role(session, inp.org_id, Role.chair),
            committee_user_ids=users_with_role(session, inp.org_id, Role.committee, conflicted, inp.filed_by.user_id),
            conflicted_member_ids=conflicted,
            remind_after_days=approval.remind_after_days,
            escalate_after_days=approval.escalate_after_days,
            awaiting_funds_max_days=approval.awaiting_funds_max_days,
        )


def _rejected_context(raw: dict, problems: list[Problem]) -> Context:
    return Context(facts=raw, claim_key="", period_key="", fund_code="", fund_year=0, max_fen=0, max_claims=1,
                   chair_user_ids=[], committee_user_ids=[], conflicted_member_ids=[], remind_after_days=1,
                   escalate_after_days=2, awaiting_funds_max_days=1, problems=problems)

