"""Sign in for a bearer token; sign out revokes it. Repeated failures lock the account for a while."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine, select
from sqlmodel import Session

from service.deps import Caller, bearer_token, current_caller, engine_of
from service.errors import ApiError
from service.models import ApiToken, RoleGrant, User
from service.schemas import Credentials, TokenOut
from service.security import hash_password, new_token, token_digest, verify_password
from service.settings import get_settings

router = APIRouter(prefix="/api/auth", tags=["auth"])
BAD_CREDENTIALS = ApiError(401, "bad_credentials", "用户名或密码错误", "Wrong username or password")
_UNKNOWN_USER_HASH = hash_password(new_token())  # no one's password


def issue_token(engine: Engine, username: str, password: str) -> TokenOut:
    settings = get_settings()
    now = dt.datetime.now(dt.UTC)
    with Session(engine, expire_on_commit=False) as session, session.begin():
        user = session.execute(select(User).where(User.username == username)).scalars().first()
        if user is None:
            verify_password(_UNKNOWN_USER_HASH, password)  # as slow as a wrong password: names cannot be probed by timing
            raise BAD_CREDENTIALS
        if user.locked_until is not None and user.locked_until > now:
            raise ApiError(423, "locked", "登录失败次数过多，账户暂时锁定", "Too many failed sign-ins: the account is locked for now",
                           extra={"locked_until": user.locked_until.isoformat()})
        if not verify_password(user.password_hash, password):
            user.failed_logins += 1
            if user.failed_logins >= settings.max_failed_logins:
                user.locked_until = now + dt.timedelta(minutes=settings.lockout_minutes)
                user.failed_logins = 0
            session.add(user)
            session.commit()
            raise BAD_CREDENTIALS
        user.failed_logins, user.locked_until = 0, None
        token = new_token()
        expires = now + dt.timedelta(minutes=settings.token_ttl_minutes)
        session.add(ApiToken(token_digest=token_digest(token), user_id=user.id, expires_at=expires))
        grants = session.execute(select(RoleGrant).where(RoleGrant.user_id == user.id)).scalars().all()
    roles: dict[str, list[str]] = {}
    for grant in grants:
        roles.setdefault(str(grant.org_id), []).append(str(grant.role.value if hasattr(grant.role, "value") else grant.role))
    return TokenOut(access_token=token, expires_at=expires, username=user.username, roles=roles)


@router.post("/token", response_model=TokenOut, summary="Sign in / 登录")
async def token(credentials: Credentials, engine: Engine = Depends(engine_of)) -> TokenOut:
    return await run_in_threadpool(issue_token, engine, credentials.username, credentials.password)


def revoke(engine: Engine, token: str) -> None:
    with Session(engine) as session, session.begin():
        found = session.execute(select(ApiToken).where(ApiToken.token_digest == token_digest(token))).scalars().first()
        if found is not None:
            found.revoked = True
            session.add(found)


@router.post("/logout", status_code=204, summary="Sign out / 退出")
async def logout(request: Request, caller: Caller = Depends(current_caller), engine: Engine = Depends(engine_of)) -> None:
    await run_in_threadpool(revoke, engine, bearer_token(request))
