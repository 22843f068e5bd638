"""The pages. Each one calls the same functions as the JSON API: the API stays the contract."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy import Engine, select
from sqlmodel import Session
from temporalio.client import Client

from rules.explain import yuan
from rules.loader import default_registry
from rules.messages import field_path, reason_zh
from rules.model import FrequencyScope, Policy
from service import evidence as evidence_store
from service import filing
from service.audit import replay, timeline
from service.audit.history import decode, fetch_one
from service.deps import Caller, _load_caller, engine_of, temporal_of
from service.errors import ApiError
from service.member_import import ImportFormatError, import_members
from service.models import Application, ApprovalTask, Fund, Member, Relative, TaskStatus
from service.routes import evidence as evidence_routes
from service.routes.applications import STAFF, _app_for_action, _form_to_dict, _update, application_out, check_filing, list_applications
from service.routes import campaigns
from service.routes.auth import issue_token, revoke
from service.routes.funds import _raise, list_funds
from service.routes.tasks import inbox
from service.schemas import MAX_DB_ID, ApplicationCreate
from service.security import mask_personal_numbers
from service.web.i18n import FORM, LANG_COOKIE, ROUTE, STAGE, STATUS, label, language, translator
from workflows.application import CHINA, ApplicationWorkflow
from workflows.types import BATCH_SIGN_OFF, Act, ApplicationDetails

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
TOKEN_COOKIE = "welfare_token"
SAFE_ID = re.compile(r"[A-Za-z0-9:_.-]{1,80}")  # application and task ids; anything else names nothing
YUAN = re.compile(r"[0-9]{1,9}(\.[0-9]{1,2})?")  # an amount as people type it, in yuan


def fen_of(typed: str) -> int | None:
    """Yuan as typed ("12", "12.5", "12.34") in fen, exactly; None for anything else."""
    return int(Decimal(typed) * 100) if YUAN.fullmatch(typed) else None


# --- plumbing -----------------------------------------------------------------------------

def csrf_for(token: str | None) -> str:
    return hmac.new((token or "").encode(), b"csrf", hashlib.sha256).hexdigest()[:32]


async def page_caller(request: Request, engine: Engine = Depends(engine_of)) -> Caller | None:
    token = request.cookies.get(TOKEN_COOKIE)
    return await run_in_threadpool(_load_caller, engine, token) if token else None


def to_login(request: Request) -> RedirectResponse:
    return RedirectResponse(f"/login?next={request.url.path}", status_code=303)


def render(request: Request, name: str, caller: Caller | None, status_code: int = 200, **context: Any) -> HTMLResponse:
    lang = language(request)
    context |= {
        "tr": translator(lang), "lang": lang, "caller": caller, "yuan": yuan,
        "csrf": csrf_for(request.cookies.get(TOKEN_COOKIE)),
        "status_label": lambda s: label(STATUS, s, lang), "stage_label": lambda s: label(STAGE, s, lang),
        "form_label": lambda s: label(FORM, s, lang), "route_label": lambda s: label(ROUTE, s, lang),
        "is_staff": bool(caller and caller.orgs_with(*STAFF)),
        "is_auditor": bool(caller and caller.orgs_with("auditor", "chair", "admin")),
        "is_admin": bool(caller and caller.orgs_with("admin")),
        "fresh_key": uuid.uuid4().hex,  # one per rendered form: a double submit is one action
    }
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    if request.query_params.get("lang") in ("zh", "en"):
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax")
    return response


async def form_of(request: Request) -> dict[str, Any]:
    form = await request.form()
    if form.get("csrf") != csrf_for(request.cookies.get(TOKEN_COOKIE)):
        raise ApiError(403, "csrf", "页面已过期，请刷新后重试", "The page has expired: reload it and try again")
    return form


def error_text(exc: ApiError, lang: str) -> str:
    return exc.en if lang == "en" else exc.zh


def policy_today() -> Policy:
    return default_registry().for_date(dt.datetime.now(CHINA).date()).policy


def benefit_catalogue(policy: Policy) -> list[dict[str, Any]]:
    """What the form needs to adapt itself to a benefit: evidence, relative, child, school level, cap."""
    out = []
    for b in policy.benefits:
        caps = b.cap_fen if b.cap_fen is not None else max([*(b.tier_caps_fen or {}).values(), *(b.level_caps_fen or {}).values()])
        out.append({
            "code": b.code, "zh": b.name_zh, "en": b.name_en, "form": b.form.value, "route": b.route.kind.value,
            "notice_days": b.route.public_notice_working_days, "cap_yuan": yuan(caps), "cap_varies": b.cap_fen is None,
            "evidence": [{"code": e, "zh": policy.evidence_item(e).name_zh, "en": policy.evidence_item(e).name_en} for e in b.evidence],
            "needs_relative": b.eligible_relations is not None,
            "needs_child": b.frequency.scope in (FrequencyScope.child, FrequencyScope.child_school_year),
            "needs_school_level": b.level_caps_fen is not None,
            "needs_file": b.requires_active_file,
        })
    return out


def members_for(engine: Engine, caller: Caller) -> list[Member]:
    orgs = caller.orgs_with("clerk", "admin")
    with Session(engine) as session:
        if orgs:
            return list(session.execute(select(Member).where(Member.org_id.in_(orgs)).order_by(Member.member_no)).scalars())
        own = session.get(Member, caller.user.member_id) if caller.user.member_id else None
        return [own] if own else []


def relatives_for(engine: Engine, member_ids: list[int]) -> dict[int, list[dict]]:
    with Session(engine) as session:
        rows = session.execute(select(Relative).where(Relative.member_id.in_(member_ids or [-1]))).scalars().all()
    out: dict[int, list[dict]] = {}
    for r in rows:
        out.setdefault(r.member_id, []).append({"id": r.id, "name": r.name, "relation": r.relation})
    return out


# --- signing in -----------------------------------------------------------------------------

@router.get("/", response_class=HTMLResponse)
async def home(request: Request, caller: Caller | None = Depends(page_caller)) -> Response:
    if caller is None:
        return to_login(request)
    return RedirectResponse("/inbox" if caller.orgs_with(*STAFF) else "/my", status_code=303)


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request) -> HTMLResponse:
    return render(request, "login.html", None, next=request.query_params.get("next", "/"))


@router.post("/login")
async def login(request: Request, engine: Engine = Depends(engine_of)) -> Response:
    form = await request.form()
    target = str(form.get("next") or "/")
    if not target.startswith("/") or target.startswith("//"):
        target = "/"
    try:
        token = await run_in_threadpool(issue_token, engine, str(form.get("username", ""))[:64], str(form.get("password", ""))[:256])
    except ApiError as exc:
        return render(request, "login.html", None, status_code=exc.status, error=error_text(exc, language(request)),
                      next=target, username=str(form.get("username", ""))[:64])
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(TOKEN_COOKIE, token.access_token, httponly=True, samesite="lax",
                        max_age=int((token.expires_at - dt.datetime.now(dt.UTC)).total_seconds()))
    return response


@router.post("/logout")
async def logout(request: Request, engine: Engine = Depends(engine_of)) -> Response:
    token = request.cookies.get(TOKEN_COOKIE)
    if token:
        await run_in_threadpool(revoke, engine, token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(TOKEN_COOKIE)
    return response


# --- applicants -----------------------------------------------------------------------------

APPLY_FIELDS = {"member_id", "benefit", "event_date", "requested_yuan", "relative_id", "event_key", "school_level", "evidence"}


async def _apply_page(request: Request, engine: Engine, caller: Caller, errors: dict | None = None, values: dict | None = None,
                      status_code: int = 200) -> HTMLResponse:
    errors = dict(errors or {})
    for name in [n for n in errors if n not in APPLY_FIELDS | {"form"}]:  # shown with the form, never lost
        errors.setdefault("form", f"{name}: {errors.pop(name)}")
    policy = policy_today()
    members = await run_in_threadpool(members_for, engine, caller)
    relatives = await run_in_threadpool(relatives_for, engine, [m.id for m in members])
    return render(request, "apply.html", caller, status_code=status_code, benefits=benefit_catalogue(policy), members=members,
                  relatives={str(k): v for k, v in relatives.items()}, errors=errors or {}, values=values or {},
                  today=dt.datetime.now(CHINA).date().isoformat())


@router.get("/apply", response_class=HTMLResponse)
async def apply_page(request: Request, caller: Caller | None = Depends(page_caller), engine: Engine = Depends(engine_of)) -> Response:
    if caller is None:
        return to_login(request)
    return await _apply_page(request, engine, caller)


@router.post("/apply")
async def apply(request: Request, caller: Caller | None = Depends(page_caller), engine: Engine = Depends(engine_of),
                client: Client = Depends(temporal_of)) -> Response:
    if caller is None:
        return to_login(request)
    form = await form_of(request)
    data = _form_to_dict(form)
    idempotency_key = str(data.pop("idempotency_key", "") or "")[:128] or None
    data.pop("csrf", None)
    typed = str(data.pop("requested_yuan", "")).strip()
    fen = fen_of(typed) if typed else 0  # people type yuan; the API speaks fen
    data["requested_fen"] = typed if fen is None else fen
    values = data | {"requested_yuan": typed}
    lang = language(request)
    try:
        body = ApplicationCreate.model_validate(data)
    except ValidationError as exc:
        errors = {}
        for err in exc.errors():
            name = field_path(err["loc"])
            name = "requested_yuan" if name == "requested_fen" else name
            errors.setdefault(name, err["msg"] if lang == "en" else reason_zh(err))
        return await _apply_page(request, engine, caller, errors, values, 422)
    try:
        member, details = await run_in_threadpool(check_filing, engine, caller, body)
    except ApiError as exc:
        name = "requested_yuan" if exc.field == "requested_fen" else (exc.field or "form")
        return await _apply_page(request, engine, caller, {name: error_text(exc, lang)}, values, exc.status)
    actor = caller.actor(member.org_id)
    app, _ = await run_in_threadpool(
        lambda: filing.record(engine, org_id=member.org_id, member_id=member.id, benefit=body.benefit, event_date=body.event_date,
                              details=details, filed_by=actor, idempotency_key=idempotency_key))
    await filing.start_and_assess(client, filing.to_input(app, actor), request.app.state.task_queue)
    return RedirectResponse(f"/applications/{app.id}", status_code=303)


@router.get("/my", response_class=HTMLResponse)
async def my_applications(request: Request, caller: Caller | None = Depends(page_caller), engine: Engine = Depends(engine_of)) -> Response:
    if caller is None:
        return to_login(request)
    status = request.query_params.get("status") or None
    page = await run_in_threadpool(list_applications, engine, caller, caller.user.member_id if not caller.orgs_with(*STAFF) else None,
                                   None, status, None, None, 1, 100)
    return render(request, "my.html", caller, applications=page.items, total=page.total, status=status, statuses=list(STATUS))


def _detail_extras(engine: Engine, caller: Caller, app) -> dict[str, Any]:
    with Session(engine) as session:
        member = session.get(Member, app.member_id)
        tasks = session.execute(select(ApprovalTask).where(ApprovalTask.application_id == app.id,
                                                           ApprovalTask.status == TaskStatus.open)).scalars().all()
        fund = None
        if app.decision and app.decision.get("fund"):
            fund = session.execute(select(Fund).where(Fund.org_id == app.org_id, Fund.code == app.decision["fund"])
                                   .order_by(Fund.year.desc())).scalars().first()
    roles = caller.roles.get(app.org_id, set())
    mine = [t for t in tasks if (t.role.value if hasattr(t.role, "value") else t.role) in roles
            and t.assignee_user_id in (None, caller.user.id)]
    return {"member": member, "my_tasks": mine, "fund": fund}


async def _detail(request: Request, engine: Engine, caller: Caller, app_id: str, error: str | None = None,
                  status_code: int = 200) -> HTMLResponse:
    try:
        app = await run_in_threadpool(application_out, engine, app_id, caller)
    except ApiError as exc:
        return render(request, "error.html", caller, status_code=exc.status, error=error_text(exc, language(request)))
    extras = await run_in_threadpool(_detail_extras, engine, caller, app)
    policy = policy_today()
    evidence = [{"code": e, "name": (policy.evidence_item(e).name_en if language(request) == "en" else policy.evidence_item(e).name_zh)
                 if policy.evidence_item(e) else e} for e in app.details.get("evidence", [])]
    benefit = policy.benefit(app.benefit)
    owner = app.member_id == caller.user.member_id
    files = await run_in_threadpool(evidence_store.files_of, engine, app.id)
    may_upload = evidence_routes.may_upload(caller, app) and app.status in evidence_store.UPLOAD_STATUSES
    wanted = benefit.evidence if benefit else []
    kinds = sorted(({"code": e.code, "name": e.name_en if language(request) == "en" else e.name_zh}
                    for e in evidence_store.kinds_for(app.event_date)), key=lambda k: k["code"] not in wanted)
    return render(request, "application.html", caller, status_code=status_code, app=app, error=error, evidence=evidence,
                  benefit=benefit, owner=owner, files=files, may_upload=may_upload, evidence_kinds=kinds,
                  kind_names={k["code"]: k["name"] for k in kinds},
                  max_mb=request.app.state.settings.evidence_max_bytes // (1024 * 1024), **extras)


@router.get("/applications/{app_id}", response_class=HTMLResponse)
async def application_page(app_id: str, request: Request, caller: Caller | None = Depends(page_caller),
                           engine: Engine = Depends(engine_of)) -> Response:
    if caller is None:
        return to_login(request)
    if not SAFE_ID.fullmatch(app_id):
        return render(request, "error.html", caller, status_code=404, error=translator(language(request))("申请不存在", "No such application"))
    return await _detail(request, engine, caller, app_id[:40])


@router.post("/applications/{app_id}/withdraw")
async def withdraw(app_id: str, request: Request, caller: Caller | None = Depends(page_caller), engine: Engine = Depends(engine_of),
                   client: Client = Depends(temporal_of)) -> Response:
    if caller is None:
        return to_login(request)
    if not SAFE_ID.fullmatch(app_id):
        return render(request, "error.html", caller, status_code=404, error=translator(language(request))("申请不存在", "No such application"))
    await form_of(request)
    try:
        app = await run_in_threadpool(_app_for_action, engine, caller, app_id[:40])
        await _update(engine, client, caller, app.id, ApplicationWorkflow.withdraw, caller.actor(app.org_id), action="withdraw")
    except ApiError as exc:
        return await _detail(request, engine, caller, app_id[:40], error_text(exc, language(request)), exc.status)
    return RedirectResponse(f"/applications/{app_id[:40]}", status_code=303)


@router.post("/applications/{app_id}/evidence")
async def upload_evidence(app_id: str, request: Request, caller: Caller | None = Depends(page_caller),
                          engine: Engine = Depends(engine_of)) -> Response:
    if caller is None:
        return to_login(request)
    if not SAFE_ID.fullmatch(app_id):
        return render(request, "error.html", caller, status_code=404, error=translator(language(request))("申请不存在", "No such application"))
    settings = request.app.state.settings
    lang = language(request)
    try:
        app = await run_in_threadpool(evidence_routes.open_for_upload, engine, settings, caller, app_id[:40])
    except ApiError as exc:
        if exc.status in (403, 404):
            return render(request, "error.html", caller, status_code=exc.status, error=error_text(exc, lang))
        return await _detail(request, engine, caller, app_id[:40], error_text(exc, lang), exc.status)
    try:
        upload = await evidence_store.read_upload(request, settings, {"kind", "csrf"})
        if upload.fields.get("csrf") != csrf_for(request.cookies.get(TOKEN_COOKIE)):
            upload.close()
            return render(request, "error.html", caller, status_code=403,
                          error=translator(lang)("页面已过期，请刷新后重试", "The page has expired: reload it and try again"))
        await evidence_routes.receive(request, engine, caller, app, upload)
    except ApiError as exc:
        return await _detail(request, engine, caller, app.id, error_text(exc, lang), exc.status)
    return RedirectResponse(f"/applications/{app.id}#evidence-files", status_code=303)


@router.post("/applications/{app_id}/resubmit")
async def resubmit(app_id: str, request: Request, caller: Caller | None = Depends(page_caller), engine: Engine = Depends(engine_of),
                   client: Client = Depends(temporal_of)) -> Response:
    if caller is None:
        return to_login(request)
    if not SAFE_ID.fullmatch(app_id):
        return render(request, "error.html", caller, status_code=404, error=translator(language(request))("申请不存在", "No such application"))
    form = await form_of(request)
    lang = language(request)
    try:
        app = await run_in_threadpool(_app_for_action, engine, caller, app_id[:40])
        typed = str(form.get("requested_yuan") or "0").strip()
        amount = fen_of(typed)
        if amount is None:
            raise ValueError(typed)
        details = ApplicationDetails(**(app.details | {"requested_fen": amount, "evidence": form.getlist("evidence") or app.details["evidence"],
                                                       "note": mask_personal_numbers(str(form.get("note") or "")[:2000]) or None}))
        await _update(engine, client, caller, app.id, ApplicationWorkflow.resubmit, caller.actor(app.org_id), details, action="resubmit")
    except ValueError:
        return await _detail(request, engine, caller, app_id[:40], "金额应为数字" if lang == "zh" else "The amount must be a number", 422)
    except ApiError as exc:
        return await _detail(request, engine, caller, app_id[:40], error_text(exc, lang), exc.status)
    return RedirectResponse(f"/applications/{app_id[:40]}", status_code=303)


# --- approvers ------------------------------------------------------------------------------

@router.get("/inbox", response_class=HTMLResponse)
async def inbox_page(request: Request, caller: Caller | None = Depends(page_caller), engine: Engine = Depends(engine_of),
                     signed_off: tuple[str, dict] | None = None) -> Response:
    if caller is None:
        return to_login(request)
    stage = request.query_params.get("stage") or None
    everything = await run_in_threadpool(inbox, engine, caller, None, 1, 200)
    counts: dict[str, int] = {}
    for task in everything.items:
        counts[task.stage] = counts.get(task.stage, 0) + 1
    shown = [t for t in everything.items if stage is None or t.stage == stage]
    batches = await run_in_threadpool(batch_months, engine, caller)
    return render(request, "inbox.html", caller, tasks=shown, counts=counts, stage=stage, total=everything.total,
                  batches=batches, signed_off=signed_off)


def batch_months(engine: Engine, caller: Caller) -> dict[str, int]:
    """Months with scheduled gifts waiting for this chair's sign-off, and how many."""
    orgs = caller.orgs_with("chair")
    if not orgs:
        return {}
    query = (select(Application.event_date).join(ApprovalTask, ApprovalTask.application_id == Application.id)
             .where(ApprovalTask.stage == BATCH_SIGN_OFF, ApprovalTask.status == TaskStatus.open, ApprovalTask.org_id.in_(orgs)))
    with Session(engine) as session:
        months: dict[str, int] = {}
        for (day,) in session.execute(query):
            months[day.strftime("%Y-%m")] = months.get(day.strftime("%Y-%m"), 0) + 1
    return dict(sorted(months.items()))


