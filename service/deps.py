"""Who is calling: bearer token → user → roles per organisation."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine, select
from sqlmodel import Session
from temporalio.client import Client

from service.errors import FORBIDDEN, UNAUTHENTICATED
from service.models import ApiToken, Member, RoleGrant, User
from service.security import token_digest
from workflows.types import Actor


@dataclass
class Caller:
    user: User
    roles: dict[int, set[str]]  # organisation id → roles there
    member_org_id: int | None = None  # the union of the caller's own member record

    def has(self, org_id: int, *roles: str) -> bool:
        return bool(self.roles.get(org_id, set()) & set(roles))

    def orgs_with(self, *roles: str) -> list[int]:
        return sorted(org for org, held in self.roles.items() if held & set(roles))

    def actor(self, org_id: int) -> Actor:
        return Actor(self.user.id, self.user.username, sorted(self.roles.get(org_id, set())), self.user.member_id)

    def require(self, org_id: int, *roles: str) -> None:
        if not self.has(org_id, *roles):
            raise FORBIDDEN


def engine_of(request: Request) -> Engine:
    return request.app.state.engine


async def temporal_of(request: Request) -> Client:
    return await request.app.state.temporal()


def caller_for_user(session: Session, user: User) -> Caller:
    grants = session.execute(select(RoleGrant).where(RoleGrant.user_id == user.id)).scalars().all()
    member = session.get(Member, user.member_id) if user.member_id else None
    roles: dict[int, set[str]] = {}
    for grant in grants:
        roles.setdefault(grant.org_id, set()).add(grant.role.value if hasattr(grant.role, "value") else grant.role)
    return Caller(user, roles, member.org_id if member else None)


def _load_caller(engine: Engine, token: str) -> Caller | None:
    now = dt.datetime.now(dt.UTC)
    with Session(engine) as session:
        found = session.execute(select(ApiToken).where(ApiToken.token_digest == token_digest(token))).scalars().first()
        if found is None or found.revoked or found.expires_at < now:
            return None
        return caller_for_user(session, session.get(User, found.user_id))


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token:
        return token.strip()
    return request.cookies.get("welfare_token")


async def current_caller(request: Request, engine: Engine = Depends(engine_of)) -> Caller:
    token = bearer_token(request)
    if not token:
        raise UNAUTHENTICATED
    caller = await run_in_threadpool(_load_caller, engine, token)
    if caller is None:
        raise UNAUTHENTICATED
    request.state.username = caller.user.username
    return caller
