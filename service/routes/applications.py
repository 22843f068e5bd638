"""Applications: file (JSON or an HTML form post), read, list, withdraw, resubmit, revoke, object."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from sqlalchemy import Engine, and_, func, or_, select
from sqlmodel import Session
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from rules.loader import default_registry
from rules.model import FrequencyScope
from service import audit_log, filing
from service.deps import Caller, current_caller, engine_of, temporal_of
from service.errors import FORBIDDEN, ApiError, invalid, not_found
from service.models import Application, ApprovalTask, AppStatus, Member, Relative
from service.schemas import (MAX_DB_ID, NO_CONTROL, Amendment, ApplicationCreate, ApplicationOut, Objection, Page, Revocation,
                             TaskOut)
from workflows.application import CHINA, ApplicationWorkflow
from workflows.types import ApplicationDetails, Snapshot

router = APIRouter(prefix="/api/applications", tags=["applications"])
STAFF = ("clerk", "chair", "committee", "auditor", "admin")
FILERS = ("clerk", "admin")
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_INT_FIELDS = ("member_id", "requested_fen", "relative_id")
FORBIDDEN_CODES = {"wrong_role", "own_application", "relative", "not_assignee", "approver_audits", "not_owner"}
_INTEGER = re.compile(r"-?[0-9]{1,20}")  # ASCII digits only: "²".isdigit() is true, yet int("²") fails
AppId = Annotated[str, Path(pattern=NO_CONTROL, description="the application id (its workflow id)")]


# --- reading the request ------------------------------------------------------------------

def _form_to_dict(form) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in form.multi_items():
        if isinstance(value, str) and value.strip() == "":
            continue
        if key == "evidence":
            data.setdefault("evidence", []).append(value)
        elif key in _INT_FIELDS and isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
            data[key] = int(value.strip())
        elif key == "household":
            try:
                data[key] = json.loads(value)
            except json.JSONDecodeError:
                data[key] = value
        else:
            data[key] = value
    return data


async def application_body(request: Request) -> ApplicationCreate:
    """The same model from a JSON body or an HTML form post."""
    content_type = request.headers.get("content-type", "")
    try:
        if content_type.startswith(FORM_TYPES):
            data = _form_to_dict(await request.form())
        else:
            data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise invalid("(body)", "请求内容不是有效的 JSON", "The body is not valid JSON") from None
    try:
        return ApplicationCreate.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema with its nested models written in place: the body is read by hand (JSON or
    a form), so FastAPI registers no component for it and a ``$ref`` would point at nothing."""
    schema = model.model_json_schema(ref_template="#/$defs/{model}")
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return inline(defs[ref.rsplit("/", 1)[1]]) | {k: inline(v) for k, v in node.items() if k != "$ref"}
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return inline(schema)


BODY_DOC = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": inline_schema(ApplicationCreate)},
    "application/x-www-form-urlencoded": {"schema": inline_schema(ApplicationCreate)},
}}}


# --- checks a person must pass before anything is recorded -----------------------------------