@router.post("/inbox/batches/{month}/sign-off")
async def sign_off_batch(month: str, request: Request, caller: Caller | None = Depends(page_caller),
                         engine: Engine = Depends(engine_of), client: Client = Depends(temporal_of)) -> Response:
    if caller is None:
        return to_login(request)
    await form_of(request)
    tr = translator(language(request))
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
        return render(request, "error.html", caller, status_code=422, error=tr("月份格式应为 YYYY-MM", "The month reads YYYY-MM"))
    try:
        result = await campaigns.sign_off(month, caller, engine, client)
    except ApiError as exc:
        return render(request, "error.html", caller, status_code=exc.status, error=error_text(exc, language(request)))
    return await inbox_page(request, caller, engine, signed_off=(month, result))


@router.post("/tasks/{task_id}/decision")
async def decide(task_id: str, request: Request, caller: Caller | None = Depends(page_caller), engine: Engine = Depends(engine_of),
                 client: Client = Depends(temporal_of)) -> Response:
    if caller is None:
        return to_login(request)
    form = await form_of(request)
    if not SAFE_ID.fullmatch(task_id):
        return render(request, "error.html", caller, status_code=404, error=translator(language(request))("任务不存在", "No such task"))
    with Session(engine) as session:
        task = session.get(ApprovalTask, task_id[:80])
    if task is None or task.org_id not in caller.roles:
        return render(request, "error.html", caller, status_code=404, error=translator(language(request))("任务不存在", "No such task"))
    amount = str(form.get("amount_yuan") or "").strip()
    comment = mask_personal_numbers(str(form.get("comment") or "")[:2000]) or None
    act = Act(caller.actor(task.org_id), task.id, str(form.get("action")), comment,
              fen_of(amount))
    try:
        await _update(engine, client, caller, task.application_id, ApplicationWorkflow.act, act, action=act.action, task_id=task.id)
    except ApiError as exc:
        return await _detail(request, engine, caller, task.application_id, error_text(exc, language(request)), exc.status)
    return RedirectResponse(f"/applications/{task.application_id}", status_code=303)


