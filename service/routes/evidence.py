"""Evidence files of an application: upload (multipart), list, download."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import BaseModel
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from service import evidence
from service.deps import Caller, current_caller, engine_of
from service.errors import FORBIDDEN, ApiError, not_found
from service.models import Application, EvidenceFile
from service.routes.applications import FILERS, AppId, readable
from service.settings import Settings

router = APIRouter(tags=["evidence"])
EvidenceId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="the evidence file's id")]
DOWNLOAD_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox", "Cache-Control": "private, no-store"}


class EvidenceOut(BaseModel):
    id: str
    application_id: str
    kind: str
    original_name: str
    content_type: str
    size_bytes: int
    sha256: str
    uploaded_by_user_id: int
    uploaded_at: dt.datetime
    download_url: str


def evidence_out(row: EvidenceFile) -> EvidenceOut:
    return EvidenceOut(**row.model_dump(exclude={"stored_name"}), download_url=f"/api/evidence/{row.id}")


UPLOAD_DOC = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file", "kind"], "additionalProperties": False,
    "properties": {
        "file": {"type": "string", "format": "binary", "description": "PDF, JPEG or PNG (by content), 5 MB at most"},
        "kind": {"type": "string", "maxLength": 48, "description": "an evidence code of the policy, e.g. hospital_papers"},
    }}}}}}


# --- who may see and who may add --------------------------------------------------------------

def readable_application(engine: Engine, caller: Caller, app_id: str) -> Application:
    """As GET /api/applications/{id} answers: 404 when there is none, 403 when the caller may not read it."""
    with Session(engine) as session:
        return readable(session, caller, app_id)


def may_upload(caller: Caller, app: Application) -> bool:
    """The applicant, and whoever may file for the member (clerks and admins of the union)."""
    return app.member_id == caller.user.member_id or caller.has(app.org_id, *FILERS)


def open_for_upload(engine: Engine, settings: Settings, caller: Caller, app_id: str) -> Application:
    """Every check that needs no body, made before the body is read."""
    app = readable_application(engine, caller, app_id)
    if not may_upload(caller, app):
        raise FORBIDDEN
    evidence.check_open(app)
    with Session(engine) as session:
        count = session.execute(select(func.count()).select_from(EvidenceFile)
                                .where(EvidenceFile.application_id == app.id)).scalar_one()
    if count >= settings.evidence_max_files:
        raise evidence.too_many(settings)
    return app


async def receive(request: Request, engine: Engine, caller: Caller, app: Application, upload: evidence.Upload) -> EvidenceFile:
    settings: Settings = request.app.state.settings
    kind = upload.fields.get("kind", "")
    try:
        return await run_in_threadpool(evidence.store, engine, settings, app.id, caller.user.username, caller.user.id, kind, upload)
    except ApiError as exc:
        evidence.log.info("evidence_refused", application_id=app.id, code=exc.code, field=exc.field)
        raise
    finally:
        upload.close()


# --- endpoints ----------------------------------------------------------------------------

@router.post("/api/applications/{app_id}/evidence", status_code=201, response_model=EvidenceOut, openapi_extra=UPLOAD_DOC,
             summary="Upload an evidence file (PDF / JPEG / PNG) / 上传证明材料")
async def upload(app_id: AppId, request: Request, caller: Caller = Depends(current_caller),
                 engine: Engine = Depends(engine_of)) -> EvidenceOut:
    settings: Settings = request.app.state.settings
    app = await run_in_threadpool(open_for_upload, engine, settings, caller, app_id[:40])
    body = await evidence.read_upload(request, settings, {"kind"})
    return evidence_out(await receive(request, engine, caller, app, body))


@router.get("/api/applications/{app_id}/evidence", response_model=list[EvidenceOut],
            summary="The application's evidence files (metadata) / 证明材料列表")
async def list_(app_id: AppId, caller: Caller = Depends(current_caller), engine: Engine = Depends(engine_of)) -> list[EvidenceOut]:
    app = await run_in_threadpool(readable_application, engine, caller, app_id[:40])
    return [evidence_out(row) for row in await run_in_threadpool(evidence.files_of, engine, app.id)]


@router.get("/api/evidence/{evidence_id}", response_class=FileResponse, summary="Download an evidence file / 下载证明材料",
            responses={200: {"content": {"application/pdf": {}, "image/jpeg": {}, "image/png": {}}}})
async def download(evidence_id: EvidenceId, request: Request, caller: Caller = Depends(current_caller),
                   engine: Engine = Depends(engine_of)) -> FileResponse:
    def find() -> EvidenceFile:
        with Session(engine) as session:
            row = session.get(EvidenceFile, evidence_id)
        if row is None:
            raise not_found("文件", "File")
        readable_application(engine, caller, row.application_id)
        return row

    row = await run_in_threadpool(find)
    path = evidence.path_of(request.app.state.settings, row)
    if path is None:
        evidence.log.warning("evidence_missing_on_disk", application_id=row.application_id, file_id=row.id)
        raise ApiError(404, "file_missing", "文件内容已不在存储中，请联系管理员", "The file's content is missing from storage; tell an administrator")
    return FileResponse(path, media_type=row.content_type, headers=DOWNLOAD_HEADERS | {
        "Content-Disposition": evidence.content_disposition(row)})
