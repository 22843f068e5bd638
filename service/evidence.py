"""Uploaded evidence files (证明材料): PDF, JPEG or PNG by their leading bytes, size counted while the body
streams in, stored outside the web root under generated names, one row and one audit event per file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import tempfile
import unicodedata
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import structlog
from fastapi import Request
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from rules.loader import default_registry
from rules.model import Evidence
from service import audit_log
from service.errors import ApiError, invalid
from service.models import Application, EvidenceFile
from service.settings import Settings

log = structlog.get_logger("evidence")

# Leading bytes → (content type, extension). Nothing else is accepted, whatever the name or Content-Type says.
SIGNATURES = {
    b"%PDF-": ("application/pdf", ".pdf"),
    b"\x89PNG\r\n\x1a\n": ("image/png", ".png"),
    b"\xff\xd8\xff": ("image/jpeg", ".jpg"),
}
MULTIPART_SLACK = 64 * 1024  # the multipart framing and the small fields around the file
UPLOAD_PATH = re.compile(r"(/api)?/applications/[^/]+/evidence")
UPLOAD_STATUSES = ("submitted", "pending_approval", "returned")  # filed and not yet decided, or returned for more
STORED_NAME = re.compile(r"[0-9a-f]{32}\.(pdf|png|jpg)")
DISPLAY_NAME_MAX = 120
_CHUNK = 1024 * 1024


def body_limit(method: str, path: str, settings: Settings) -> int | None:
    """The request-size limit of an evidence upload; None for every other request."""
    return settings.evidence_max_bytes + MULTIPART_SLACK if method == "POST" and UPLOAD_PATH.fullmatch(path) else None


def detect(head: bytes) -> tuple[str, str] | None:
    for magic, found in SIGNATURES.items():
        if head.startswith(magic):
            return found
    return None


def display_name(raw: str | None) -> str:
    """The client's file name, for display only: no directories, no control or bidi characters, bounded."""
    name = unicodedata.normalize("NFC", raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    return name[:DISPLAY_NAME_MAX] or "file"


def content_disposition(row: EvidenceFile) -> str:
    """``attachment`` with the shown name's stem and the detected type's extension (never the client's)."""
    stem = Path(row.original_name).stem or row.kind
    ext = Path(row.stored_name).suffix
    ascii_stem = re.sub(r"[^A-Za-z0-9._-]", "_", stem)[:60].strip("._")
    if not re.search(r"[A-Za-z0-9]", ascii_stem):  # a Chinese name: the old-browser fallback names the kind
        ascii_stem = row.kind
    return f"attachment; filename=\"{ascii_stem}{ext}\"; filename*=UTF-8''{quote(stem + ext, safe='')}"


def too_large(settings: Settings) -> ApiError:
    mb = settings.evidence_max_bytes / (1024 * 1024)
    return ApiError(413, "too_large", f"文件过大（每个文件上限 {mb:g} MB）", f"The file is too large ({mb:g} MB per file at most)",
                    field="file")


def kinds_for(event_date: dt.date) -> list[Evidence]:
    """The kinds of evidence of the policy in force on the event date (of every version, should none be)."""
    registry = default_registry()
    loaded = registry.for_date(event_date)
    found: dict[str, Evidence] = {}
    for version in [loaded] if loaded is not None else registry.versions:
        found |= {e.code: e for e in version.policy.evidence if e.code not in found}
    return list(found.values())


# --- reading the body ----------------------------------------------------------------------

@dataclass
class Upload:
    fields: dict[str, str]
    filename: str | None
    file: UploadFile | None

    def close(self) -> None:
        if self.file is not None:
            self.file.file.close()


async def _counted(stream: AsyncIterator[bytes], limit: int, settings: Settings) -> AsyncIterator[bytes]:
    """The body as it arrives, refused once it passes ``limit``: a chunked body has no Content-Length to check."""
    seen = 0
    async for chunk in stream:
        seen += len(chunk)
        if seen > limit:
            raise too_large(settings)
        yield chunk


async def read_upload(request: Request, settings: Settings, fields: set[str]) -> Upload:
    """One file part named ``file`` and the text ``fields``; anything else is refused (422)."""
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise invalid("(body)", "请以 multipart/form-data 上传文件", "Upload the file as multipart/form-data")
    limit = settings.evidence_max_bytes + MULTIPART_SLACK
    parser = MultiPartParser(request.headers, _counted(request.stream(), limit, settings), max_files=1,
                             max_fields=len(fields), max_part_size=4096)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise invalid("(body)", "上传内容格式无效（只可上传一个文件）", f"Invalid upload: {exc.message}") from None
    upload = Upload({}, None, None)
    for name, value in form.multi_items():
        name = name[:48]
        if isinstance(value, UploadFile):
            upload.file, upload.filename = value, value.filename
            if name != "file":
                upload.close()
                raise invalid(name, f"未知的字段：{name}", f"Unknown field {name!r}; the file goes in 'file'")
        elif name in fields:
            upload.fields[name] = value
        else:
            upload.close()
            raise invalid(name, f"未知的字段：{name}", f"Unknown field {name!r}")
    return upload


# --- storing -------------------------------------------------------------------------------

def _spool_to_dir(source, directory: Path, max_bytes: int) -> tuple[Path, int, str, bytes]:
    """Copy into a temporary file in ``directory``; its size, sha256 and first bytes."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    digest, size, head = hashlib.sha256(), 0, b""
    source.seek(0)
    fd, temp = tempfile.mkstemp(dir=directory, prefix=".upload-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := source.read(_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    break
                head = head or chunk[:16]
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        os.unlink(temp)
        raise
    return Path(temp), size, digest.hexdigest(), head


def store(engine: Engine, settings: Settings, app_id: str, actor: str, user_id: int, kind: str, upload: Upload) -> EvidenceFile:
    """Check, write under a generated name, then record the row and its audit event in one transaction.

    Every refusal (bad kind or type, empty, too large, the application closed or full) leaves no row and no file.
    """
    with Session(engine) as session:
        app = session.get(Application, app_id)
    if kind not in {e.code for e in kinds_for(app.event_date)}:
        raise invalid("kind", f"未知的证明材料类型：{kind[:48]}", f"Unknown kind of evidence {kind[:48]!r}")
    if upload.file is None:
        raise invalid("file", "请选择要上传的文件", "Choose a file to upload")
    directory = Path(settings.evidence_dir)
    temp, size, sha256, head = _spool_to_dir(upload.file.file, directory, settings.evidence_max_bytes)
    final: Path | None = None
    try:
        if size > settings.evidence_max_bytes:
            raise too_large(settings)
        if size == 0:
            raise invalid("file", "文件是空的", "The file is empty")
        detected = detect(head)
        if detected is None:
            raise invalid("file", "只接受 PDF、JPEG 或 PNG 文件（按文件内容判断）",
                          "Only PDF, JPEG or PNG files are accepted (judged by the content, not the name)")
        content_type, ext = detected
        fields = dict(id=uuid.uuid4().hex, application_id=app_id, kind=kind, stored_name=uuid.uuid4().hex + ext,
                      content_type=content_type, size_bytes=size, sha256=sha256,
                      original_name=display_name(upload.filename), uploaded_by_user_id=user_id)
        final = directory / fields["stored_name"]
        os.replace(temp, final)
        row = _record(engine, settings, actor, fields)
    except BaseException:
        for path in (temp, final):
            if path is not None:
                path.unlink(missing_ok=True)
        raise
    log.info("evidence_uploaded", application_id=app_id, file_id=row.id, kind=kind, content_type=row.content_type,
             size_bytes=size, actor=actor)
    return row


def _record(engine: Engine, settings: Settings, actor: str, fields: dict) -> EvidenceFile:
    """The row and its audit event, once the application is locked and still takes files."""
    app_id = fields["application_id"]
    for _ in range(20):
        row = EvidenceFile(**fields)
        try:
            with Session(engine, expire_on_commit=False) as session, session.begin():
                locked = session.execute(select(Application).where(Application.id == app_id).with_for_update()).scalar_one()
                check_open(locked)
                count = session.execute(select(func.count()).select_from(EvidenceFile)
                                        .where(EvidenceFile.application_id == app_id)).scalar_one()
                if count >= settings.evidence_max_files:
                    raise too_many(settings)
                session.add(row)
                audit_log.append(session, f"evidence:{row.id}", app_id, actor, "evidence_uploaded",
                                 {"file_id": row.id, "kind": row.kind, "content_type": row.content_type,
                                  "size_bytes": row.size_bytes, "sha256": row.sha256, "name": row.original_name})
            return row
        except IntegrityError:
            continue  # a concurrent audit append (another application's upload) took our place in the chain
    raise RuntimeError(f"evidence {fields['id']}: the audit log kept conflicting")


def check_open(app: Application) -> None:
    if app.status not in UPLOAD_STATUSES:
        raise ApiError(409, "closed_for_evidence", "该申请已不在可补充材料的阶段（仅限已提交、审批中或退回补充）",
                       "This application takes no more evidence (only while submitted, pending approval or returned)")


def too_many(settings: Settings) -> ApiError:
    return ApiError(409, "too_many_files", f"每份申请最多上传 {settings.evidence_max_files} 个文件",
                    f"An application takes at most {settings.evidence_max_files} files")


def files_of(engine: Engine, app_id: str) -> list[EvidenceFile]:
    with Session(engine) as session:
        return list(session.execute(select(EvidenceFile).where(EvidenceFile.application_id == app_id)
                                    .order_by(EvidenceFile.uploaded_at, EvidenceFile.id)).scalars())


def path_of(settings: Settings, row: EvidenceFile) -> Path | None:
    """Where the bytes are: the stored name comes from the database and is checked again, never from input."""
    if not STORED_NAME.fullmatch(row.stored_name):
        return None
    path = Path(settings.evidence_dir) / row.stored_name
    return path if path.is_file() else None