# --- auditors -------------------------------------------------------------------------------

@router.get("/audit", response_class=HTMLResponse)
async def audit_page(request: Request, caller: Caller | None = Depends(page_caller), engine: Engine = Depends(engine_of),
                     client: Client = Depends(temporal_of)) -> Response:
    if caller is None:
        return to_login(request)
    tr = translator(language(request))
    if not caller.orgs_with("auditor", "chair", "admin"):
        return render(request, "error.html", caller, status_code=403, error=tr("仅限经审、主席和管理员", "Auditors, chairs and admins only"))
    app_id = (request.query_params.get("application_id") or "").strip()[:40]
    entries, replayed, error = None, None, None
    if app_id:
        try:
            app = await run_in_threadpool(_app_for_action, engine, caller, app_id)
            if app.org_id not in caller.orgs_with("auditor", "chair", "admin"):
                raise ApiError(403, "forbidden", "您没有权限查看该申请", "You may not see this application")
            rec = decode(await fetch_one(client, app_id))
            entries = await run_in_threadpool(timeline.build, engine, rec)
            if request.query_params.get("replay"):
                replayed = (await replay.replay([rec.history]))[0]
        except ApiError as exc:
            error = error_text(exc, language(request))
    chain = None
    if request.query_params.get("verify"):
        from service.audit.chain import verify_chain

        chain = await run_in_threadpool(verify_chain, engine)
    year = dt.datetime.now(CHINA).year
    return render(request, "audit.html", caller, app_id=app_id, entries=entries, replayed=replayed, chain=chain, error=error, year=year)


