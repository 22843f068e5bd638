"""The member register: list, create, update, import (CSV / XLSX)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Path, Query, UploadFile
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from service.deps import Caller, current_caller, engine_of
from service.errors import FORBIDDEN, ApiError, invalid, not_found
from service.member_import import MAX_ROWS, ImportFormatError, import_members
from service.models import Member, MemberStatus, Relative
from service.schemas import (MAX_DB_ID, NO_CONTROL, ImportResult, MemberCreate, MemberOut, MemberUpdate, Page, RelativeIn,
                             RelativeOut)
from service.security import id_card_digest, mask_id_card
from service.settings import get_settings

router = APIRouter(prefix="/api/members", tags=["members"])
READERS = ("clerk", "chair", "committee", "auditor", "admin")
EDITORS = ("clerk", "admin")
MAX_UPLOAD = 5 * 1024 * 1024


def member_out(session: Session, m: Member) -> MemberOut:
    relatives = session.execute(select(Relative).where(Relative.member_id == m.id).order_by(Relative.id)).scalars().all()
    return MemberOut(id=m.id, member_no=m.member_no, org_id=m.org_id, name=m.name, id_card_masked=m.id_card_masked,
                     birth_date=m.birth_date, join_date=m.join_date, status=m.status.value if hasattr(m.status, "value") else m.status,
                     retired_on=m.retired_on,
                     relatives=[RelativeOut(id=r.id, name=r.name, relation=r.relation, birth_date=r.birth_date,
                                            relative_member_id=r.relative_member_id) for r in relatives])


def _org_for(caller: Caller, org_id: int | None, roles: tuple[str, ...]) -> int:
    orgs = caller.orgs_with(*roles)
    if org_id is None:
        if not orgs:
            raise FORBIDDEN
        return orgs[0]
    if org_id not in orgs:
        raise FORBIDDEN
    return org_id


def _set_relatives(session: Session, member: Member, relatives: list[RelativeIn]) -> None:
    for old in session.execute(select(Relative).where(Relative.member_id == member.id)).scalars():
        session.delete(old)
    for n, r in enumerate(relatives):
        linked = None
        if r.relative_member_no:
            linked = session.execute(select(Member).where(Member.member_no == r.relative_member_no)).scalars().first()
            if linked is None:
                raise invalid(f"relatives.{n}.relative_member_no", "该会员编号不存在", "No member with this number")
        session.add(Relative(member_id=member.id, name=r.name, relation=r.relation, birth_date=r.birth_date,
                             relative_member_id=linked.id if linked else None))


def list_members(engine: Engine, caller: Caller, org_id: int | None, q: str | None, page: int, page_size: int) -> Page:
    org = _org_for(caller, org_id, READERS)
    where = [Member.org_id == org]
    if q:
        where.append(or_(Member.name.contains(q), Member.member_no.contains(q)))
    with Session(engine) as session:
        total = session.execute(select(func.count()).select_from(Member).where(*where)).scalar_one()
        rows = session.execute(select(Member).where(*where).order_by(Member.member_no)
                               .offset((page - 1) * page_size).limit(page_size)).scalars().all()
        return Page(items=[member_out(session, m) for m in rows], total=total, page=page, page_size=page_size)


def create_member(engine: Engine, caller: Caller, org_id: int | None, body: MemberCreate) -> MemberOut:
    org = _org_for(caller, org_id, EDITORS)
    try:
        with Session(engine, expire_on_commit=False) as session, session.begin():
            m = Member(member_no=body.member_no, org_id=org, name=body.name,
                       id_card_digest=id_card_digest(get_settings().id_card_key, body.id_card), id_card_masked=mask_id_card(body.id_card),
                       birth_date=body.birth_date, join_date=body.join_date, status=MemberStatus(body.status))
            session.add(m)
            session.flush()
            _set_relatives(session, m, body.relatives)
            session.flush()
            return member_out(session, m)
    except IntegrityError:
        raise invalid("member_no", "会员编号已存在", "member_no already registered") from None


def update_member(engine: Engine, caller: Caller, member_id: int, body: MemberUpdate) -> MemberOut:
    with Session(engine, expire_on_commit=False) as session, session.begin():
        m = session.get(Member, member_id)
        if m is None or not caller.has(m.org_id, *READERS):
            raise not_found("会员", "Member")
        caller.require(m.org_id, *EDITORS)
        for name in ("name", "retired_on"):
            if getattr(body, name) is not None:
                setattr(m, name, getattr(body, name))
        if body.status is not None:
            m.status = MemberStatus(body.status)
        if body.relatives is not None:
            _set_relatives(session, m, body.relatives)
        session.add(m)
        session.flush()
        return member_out(session, m)


@router.get("", response_model=Page, summary="Member register / 会员台帐")
async def list_(org_id: int | None = Query(default=None, ge=1, le=MAX_DB_ID),
                q: str | None = Query(default=None, max_length=64, pattern=NO_CONTROL),
                page: int = Query(default=1, ge=1, le=100_000), page_size: int = Query(default=50, ge=1, le=500),
                caller: Caller = Depends(current_caller), engine: Engine = Depends(engine_of)) -> Page:
    return await run_in_threadpool(list_members, engine, caller, org_id, q, page, page_size)


@router.post("", status_code=201, response_model=MemberOut, summary="Register a member / 新增会员")
async def create(body: MemberCreate, org_id: int | None = Query(default=None, ge=1, le=MAX_DB_ID), caller: Caller = Depends(current_caller),
                 engine: Engine = Depends(engine_of)) -> MemberOut:
    return await run_in_threadpool(create_member, engine, caller, org_id, body)


@router.patch("/{member_id}", response_model=MemberOut, summary="Update a member / 修改会员")
async def update(member_id: Annotated[int, Path(ge=1, le=MAX_DB_ID)], body: MemberUpdate, caller: Caller = Depends(current_caller),
                 engine: Engine = Depends(engine_of)) -> MemberOut:
    return await run_in_threadpool(update_member, engine, caller, member_id, body)


@router.post("/import", response_model=ImportResult, summary=f"Import CSV / XLSX (≤{MAX_ROWS} rows) / 批量导入")
async def import_(file: UploadFile = File(...), org_id: int | None = Query(default=None, ge=1, le=MAX_DB_ID),
                  caller: Caller = Depends(current_caller), engine: Engine = Depends(engine_of)) -> ImportResult:
    org = _org_for(caller, org_id, EDITORS)
    content = await file.read(MAX_UPLOAD + 1)
    if len(content) > MAX_UPLOAD:
        raise ApiError(413, "too_large", "文件过大（上限 5 MB）", "The file is too large (5 MB at most)")
    try:
        result = await run_in_threadpool(import_members, engine, org, file.filename or "", content)
    except ImportFormatError as exc:
        raise invalid("file", exc.zh, exc.en) from None
    if result.errors:
        raise ApiError(422, "import_rejected", f"有 {len(result.errors)} 处错误，未导入任何会员",
                       f"{len(result.errors)} error(s): nothing was imported", field="file",
                       extra={"imported": 0, "errors": [e.model_dump() for e in result.errors]})
    return result