def check_filing(engine: Engine, caller: Caller, body: ApplicationCreate) -> tuple[Member, ApplicationDetails]:
    member_id = body.member_id or caller.user.member_id
    if member_id is None:
        raise invalid("member_id", "请选择为哪位会员申请", "Say which member this application is for")
    today = dt.datetime.now(CHINA).date()
    with Session(engine) as session:
        member = session.get(Member, member_id)
        if member is None:
            raise invalid("member_id", "会员不存在", "No such member")
        if not (member.id == caller.user.member_id or caller.has(member.org_id, *FILERS)):
            raise FORBIDDEN
        relative = session.get(Relative, body.relative_id) if body.relative_id else None
    if body.event_date > today:
        raise invalid("event_date", "事件日期不能晚于今天", "The event date may not be in the future")
    loaded = default_registry().for_date(body.event_date)
    if loaded is None:
        raise invalid("event_date", f"{body.event_date} 没有生效的福利政策", f"No policy is in force on {body.event_date}")
    benefit = loaded.policy.benefit(body.benefit)
    if benefit is None:
        known = ", ".join(b.code for b in loaded.policy.benefits)
        raise invalid("benefit", f"未知的福利类型：{body.benefit}", f"Unknown benefit {body.benefit!r}; known: {known}")
    unknown = [code for code in body.evidence if loaded.policy.evidence_item(code) is None]
    if unknown:
        raise invalid("evidence", f"未知的证明材料：{'、'.join(unknown)}", f"Unknown evidence: {', '.join(unknown)}")
    if body.relative_id is not None and (relative is None or relative.member_id != member.id):
        raise invalid("relative_id", "该亲属未在此会员名下登记", "This relative is not registered for the member")
    if benefit.eligible_relations is not None and body.relative_id is None:
        raise invalid("relative_id", "请选择去世的亲属", "Say which registered relative this is about")
    if benefit.frequency.scope in (FrequencyScope.child, FrequencyScope.child_school_year) and not body.event_key:
        raise invalid("event_key", "请填写子女姓名", "Give the child's name (event_key)")
    if benefit.level_caps_fen is not None and body.school_level is None:
        raise invalid("school_level", "请选择就读学段", "Give the school level")
    details = ApplicationDetails(requested_fen=body.requested_fen, evidence=body.evidence, event_key=body.event_key,
                                 relative_id=body.relative_id, school_level=body.school_level.value if body.school_level else None,
                                 household=body.household.model_dump() if body.household else None, note=body.note)
    return member, details


# --- reading applications -----------------------------------------------------------------

def can_read(caller: Caller, app: Application) -> bool:
    return app.member_id == caller.user.member_id or caller.has(app.org_id, *STAFF)


def task_out(task: ApprovalTask, **extra) -> TaskOut:
    return TaskOut(id=task.id, application_id=task.application_id, stage=task.stage, role=str(task.role.value if hasattr(task.role, "value") else task.role),
                   assignee_user_id=task.assignee_user_id, status=str(task.status.value if hasattr(task.status, "value") else task.status),
                   outcome=task.outcome, comment=task.comment, decided_by_user_id=task.decided_by_user_id, due_at=task.due_at,
                   reminded=task.reminded, escalated=task.escalated, created_at=task.created_at, decided_at=task.decided_at, **extra)


def readable(session: Session, caller: Caller, app_id: str) -> Application:
    """The application if the caller may read it: 404 when there is none, 403 when not theirs to read."""
    app = session.get(Application, app_id)
    if app is None:
        raise not_found("申请", "Application")
    if not can_read(caller, app):
        raise FORBIDDEN
    return app


def application_out(engine: Engine, app_id: str, caller: Caller, snapshot: Snapshot | None = None) -> ApplicationOut:
    with Session(engine) as session:
        app = readable(session, caller, app_id)
        member = session.get(Member, app.member_id)
        tasks = session.execute(select(ApprovalTask).where(ApprovalTask.application_id == app_id)
                                .order_by(ApprovalTask.created_at)).scalars().all()
    out = ApplicationOut(**app.model_dump(exclude={"history", "filed_by_user_id", "idempotency_key", "claim_key",
                                                    "projection_seq"}),
                         member_name=member.name if member else None, tasks=[task_out(t) for t in tasks], history=app.history)
    if snapshot is not None and len(snapshot.history) > len(app.history):
        # The workflow is a step ahead of its projection: answer with the newer state.
        out.status, out.stage, out.approved_fen = snapshot.status, snapshot.stage, snapshot.approved_fen
        if snapshot.decision is not None:
            d = snapshot.decision
            out.decision, out.outcome = d, d["outcome"]
            out.policy_version, out.policy_hash = d["policy_version"], d["policy_hash"]
        out.history = [asdict(h) | {"seq": n} for n, h in enumerate(snapshot.history, start=1)]
    return out