# --- administrators -------------------------------------------------------------------------

async def _admin_page(request: Request, engine: Engine, caller: Caller, **extra: Any) -> HTMLResponse:
    funds = await run_in_threadpool(list_funds, engine, caller, None)
    versions = default_registry().versions
    today = dt.datetime.now(CHINA).date()
    return render(request, "admin.html", caller, funds=funds, versions=versions, today=today, **extra)


@router.get("/admin", response_class=HTMLResponse)
async def admin_page(request: Request, caller: Caller | None = Depends(page_caller), engine: Engine = Depends(engine_of)) -> Response:
    if caller is None:
        return to_login(request)
    if not caller.orgs_with("admin"):
        return render(request, "error.html", caller, status_code=403, error=translator(language(request))("仅限管理员", "Administrators only"))
    return await _admin_page(request, engine, caller)


@router.post("/admin/import")
async def admin_import(request: Request, caller: Caller | None = Depends(page_caller), engine: Engine = Depends(engine_of)) -> Response:
    if caller is None:
        return to_login(request)
    form = await form_of(request)
    orgs = caller.orgs_with("admin", "clerk")
    upload = form.get("file")
    lang = language(request)
    if not orgs:
        return render(request, "error.html", caller, status_code=403, error=translator(lang)("仅限工会干事和管理员", "Clerks and administrators only"))
    if upload is None or not hasattr(upload, "read"):
        return await _admin_page(request, engine, caller, status_code=422, import_error=translator(lang)("请选择文件", "Choose a file"))
    content = await upload.read(5 * 1024 * 1024 + 1)
    try:
        result = await run_in_threadpool(import_members, engine, orgs[0], upload.filename or "", content)
    except ImportFormatError as exc:
        return await _admin_page(request, engine, caller, status_code=422, import_error=exc.en if lang == "en" else exc.zh)
    return await _admin_page(request, engine, caller, import_result=result)


