"""Uploaded evidence files: PDF / JPEG / PNG judged by their bytes, 5 MB at most, stored outside the web root
under generated names, readable only by whoever may read the application, names escaped on the page.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import io
import json
import re
import struct
import zlib
from pathlib import Path

import httpx
import structlog
from sqlmodel import Session, func, select

from service import seed
from service.logging import configure
from service.models import AuditEvent, EvidenceFile
from service.web import routes as pages
from service.web.routes import TOKEN_COOKIE, csrf_for
from workflows.application import CHINA

from ..api.conftest import PASSWORD
from .conftest import add_plain_member, add_second_union

RECENT = (dt.datetime.now(CHINA).date() - dt.timedelta(days=3)).isoformat()
LIMIT = 5 * 1024 * 1024
XSS_NAME = "<svg onload=alert('x')><img src=x onerror=alert(1)>.png"  # no "/": a client's directories are dropped


def png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))


PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + bytes(range(256)) + b"\xff\xd9"
PNG = png()


def padded(head: bytes, size: int) -> bytes:
    return head + b"\x00" * (size - len(head))


async def file_app(service, user: str = "alice", stay: int = 1) -> str:
    r = await service.call("POST", "/api/applications", user, json={
        "benefit": "hospitalization", "member_id": service.world.members["alice"], "event_date": RECENT,
        "requested_fen": 80_000, "evidence": ["hospital_papers"], "event_key": f"市医院 {stay}"})
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def upload(service, app_id: str, user: str, name: str, content: bytes, kind: str = "hospital_papers",
                 content_type: str = "application/octet-stream") -> httpx.Response:
    return await service.call("POST", f"/api/applications/{app_id}/evidence", user, data={"kind": kind},
                              files={"file": (name, content, content_type)})


def stored(service) -> tuple[int, list[Path], int]:
    """Rows, every file under the evidence directory (hidden temporary ones too), upload audit events."""
    with Session(service.engine) as s:
        rows = s.exec(select(func.count()).select_from(EvidenceFile)).one()
        events = s.exec(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "evidence_uploaded")).one()
    files = sorted(p for p in service.evidence_dir.rglob("*") if p.is_file()) if service.evidence_dir.exists() else []
    return rows, files, events


async def test_pdf_jpeg_png_are_stored_under_generated_names_and_come_back_byte_identical(service):
    app_id = await file_app(service)
    buffer = io.StringIO()
    configure(json_lines=True, stream=buffer, cache=False)
    try:
        uploads = {}
        for user, name, content, declared in (("alice", "住院证明.pdf", PDF, "application/pdf"),
                                              ("alice", "discharge photo.JPG", JPEG, "image/jpeg"),
                                              ("clerk", "../../etc/passwd.png", PNG, "text/plain")):  # the declared type is ignored
            r = await upload(service, app_id, user, name, content, content_type=declared)
            assert r.status_code == 201, r.text
            uploads[r.json()["id"]] = (name, content)
    finally:
        structlog.reset_defaults()

    listed = (await service.call("GET", f"/api/applications/{app_id}/evidence", "alice")).json()
    assert [(f["content_type"], f["size_bytes"], f["original_name"]) for f in listed] == [
        ("application/pdf", len(PDF), "住院证明.pdf"), ("image/jpeg", len(JPEG), "discharge photo.JPG"),
        ("image/png", len(PNG), "passwd.png")]  # the directories of a client's name are dropped
    assert all(f["sha256"] == hashlib.sha256(uploads[f["id"]][1]).hexdigest() for f in listed)
    assert "stored_name" not in listed[0]

    for f in listed:
        r = await service.call("GET", f["download_url"], "clerk")
        assert r.status_code == 200 and r.content == uploads[f["id"]][1]
        assert r.headers["content-type"] == f["content_type"]
        assert r.headers["x-content-type-options"] == "nosniff" and r.headers["content-security-policy"] == "sandbox"
        disposition = r.headers["content-disposition"]
        assert disposition.startswith("attachment; filename=\"") and "/" not in disposition and ".." not in disposition
    dispositions = [(await service.call("GET", f["download_url"], "clerk")).headers["content-disposition"] for f in listed]
    assert dispositions == ["attachment; filename=\"hospital_papers.pdf\"; filename*=UTF-8''%E4%BD%8F%E9%99%A2%E8%AF%81%E6%98%8E.pdf",
                            "attachment; filename=\"discharge_photo.jpg\"; filename*=UTF-8''discharge%20photo.jpg",
                            "attachment; filename=\"passwd.png\"; filename*=UTF-8''passwd.png"]

    rows, files, events = stored(service)
    assert (rows, len(files), events) == (3, 3, 3)
    with Session(service.engine) as s:
        names = {row.id: row.stored_name for row in s.exec(select(EvidenceFile))}
    assert {p.name for p in files} == set(names.values())
    assert all(re.fullmatch(r"[0-9a-f]{32}\.(pdf|jpg|png)", p.name) and p.parent == service.evidence_dir for p in files)
    assert not set(names) & {p.stem for p in files}  # the public id says nothing of the stored name
    assert {p.read_bytes() for p in files} == {PDF, JPEG, PNG}
    with Session(service.engine) as s:
        audit = s.exec(select(AuditEvent).where(AuditEvent.action == "evidence_uploaded")).all()
    assert {(e.application_id, e.detail["file_id"]) for e in audit} == {(app_id, i) for i in uploads}
    assert {e.actor for e in audit} == {"alice", "clerk"}
    entries = (await service.call("GET", f"/api/audit/applications/{app_id}/timeline", "auditor")).json()["entries"]
    assert sorted(e["detail"]["file_id"] for e in entries if e["action"] == "evidence_uploaded") == sorted(uploads)
    logged = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert sorted(line["file_id"] for line in logged if line["event"] == "evidence_uploaded" and line["application_id"] == app_id) \
        == sorted(uploads)

    # Outside the web root, and no route serves the directory.
    static = Path(pages.__file__).parent / "static"
    assert not service.evidence_dir.resolve().is_relative_to(static.resolve())
    name = files[0].name
    for path in (f"/static/{name}", f"/static/%2e%2e/%2e%2e/store/{name}", f"/evidence/{name}", f"/store/{name}",
                 f"/data/evidence/{name}", f"/api/evidence/{name}", f"/api/evidence/{Path(name).stem}"):
        r = await service.call("GET", path, "clerk")
        assert r.status_code in (404, 422), (path, r.status_code)
        assert r.content not in (PDF, JPEG, PNG)


CHUNK = 64 * 1024


def multipart(content: bytes, name: str = "big.pdf", kind: str = "hospital_papers") -> tuple[str, list[bytes]]:
    boundary = "evidence-boundary-7d1f"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\n{kind}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            "Content-Type: application/pdf\r\n\r\n").encode()
    body = head + content + f"\r\n--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", [body[i:i + CHUNK] for i in range(0, len(body), CHUNK)]


async def chunked_upload(service, app_id: str, content: bytes) -> httpx.Response:
    """Sent with Transfer-Encoding: chunked (no Content-Length)."""
    content_type, chunks = multipart(content)

    async def body():
        for chunk in chunks:
            yield chunk

    headers = {"Content-Type": content_type} | await service.login("alice")
    r = await service.http.post(f"/api/applications/{app_id}/evidence", content=body(), headers=headers)
    assert "content-length" not in r.request.headers and r.request.headers["transfer-encoding"] == "chunked"
    return r


async def endless_chunked_upload(service, app_id: str, sent_bytes: int) -> bytes:
    """A chunked upload that sends ``sent_bytes`` of file and then stalls, its body never finished: only a
    server that counts the bytes as they arrive can answer it. The answer's status line and headers."""
    content_type, chunks = multipart(padded(PDF, sent_bytes))
    port = int(service.base_url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write((f"POST /api/applications/{app_id}/evidence HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      f"Authorization: {(await service.login('alice'))['Authorization']}\r\n"
                      f"Content-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n").encode())
        for chunk in chunks[:-1]:  # the closing boundary and the last chunk are never sent
            writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            await writer.drain()
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=20)
    finally:
        writer.close()