def list_applications(engine: Engine, caller: Caller, member_id: int | None, benefit: str | None, status: str | None,
                      date_from: dt.date | None, date_to: dt.date | None, page: int, page_size: int) -> Page:
    staff_orgs = caller.orgs_with(*STAFF)
    scope = [Application.org_id.in_(staff_orgs)] if staff_orgs else []
    if caller.user.member_id is not None and caller.member_org_id not in staff_orgs:
        scope.append(Application.member_id == caller.user.member_id)  # staff of their own union see it already
    if not scope:
        return Page(items=[], total=0, page=page, page_size=page_size)
    filters = [or_(*scope)]
    if member_id is not None:
        filters.append(Application.member_id == member_id)
    if benefit:
        filters.append(Application.benefit == benefit)
    if status:
        if status not in AppStatus.__members__:  # PostgreSQL refuses to compare its enum with an unknown label
            return Page(items=[], total=0, page=page, page_size=page_size)
        filters.append(Application.status == AppStatus(status))
    if date_from:
        filters.append(Application.created_at >= dt.datetime.combine(date_from, dt.time(0), CHINA))
    if date_to and date_to < dt.date.max:  # the last day there is has no day after it: no upper bound then
        filters.append(Application.created_at < dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time(0), CHINA))
    where = and_(*filters)
    with Session(engine) as session:
        total = session.execute(select(func.count()).select_from(Application).where(where)).scalar_one()
        rows = session.execute(
            select(Application, Member.name).join(Member, Member.id == Application.member_id).where(where)
            .order_by(Application.created_at.desc(), Application.id.desc()).offset((page - 1) * page_size).limit(page_size)
        ).all()
    items = [ApplicationOut(**app.model_dump(exclude={"history", "filed_by_user_id", "idempotency_key", "claim_key",
                                                      "projection_seq"}), member_name=name) for app, name in rows]
    return Page(items=items, total=total, page=page, page_size=page_size)


# --- refusals from the workflow -----------------------------------------------------------

def refusal(engine: Engine, exc: WorkflowUpdateFailedError, app_id: str, caller: Caller, action: str, task_id: str | None = None) -> ApiError:
    """An action the workflow refused: recorded in the audit log (Temporal keeps no rejected Updates)."""
    cause = exc.cause
    details = cause.details[0] if getattr(cause, "details", None) else {}
    code = details.get("code", "refused")
    zh = details.get("zh", "操作被拒绝")
    en = details.get("en", str(cause))
    audit_log.append_with_retry(engine, f"refused:{uuid.uuid4().hex}", app_id, caller.user.username, "refused",
                                {"attempted": action, "task_id": task_id, "code": code, "reason_zh": zh, "reason_en": en})
    return ApiError(403 if code in FORBIDDEN_CODES else 409, code, zh, en)


async def _update(engine: Engine, client: Client, caller: Caller, app_id: str, update, *args, action: str, task_id: str | None = None):
    handle = client.get_workflow_handle(app_id)
    try:
        return await handle.execute_update(update, args=list(args))
    except WorkflowUpdateFailedError as exc:
        raise await run_in_threadpool(refusal, engine, exc, app_id, caller, action, task_id) from None
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        raise ApiError(409, "finished", "该申请的流程已经结束", "This application's process has already finished") from None


def _app_for_action(engine: Engine, caller: Caller, app_id: str) -> Application:
    with Session(engine) as session:
        app = session.get(Application, app_id)
    if app is None or not can_read(caller, app):
        raise not_found("申请", "Application")
    return app


# --- endpoints ----------------------------------------------------------------------------

@router.post("", status_code=201, response_model=ApplicationOut, openapi_extra=BODY_DOC, summary="File an application / 提交申请")
async def create_application(
    request: Request,
    response: Response,
    body: ApplicationCreate = Depends(application_body),
    idempotency_key: str | None = Header(default=None, max_length=128),
    caller: Caller = Depends(current_caller),
    engine: Engine = Depends(engine_of),
    client: Client = Depends(temporal_of),
) -> ApplicationOut:
    member, details = await run_in_threadpool(check_filing, engine, caller, body)
    actor = caller.actor(member.org_id)
    app, created = await run_in_threadpool(
        lambda: filing.record(engine, org_id=member.org_id, member_id=member.id, benefit=body.benefit,
                              event_date=body.event_date, details=details, filed_by=actor, idempotency_key=idempotency_key)
    )
    snapshot = await filing.start_and_assess(client, filing.to_input(app, actor), request.app.state.task_queue)
    if not created:
        response.status_code = 200
    return await run_in_threadpool(application_out, engine, app.id, caller, snapshot)