@router.post("/admin/funds/{fund_id}/budget")
async def admin_budget(fund_id: int, request: Request, caller: Caller | None = Depends(page_caller), engine: Engine = Depends(engine_of),
                       client: Client = Depends(temporal_of)) -> Response:
    if caller is None:
        return to_login(request)
    form = await form_of(request)
    lang = language(request)
    if not caller.orgs_with("admin"):
        return render(request, "error.html", caller, status_code=403, error=translator(lang)("仅限管理员", "Administrators only"))
    try:
        typed = str(form.get("amount_yuan") or "").strip()
        amount = fen_of(typed) or 0
        if amount <= 0 or fund_id > MAX_DB_ID:
            raise ValueError
        key = str(form.get("idempotency_key") or "")[:100] or uuid.uuid4().hex
        _, waiting = await run_in_threadpool(_raise, engine, caller, fund_id, amount, key)
    except ValueError:
        return await _admin_page(request, engine, caller, status_code=422, budget_error=translator(lang)("请输入大于零的金额", "Enter an amount above zero"))
    except ApiError as exc:
        if exc.status in (403, 404):
            return render(request, "error.html", caller, status_code=exc.status, error=error_text(exc, lang))
        return await _admin_page(request, engine, caller, status_code=exc.status, budget_error=error_text(exc, lang))
    for app_id in waiting:
        await client.get_workflow_handle(app_id).signal(ApplicationWorkflow.funds_available)
    return RedirectResponse("/admin", status_code=303)