async def test_refused_uploads_store_nothing(service):
    app_id = await file_app(service)
    script = b"<html><script>alert(document.cookie)</script></html>"
    refusals = [
        ("x.pdf", script, "hospital_papers", 422, "file"),  # HTML under a PDF name
        ("x.pdf", b"  %PDF-1.4 not at the start", "hospital_papers", 422, "file"),
        ("setup.exe", b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 200, "hospital_papers", 422, "file"),
        ("scan.png", b"\x7fELF\x02\x01\x01" + b"\x00" * 100, "hospital_papers", 422, "file"),
        ("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "hospital_papers", 422, "file"),
        ("page.html", b"<!doctype html><p>hi", "hospital_papers", 422, "file"),
        ("empty.pdf", b"", "hospital_papers", 422, "file"),
        ("ok.pdf", PDF, "selfie", 422, "kind"),
        ("ok.pdf", PDF, "", 422, "kind"),
        ("over.pdf", padded(PDF, LIMIT + 1), "hospital_papers", 413, "file"),  # one byte over: past the body check, refused on reading
        ("huge.pdf", padded(PDF, LIMIT + 200_000), "hospital_papers", 413, None),  # refused by its Content-Length alone
    ]
    for name, content, kind, status, field in refusals:
        r = await upload(service, app_id, "alice", name, content, kind=kind, content_type="application/pdf")
        assert r.status_code == status, (name, kind, r.status_code, r.text)
        assert r.json()["reason_zh"] and r.json()["reason_en"] and r.json().get("field") == field, (name, r.text)
    odd_bodies = [
        {"data": {"kind": "hospital_papers"}},  # no file
        {"data": {"kind": "hospital_papers", "note": "x"}, "files": {"file": ("a.pdf", PDF, "application/pdf")}},  # unknown field
        {"data": {"kind": "hospital_papers"}, "files": [("file", ("a.pdf", PDF, "application/pdf")),
                                                        ("file", ("b.pdf", PDF, "application/pdf"))]},  # two files
        {"json": {"kind": "hospital_papers", "file": "JVBERi0="}},  # not multipart
    ]
    for kw in odd_bodies:
        r = await service.call("POST", f"/api/applications/{app_id}/evidence", "alice", **kw)
        assert r.status_code == 422, (kw, r.text)

    answer = await endless_chunked_upload(service, app_id, LIMIT + 300_000)
    assert answer.startswith(b"HTTP/1.1 413 "), answer
    assert stored(service) == (0, [], 0)

    # Exactly at the limit, with a Content-Length and chunked: accepted.
    r = await upload(service, app_id, "alice", "exact.pdf", padded(PDF, LIMIT))
    assert r.status_code == 201 and r.json()["size_bytes"] == LIMIT, r.text
    r = await chunked_upload(service, app_id, padded(PDF, LIMIT))
    assert r.status_code == 201 and r.json()["size_bytes"] == LIMIT, r.text
    rows, files, events = stored(service)
    assert (rows, len(files), events) == (2, 2, 2) and all(p.stat().st_size == LIMIT for p in files)


async def test_only_those_who_may_read_the_application_see_its_files(service):
    app_id = await file_app(service)
    first = await upload(service, app_id, "alice", "a.pdf", PDF)
    assert first.status_code == 201, first.text
    file_url = first.json()["download_url"]
    with Session(service.engine) as s, s.begin():
        judy = seed.member(s, s.get(seed.Organisation, service.world.org_id), "M0100", "judy", "330302198001010100",
                           dt.date(1980, 1, 1))
        judy_id = judy.id
    add_plain_member(service.engine, service.world.org_id, "judy", judy_id)
    add_second_union(service.engine)

    for user in ("judy", "clerk_b"):  # another member of the union, the clerk of another union: as GET /api/applications/{id}
        assert (await service.call("GET", f"/api/applications/{app_id}", user)).status_code == 403
        assert (await service.call("GET", f"/api/applications/{app_id}/evidence", user)).status_code == 403
        r = await service.call("GET", file_url, user)
        assert r.status_code == 403 and PDF not in r.content and set(r.json()) == {"error", "reason_zh", "reason_en"}
        assert (await upload(service, app_id, user, "b.pdf", PDF)).status_code == 403
    for user in ("chair", "auditor", "committee1"):  # may read it, may not add to it
        assert (await service.call("GET", file_url, user)).content == PDF
        assert len((await service.call("GET", f"/api/applications/{app_id}/evidence", user)).json()) == 1
        assert (await upload(service, app_id, user, "b.pdf", PDF)).status_code == 403
    assert (await upload(service, app_id, "admin", "c.png", PNG)).status_code == 201  # files for members, as a clerk does
    assert (await service.http.get(file_url)).status_code == 401
    assert (await service.http.post(f"/api/applications/{app_id}/evidence", files={"file": ("a.pdf", PDF)})).status_code == 401
    assert (await service.call("GET", "/api/evidence/" + "0" * 32, "clerk")).status_code == 404
    assert (await service.call("GET", "/api/applications/A-none/evidence", "clerk")).status_code == 404
    assert (await upload(service, "A-none", "clerk", "a.pdf", PDF)).status_code == 404

    withdrawn = await service.call("POST", f"/api/applications/{app_id}/withdraw", "alice")
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn", withdrawn.text
    late = await upload(service, app_id, "alice", "late.pdf", PDF)
    assert late.status_code == 409 and late.json()["error"] == "closed_for_evidence", late.text
    rows, files, _ = stored(service)
    assert (rows, len(files)) == (2, 2)


async def test_an_application_takes_at_most_twenty_files_even_at_once(service_any_db):
    """25 uploads to one application and 5 to another, all at once: 20 + 5 stored, the rest refused, none lost
    to the audit log's chain (every upload appends to it) or to the count's race."""
    service = service_any_db
    full, other = await file_app(service, stay=1), await file_app(service, stay=2)
    await service.login("alice")
    targets = [full] * 25 + [other] * 5
    answers = await asyncio.gather(*(upload(service, app_id, "alice", f"p{n}.png", PNG) for n, app_id in enumerate(targets)))
    unexpected = [r.text for r in answers if r.status_code not in (201, 409)]
    assert not unexpected, unexpected
    by_app = {app_id: sorted(r.status_code for r, a in zip(answers, targets, strict=True) if a == app_id) for app_id in (full, other)}
    assert by_app == {full: [201] * 20 + [409] * 5, other: [201] * 5}
    assert all(r.json()["error"] == "too_many_files" for r in answers if r.status_code == 409)
    rows, files, events = stored(service)
    assert (rows, len(files), events) == (25, 25, 25)


async def signed_in(service, user: str) -> str:
    r = await service.http.post("/login", data={"username": user, "password": PASSWORD, "next": "/my"})
    assert r.status_code == 303, r.text
    return r.cookies[TOKEN_COOKIE]


async def page(service, token: str, method: str, path: str, **kw) -> httpx.Response:
    service.http.cookies.clear()
    service.http.cookies.set(TOKEN_COOKIE, token)
    try:
        return await service.http.request(method, path, **kw)
    finally:
        service.http.cookies.clear()


async def test_the_page_lists_files_escaped_and_takes_uploads_with_its_csrf_token(service):
    app_id = await file_app(service)
    alice, chair = await signed_in(service, "alice"), await signed_in(service, "chair")
    url = f"/applications/{app_id}/evidence"
    form = {"kind": "hospital_papers", "csrf": csrf_for(alice)}

    missing = await page(service, alice, "POST", url, data={"kind": "hospital_papers"}, files={"file": ("a.png", PNG, "image/png")})
    forged = await page(service, alice, "POST", url, data=form | {"csrf": csrf_for(chair)}, files={"file": ("a.png", PNG, "image/png")})
    assert (missing.status_code, forged.status_code) == (403, 403)
    bad = await page(service, alice, "POST", url, data=form, files={"file": ("a.png", b"<script>alert(1)</script>", "image/png")})
    assert bad.status_code == 422 and "PDF、JPEG" in bad.text and 'id="evidence-upload"' in bad.text
    by_chair = await page(service, chair, "POST", url, data=form | {"csrf": csrf_for(chair)}, files={"file": ("a.png", PNG, "image/png")})
    assert by_chair.status_code == 403
    assert stored(service)[:1] == (0,)

    done = await page(service, alice, "POST", url, data=form, files={"file": (XSS_NAME, PNG, "image/png")})
    assert done.status_code == 303 and done.headers["location"] == f"/applications/{app_id}#evidence-files", done.text
    with Session(service.engine) as s:
        row = s.exec(select(EvidenceFile)).one()
    assert row.original_name == XSS_NAME and row.content_type == "image/png"

    for token, may_upload in ((alice, True), (chair, False)):
        html = (await page(service, token, "GET", f"/applications/{app_id}")).text
        assert "<svg onload" not in html and "onerror=alert(1)>" not in html
        assert "&lt;svg onload=alert(&#39;x&#39;)&gt;&lt;img src=x onerror=alert(1)&gt;.png" in html  # shown, escaped
        assert f'href="/api/evidence/{row.id}"' in html and row.stored_name not in html
        assert ('id="evidence-upload"' in html) is may_upload
        assert ('enctype="multipart/form-data"' in html) is may_upload
    downloaded = await page(service, chair, "GET", f"/api/evidence/{row.id}")  # the page's link works with the sign-in cookie
    assert downloaded.status_code == 200 and downloaded.content == PNG
    assert "<" not in downloaded.headers["content-disposition"]