@router.get("", response_model=Page, summary="List applications, newest first / 申请列表")
async def list_(
    member_id: int | None = Query(default=None, ge=1, le=MAX_DB_ID),
    benefit: str | None = Query(default=None, max_length=48, pattern=NO_CONTROL),
    status: AppStatus | None = Query(default=None),
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    page: int = Query(default=1, ge=1, le=100_000),
    page_size: int = Query(default=20, ge=1, le=200),
    caller: Caller = Depends(current_caller),
    engine: Engine = Depends(engine_of),
) -> Page:
    return await run_in_threadpool(list_applications, engine, caller, member_id, benefit, status.value if status else None,
                                   date_from, date_to, page, page_size)


@router.get("/{app_id}", response_model=ApplicationOut, summary="One application with its decision and history / 申请详情")
async def get_application(app_id: AppId, caller: Caller = Depends(current_caller), engine: Engine = Depends(engine_of)) -> ApplicationOut:
    return await run_in_threadpool(application_out, engine, app_id[:40], caller)


@router.post("/{app_id}/withdraw", response_model=ApplicationOut, summary="Withdraw before payment / 撤回")
async def withdraw(app_id: AppId, caller: Caller = Depends(current_caller), engine: Engine = Depends(engine_of),
                   client: Client = Depends(temporal_of)) -> ApplicationOut:
    app = await run_in_threadpool(_app_for_action, engine, caller, app_id[:40])
    await _update(engine, client, caller, app.id, ApplicationWorkflow.withdraw, caller.actor(app.org_id), action="withdraw")
    return await run_in_threadpool(application_out, engine, app.id, caller)


@router.post("/{app_id}/resubmit", response_model=ApplicationOut, summary="Amend and resubmit a returned application / 补充后重新提交")
async def resubmit(app_id: AppId, body: Amendment, caller: Caller = Depends(current_caller), engine: Engine = Depends(engine_of),
                   client: Client = Depends(temporal_of)) -> ApplicationOut:
    app = await run_in_threadpool(_app_for_action, engine, caller, app_id[:40])
    details = ApplicationDetails(requested_fen=body.requested_fen, evidence=body.evidence, event_key=body.event_key,
                                 relative_id=body.relative_id, school_level=body.school_level.value if body.school_level else None,
                                 household=body.household.model_dump() if body.household else None, note=body.note)
    await _update(engine, client, caller, app.id, ApplicationWorkflow.resubmit, caller.actor(app.org_id), details, action="resubmit")
    snapshot = await client.get_workflow_handle(app.id).execute_update(ApplicationWorkflow.await_assessment)
    return await run_in_threadpool(application_out, engine, app.id, caller, snapshot)


@router.post("/{app_id}/revoke", response_model=ApplicationOut, summary="Revoke an approval before payment / 撤销批准")
async def revoke(app_id: AppId, body: Revocation, caller: Caller = Depends(current_caller), engine: Engine = Depends(engine_of),
                 client: Client = Depends(temporal_of)) -> ApplicationOut:
    app = await run_in_threadpool(_app_for_action, engine, caller, app_id[:40])
    await _update(engine, client, caller, app.id, ApplicationWorkflow.revoke, caller.actor(app.org_id), body.reason, action="revoke")
    return await run_in_threadpool(application_out, engine, app.id, caller)


@router.post("/{app_id}/objections", response_model=ApplicationOut, summary="Object during the public notice / 公示异议")
async def object_(app_id: AppId, body: Objection, caller: Caller = Depends(current_caller), engine: Engine = Depends(engine_of),
                  client: Client = Depends(temporal_of)) -> ApplicationOut:
    app = await run_in_threadpool(_app_for_action, engine, caller, app_id[:40])
    await _update(engine, client, caller, app.id, ApplicationWorkflow.object, caller.actor(app.org_id), body.text, action="object")
    return await run_in_threadpool(application_out, engine, app.id, caller)
