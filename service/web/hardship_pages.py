"""Pages for hardship files (困难职工档案) and warmth campaigns (送温暖): they call the same functions as the
JSON API (service.routes.hardship, service.routes.campaigns), so the API stays the contract."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy import Engine
from sqlmodel import Session
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from rules.explain import yuan
from rules.messages import field_path, reason_zh
from service.deps import Caller, engine_of, temporal_of
from service.errors import ApiError
from service.models import Member
from service.routes import campaigns
from service.routes import hardship as files
from service.schemas import Objection
from service.web.i18n import CAMPAIGN_STATE, FILE_STAGE, FILE_STATUS, FILE_STORY, OUTCOME, label, language, translator
from service.web.routes import error_text, fen_of, form_of, members_for, page_caller, policy_today, render, to_login
from workflows import hardship_types as h
from workflows.hardship_file import CHINA, HardshipFileWorkflow
from workflows.hardship_types import Vote

router = APIRouter(include_in_schema=False)
FILE_ID = re.compile(r"HF-[0-9]{1,10}-[0-9]{1,6}")
TIERS = ("deep", "relative", "accident")
FILE_STATUSES = ("pending", "active", "closed", "rejected")
FLAGS = ("sudden_event", "multiple_homes", "business_or_employer", "private_school_or_abroad", "private_car")
FLAG_TEXT = {
    "sudden_event": ("遭遇意外或突发事件", "a sudden event"),
    "multiple_homes": ("两套及以上住房", "two or more homes"),
    "business_or_employer": ("经营店铺或雇人", "a shop or employees"),
    "private_school_or_abroad": ("子女高收费民办学校或自费留学", "a child at a high-fee school or abroad"),
    "private_car": ("非营运私家车", "a private car"),
}
# The API's field names, as the forms call them.
FORM_FIELD = {"household.size": "size", "household.annual_income_fen": "income_yuan",
              "household.unavoidable_costs_fen": "costs_yuan", "text": "objection"}
CAMPAIGN_LIST_LIMIT = 200


# --- shared helpers --------------------------------------------------------------------------

def _labels(lang: str) -> dict[str, Any]:
    tiers = policy_today().hardship.tiers
    return {
        "tier_label": lambda t: (tiers[t].name_en if lang == "en" else tiers[t].name_zh) if t in tiers else (t or "—"),
        "file_stage_label": lambda s: label(FILE_STAGE, s, lang),
        "file_status_label": lambda s: label(FILE_STATUS, s, lang),
        "outcome_label": lambda s: label(OUTCOME, s, lang),
        "close_reason_label": lambda r: (h.CLOSE_REASONS[r][1] if lang == "en" else h.CLOSE_REASONS[r][0])
        if r in h.CLOSE_REASONS else (r or ""),
    }


def _household_of(form, lang: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The household as typed: yuan to fen, ticks to booleans. Unreadable figures are named in the errors."""
    tr = translator(lang)
    data: dict[str, Any] = {}
    errors: dict[str, str] = {}
    size = str(form.get("size") or "").strip()
    if size.isdigit() and len(size) <= 3:
        data["size"] = int(size)
    else:
        errors["size"] = tr("请填写家庭人口（整数）", "Enter the household size (a whole number)")
    for name, key in (("income_yuan", "annual_income_fen"), ("costs_yuan", "unavoidable_costs_fen")):
        typed = str(form.get(name) or "").strip()
        if (fen := fen_of(typed)) is not None:
            data[key] = fen
        else:
            errors[name] = tr("请填写金额（元），如 30000 或 2500.50", "Enter an amount in yuan, e.g. 30000 or 2500.50")
    for flag in FLAGS:
        data[flag] = form.get(flag) is not None
    return data, errors


def _validate(model: type[BaseModel], data: dict[str, Any], lang: str, errors: dict[str, str]) -> BaseModel | None:
    """The API's own request model; its refusals are added to ``errors`` under the forms' field names."""
    try:
        body = model.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            name = field_path(err["loc"])
            errors.setdefault(FORM_FIELD.get(name, name), err["msg"] if lang == "en" else reason_zh(err))
        return None
    return None if errors else body


def _form_values(form) -> dict[str, Any]:
    return {k: str(v)[:2000] for k, v in form.items() if k != "csrf"}


def _household_text(hh: dict | None, lang: str) -> str:
    if not hh:
        return ""
    tr = translator(lang)
    text = tr(f"{hh.get('size')} 人，年收入 {yuan(hh.get('annual_income_fen', 0))} 元，刚性支出 {yuan(hh.get('unavoidable_costs_fen', 0))} 元",
              f"{hh.get('size')} people, income {yuan(hh.get('annual_income_fen', 0))} yuan a year, "
              f"unavoidable costs {yuan(hh.get('unavoidable_costs_fen', 0))} yuan")
    flags = [FLAG_TEXT[f][1 if lang == "en" else 0] for f in FLAGS if hh.get(f)]
    if not flags:
        return text
    return f"{text}; {', '.join(flags)}" if lang == "en" else f"{text}；{'、'.join(flags)}"


def _story_text(action: str, d: dict[str, Any], lang: str, labels: dict[str, Any]) -> str:
    tr = translator(lang)

    def reasons(found: list | None) -> str:  # the rules' reasons ({rule_id, zh, en}), or plain text in older entries
        texts = [(r.get("en") if lang == "en" else r.get("zh")) or "" if isinstance(r, dict) else str(r) for r in found or []]
        return ("; " if lang == "en" else "；").join(texts)

    if action == "opened":
        return tr("致困原因：", "Causes: ") + str(d.get("causes", ""))
    if action in ("checked", "check_rejected"):
        verdict = labels["outcome_label"](d.get("action")) if d.get("action") else ""
        return " · ".join(x for x in (verdict, d.get("comment") or "") if x)
    if action == "home_visit_reported":
        return f"{d.get('findings', '')} · {_household_text(d.get('household'), lang)}"
    if action in ("assessed", "reassessed"):
        tier = labels["tier_label"](d["tier"]) if d.get("tier") else ""
        return " · ".join(x for x in (labels["outcome_label"](d.get("outcome")), tier, reasons(d.get("reasons"))) if x)
    if action == "not_eligible":
        return reasons(d.get("reasons"))
    if action.startswith("vote_"):
        return d.get("comment") or ""
    if action == "committee_opened":
        return tr(f"第 {d.get('round')} 轮，{d.get('voters')} 人表决，法定人数 {d.get('quorum')}",
                  f"round {d.get('round')}, {d.get('voters')} voters, quorum {d.get('quorum')}")
    if action == "chair_decision_opened":
        return tr("回避后委员不足法定人数，由主席决定", "Too few committee members after recusals: the chair decides")
    if action == "committee_decided":
        return tr(f"{labels['outcome_label'](d.get('outcome'))}：同意 {d.get('approve')}，不同意 {d.get('reject')}，共 {d.get('voters')} 人",
                  f"{labels['outcome_label'](d.get('outcome'))}: {d.get('approve')} for, {d.get('reject')} against, of {d.get('voters')}")
    if action == "public_notice_started":
        return tr(f"{d.get('from')} 至 {d.get('until')}（{d.get('working_days')} 个工作日）",
                  f"{d.get('from')} to {d.get('until')} ({d.get('working_days')} working days)")
    if action == "objection_received":
        return str(d.get("objection", ""))
    if action in ("activated", "renewed", "continued"):
        return f"{labels['tier_label'](d.get('tier'))} · {d.get('active_from')} – {d.get('active_until')}"
    if action == "review_submitted":
        return " · ".join(x for x in (d.get("note") or "", _household_text(d.get("household"), lang)) if x)
    if action == "closed":
        return " · ".join(x for x in (labels["close_reason_label"](d.get("reason")), d.get("note") or "") if x)
    if action == "refused":
        return f"{d.get('attempted', '')}: {d.get('reason_en') if lang == 'en' else d.get('reason_zh')}"
    if action == "reminder":
        return labels["file_stage_label"](d.get("stage"))
    if action in ("review_reminder", "lapsed", "public_notice_passed"):
        return str(d.get("active_until") or d.get("until") or "")
    return ""


# --- the list, and opening a file -------------------------------------------------------------

def _choice(request: Request, name: str, allowed) -> str | None:
    value = request.query_params.get(name) or None
    return value if value in allowed else None


async def _list_page(request: Request, engine: Engine, caller: Caller, *, error: str | None = None, errors: dict | None = None,
                     values: dict | None = None, status_code: int = 200) -> HTMLResponse:
    tier, status = _choice(request, "tier", TIERS), _choice(request, "status", FILE_STATUSES)
    stage = _choice(request, "stage", FILE_STAGE)
    page = int(request.query_params.get("page", "1")) if request.query_params.get("page", "1").isdigit() else 1
    page = min(max(page, 1), 10_000)
    found = await run_in_threadpool(files.list_files, engine, caller, tier, status, stage, None, page, 50)
    members = await run_in_threadpool(members_for, engine, caller)
    lang = language(request)
    return render(request, "hardship_list.html", caller, status_code=status_code, files=found.items, total=found.total,
                  page=page, pages=max(1, -(-found.total // 50)), tier=tier, status=status, stage=stage, tiers=TIERS,
                  statuses=FILE_STATUSES, stages=list(FILE_STAGE), members=members, error=error, errors=errors or {},
                  values=values or {}, flags=FLAG_TEXT, **_labels(lang))


@router.get("/hardship", response_class=HTMLResponse)
async def hardship_list(request: Request, caller: Caller | None = Depends(page_caller), engine: Engine = Depends(engine_of)) -> Response:
    if caller is None:
        return to_login(request)
    return await _list_page(request, engine, caller)


@router.post("/hardship")
async def hardship_open(request: Request, caller: Caller | None = Depends(page_caller), engine: Engine = Depends(engine_of),
                        client: Client = Depends(temporal_of)) -> Response:
    if caller is None:
        return to_login(request)
    form = await form_of(request)
    lang = language(request)
    household, errors = _household_of(form, lang)
    member_id = str(form.get("member_id") or "").strip()
    data = {"household": household, "causes": str(form.get("causes") or "")}
    if member_id:
        data["member_id"] = int(member_id) if member_id.isdigit() and len(member_id) <= 10 else member_id
    body = _validate(files.FileOpen, data, lang, errors)
    values = _form_values(form)
    if body is None:
        return await _list_page(request, engine, caller, errors=errors, values=values, status_code=422)
    try:
        opened = await files.open_file(request, body, caller, engine, client)
    except ApiError as exc:
        if exc.field:
            name = FORM_FIELD.get(exc.field, exc.field)
            return await _list_page(request, engine, caller, errors={name: error_text(exc, lang)}, values=values,
                                    status_code=exc.status)
        return await _list_page(request, engine, caller, error=error_text(exc, lang), values=values, status_code=exc.status)
    return RedirectResponse(f"/hardship/{opened.file_id}", status_code=303)


# --- one file ----------------------------------------------------------------------------------

def _member(engine: Engine, member_id: int) -> Member | None:
    with Session(engine) as session:
        return session.get(Member, member_id)


def _china_time(at: str) -> str:
    try:
        moment = dt.datetime.fromisoformat(at)
    except ValueError:
        return at[:19]
    return (moment.astimezone(CHINA) if moment.tzinfo else moment).strftime("%Y-%m-%d %H:%M:%S")


def _last(story: list[dict], *actions: str) -> dict | None:
    return next((item for item in reversed(story) if item["action"] in actions), None)


async def _file_page(request: Request, engine: Engine, caller: Caller, file_id: str, *, error: str | None = None,
                     errors: dict | None = None, values: dict | None = None, status_code: int = 200) -> HTMLResponse:
    lang = language(request)
    try:
        out = await run_in_threadpool(files.file_detail, engine, caller, file_id)
    except ApiError as exc:  # not for this caller to read: the refusal alone, nothing of the file
        if errors:
            error = " ".join([error or "", *errors.values()]).strip()
        return render(request, "error.html", caller, status_code=status_code if error else exc.status,
                      error=error or error_text(exc, lang))
    member = await run_in_threadpool(_member, engine, out.member_id)
    labels = _labels(lang)
    roles = caller.roles.get(out.org_id, set())
    story = out.story
    opened = _last(story, "opened")
    voting = _last(story, "committee_opened", "chair_decision_opened")
    round_no = voting["detail"].get("round") if voting else None
    voted = any(i["action"].startswith("vote_") and i["actor"] == caller.user.username and i["detail"].get("round") == round_no
                for i in story)
    notice = _last(story, "public_notice_started") if out.stage == h.PUBLIC_NOTICE else None
    may = {
        "check": out.stage == h.CLERK_CHECK and "clerk" in roles,
        "visit": out.stage == h.HOME_VISIT and "clerk" in roles,
        "vote": out.stage == h.COMMITTEE_VOTE and "committee" in roles and not voted,
        "decide": out.stage == h.CHAIR_DECISION and "chair" in roles and not voted,
        "object": out.stage == h.PUBLIC_NOTICE,
        "review": out.stage in (h.ACTIVE, h.REVIEW_DUE, h.LAPSED) and "clerk" in roles,
        "close": out.stage not in h.ENDED and bool({"clerk", "chair"} & roles),
    }
    known = (out.assessment or {}).get("household") or (opened["detail"].get("household_declared") if opened else None) or {}
    prefill = {"size": known.get("size", ""), "income_yuan": yuan(known["annual_income_fen"]) if "annual_income_fen" in known else "",
               "costs_yuan": yuan(known["unavoidable_costs_fen"]) if "unavoidable_costs_fen" in known else ""}
    prefill |= {f: "on" for f in FLAGS if known.get(f)}
    lines = [{"at": _china_time(item["at"]), "action": item["action"], "label": label(FILE_STORY, item["action"], lang),
              "actor": item["actor"], "text": _story_text(item["action"], item["detail"], lang, labels)} for item in story]
    return render(request, "hardship_file.html", caller, status_code=status_code, file=out, member=member, story=lines,
                  causes=opened["detail"].get("causes") if opened else None,
                  declared=_household_text(opened["detail"].get("household_declared"), lang) if opened else "",
                  assessed=_household_text((out.assessment or {}).get("household"), lang),
                  notice_until=notice["detail"].get("until") if notice else None, may=may, error=error, errors=errors or {},
                  values=values if values is not None else prefill, flags=FLAG_TEXT, close_reasons=h.CLOSE_REASONS, **labels)


def _bad_file(request: Request, caller: Caller) -> HTMLResponse:
    return render(request, "error.html", caller, status_code=404,
                  error=translator(language(request))("困难职工档案不存在", "Hardship file not found"))


@router.get("/hardship/{file_id}", response_class=HTMLResponse)
async def hardship_file(file_id: str, request: Request, caller: Caller | None = Depends(page_caller),
                        engine: Engine = Depends(engine_of)) -> Response:
    if caller is None:
        return to_login(request)
    if not FILE_ID.fullmatch(file_id):
        return _bad_file(request, caller)
    return await _file_page(request, engine, caller, file_id)


async def _act(request: Request, engine: Engine, client: Client, caller: Caller | None, file_id: str, build, run) -> Response:
    """One step from a page: the form read by ``build`` into the API's model, then ``run`` (the API's ``_step``).
    A refusal is shown on the file's page with its status."""
    if caller is None:
        return to_login(request)
    if not FILE_ID.fullmatch(file_id):
        return _bad_file(request, caller)
    form = await form_of(request)
    lang = language(request)
    errors: dict[str, str] = {}
    body = build(form, lang, errors)
    values = _form_values(form)
    if body is None:
        return await _file_page(request, engine, caller, file_id, error=translator(lang)("请更正标出的内容", "Correct the fields marked"),
                                errors=errors, values=values, status_code=422)
    try:
        await run(body)
    except ApiError as exc:
        if exc.status == 404:
            return render(request, "error.html", caller, status_code=404, error=error_text(exc, lang))
        return await _file_page(request, engine, caller, file_id, error=error_text(exc, lang), values=values, status_code=exc.status)
    return RedirectResponse(f"/hardship/{file_id}", status_code=303)


def _decision(model):
    def build(form, lang, errors):
        return _validate(model, {"action": form.get("action"), "comment": form.get("comment") or None}, lang, errors)
    return build


@router.post("/hardship/{file_id}/check")
async def hardship_check(file_id: str, request: Request, caller: Caller | None = Depends(page_caller),
                         engine: Engine = Depends(engine_of), client: Client = Depends(temporal_of)) -> Response:
    return await _act(request, engine, client, caller, file_id, _decision(files.CheckIn), lambda body: files._step(
        engine, client, caller, file_id, HardshipFileWorkflow.check, body.action, body.comment, action="check"))


def _with_household(model, text_field: str, required: bool):
    def build(form, lang, errors):
        household, errors_now = _household_of(form, lang)
        errors.update(errors_now)
        text = str(form.get(text_field) or "")
        return _validate(model, {"household": household, text_field: text if (required or text.strip()) else None}, lang, errors)
    return build


@router.post("/hardship/{file_id}/visit")
async def hardship_visit(file_id: str, request: Request, caller: Caller | None = Depends(page_caller),
                         engine: Engine = Depends(engine_of), client: Client = Depends(temporal_of)) -> Response:
    return await _act(request, engine, client, caller, file_id, _with_household(files.VisitIn, "findings", True), lambda body: files._step(
        engine, client, caller, file_id, HardshipFileWorkflow.visit, body.findings, body.household.model_dump(mode="json"),
        action="visit"))


@router.post("/hardship/{file_id}/votes")
async def hardship_vote(file_id: str, request: Request, caller: Caller | None = Depends(page_caller),
                        engine: Engine = Depends(engine_of), client: Client = Depends(temporal_of)) -> Response:
    return await _act(request, engine, client, caller, file_id, _decision(files.VoteIn), lambda body: files._step(
        engine, client, caller, file_id, HardshipFileWorkflow.vote, lambda actor: Vote(actor, body.action, body.comment),
        action="vote", with_actor=False))


@router.post("/hardship/{file_id}/objections")
async def hardship_object(file_id: str, request: Request, caller: Caller | None = Depends(page_caller),
                          engine: Engine = Depends(engine_of), client: Client = Depends(temporal_of)) -> Response:
    def build(form, lang, errors):
        return _validate(Objection, {"text": str(form.get("objection") or "")}, lang, errors)

    response = await _act(request, engine, client, caller, file_id, build, lambda body: files._step(
        engine, client, caller, file_id, HardshipFileWorkflow.object, body.text, action="object", staff=False))
    if isinstance(response, RedirectResponse) and caller is not None:
        member = await run_in_threadpool(files._member_for, engine, caller, file_id)
        if not files.can_read(caller, member):  # any member of the union may object; only some may read the file
            return render(request, "error.html", caller, status_code=200,
                          error=translator(language(request))("异议已收到，档案退回委员会重新研究", "Objection received: the file goes back to the committee"))
    return response


@router.post("/hardship/{file_id}/review")
async def hardship_review(file_id: str, request: Request, caller: Caller | None = Depends(page_caller),
                          engine: Engine = Depends(engine_of), client: Client = Depends(temporal_of)) -> Response:
    return await _act(request, engine, client, caller, file_id, _with_household(files.ReviewIn, "note", False), lambda body: files._step(
        engine, client, caller, file_id, HardshipFileWorkflow.submit_review, body.household.model_dump(mode="json"), body.note,
        action="review"))


@router.post("/hardship/{file_id}/close")
async def hardship_close(file_id: str, request: Request, caller: Caller | None = Depends(page_caller),
                         engine: Engine = Depends(engine_of), client: Client = Depends(temporal_of)) -> Response:
    def build(form, lang, errors):
        return _validate(files.CloseIn, {"reason": form.get("reason"), "note": form.get("note") or None}, lang, errors)

    return await _act(request, engine, client, caller, file_id, build, lambda body: files._step(
        engine, client, caller, file_id, HardshipFileWorkflow.close, body.reason, body.note, action="close"))


# --- warmth campaigns ----------------------------------------------------------------------------

async def _recent_campaigns(client: Client, orgs: list[int]) -> list[dict[str, Any]] | None:
    """The campaigns of the caller's unions, newest first, from Temporal's visibility (None: it did not answer)."""
    newest: dict[str, Any] = {}
    try:
        async with asyncio.timeout(5):
            async for wf in client.list_workflows("WorkflowType = 'CampaignWorkflow'", limit=CAMPAIGN_LIST_LIMIT):
                match = campaigns.CAMPAIGN_ID.match(wf.id)
                if match and int(match.group(1)) in orgs and (wf.id not in newest or wf.start_time > newest[wf.id].start_time):
                    newest[wf.id] = wf
    except (RPCError, TimeoutError):
        return None
    state = {WorkflowExecutionStatus.RUNNING: "running", WorkflowExecutionStatus.COMPLETED: "completed",
             WorkflowExecutionStatus.FAILED: "refused", WorkflowExecutionStatus.CONTINUED_AS_NEW: "running"}
    return [{"id": wf.id, "state": state.get(wf.status), "started": wf.start_time.astimezone(CHINA).strftime("%Y-%m-%d %H:%M")}
            for wf in sorted(newest.values(), key=lambda w: w.start_time, reverse=True)]


async def _campaigns_page(request: Request, engine: Engine, client: Client, caller: Caller, *, cid: str | None = None,
                          progress: dict | None = None, error: str | None = None, errors: dict | None = None,
                          values: dict | None = None, status_code: int = 200) -> HTMLResponse:
    lang = language(request)
    recipients = None
    if cid and progress is None and error is None:
        try:
            progress = await campaigns.get_campaign(cid, caller, client)
            recipients = await campaigns.campaign_recipients(cid, "json", caller, engine)
        except ApiError as exc:
            error, status_code = error_text(exc, lang), exc.status
    listed = await _recent_campaigns(client, caller.orgs_with(*campaigns.READERS))
    policy = policy_today()
    today = dt.datetime.now(CHINA).date()
    return render(request, "campaigns.html", caller, status_code=status_code, cid=cid, progress=progress, recipients=recipients,
                  campaigns=listed, error=error, errors=errors or {}, values=values or {"year": today.year},
                  may_launch=bool(caller.orgs_with(*campaigns.LAUNCHERS)), launch_orgs=caller.orgs_with(*campaigns.LAUNCHERS),
                  funds=policy.funds, warmth_fund=policy.hardship.warmth_fund,
                  state_label=lambda s: label(CAMPAIGN_STATE, s, lang), **_labels(lang))


@router.get("/campaigns", response_class=HTMLResponse)
async def campaigns_page(request: Request, caller: Caller | None = Depends(page_caller), engine: Engine = Depends(engine_of),
                         client: Client = Depends(temporal_of)) -> Response:
    if caller is None:
        return to_login(request)
    tr = translator(language(request))
    if not caller.orgs_with(*campaigns.READERS):
        return render(request, "error.html", caller, status_code=403, error=tr("仅限工会干部和经审", "Union officers and auditors only"))
    cid = (request.query_params.get("cid") or "").strip()[:64] or None
    if cid and not campaigns.CAMPAIGN_ID.match(cid):
        return await _campaigns_page(request, engine, client, caller, error=tr("活动不存在", "Campaign not found"), status_code=404)
    return await _campaigns_page(request, engine, client, caller, cid=cid)


@router.post("/campaigns")
async def campaigns_launch(request: Request, caller: Caller | None = Depends(page_caller), engine: Engine = Depends(engine_of),
                           client: Client = Depends(temporal_of)) -> Response:
    if caller is None:
        return to_login(request)
    form = await form_of(request)
    lang = language(request)
    tr = translator(lang)
    if not caller.orgs_with(*campaigns.LAUNCHERS):
        return render(request, "error.html", caller, status_code=403, error=tr("仅限管理员发起", "Administrators launch campaigns"))
    values = _form_values(form)
    data: dict[str, Any] = {k: v.strip() for k, v in values.items() if k in ("name", "year", "fund", "org_id", "as_of", "title") and v.strip()}
    errors: dict[str, str] = {}
    for number in ("year", "org_id"):
        if number in data:
            if data[number].isdigit() and len(data[number]) <= 10:
                data[number] = int(data[number])
            else:
                errors[number] = tr("应为整数", "A whole number")
    body = _validate(campaigns.CampaignCreate, data, lang, errors)
    if body is None:
        return await _campaigns_page(request, engine, client, caller, errors=errors, values=values, status_code=422)
    try:
        progress = await campaigns.launch(body, request, Response(), caller, client)
    except ApiError as exc:
        if exc.field:
            return await _campaigns_page(request, engine, client, caller, errors={exc.field: error_text(exc, lang)}, values=values,
                                         status_code=exc.status)
        return await _campaigns_page(request, engine, client, caller, cid=(exc.extra.get("campaign") or {}).get("campaign_id"),
                                     progress=exc.extra.get("campaign"), error=error_text(exc, lang), values=values,
                                     status_code=exc.status)
    return RedirectResponse(f"/campaigns?cid={progress['campaign_id']}", status_code=303)
