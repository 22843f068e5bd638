"""Import the member register (会员台帐) from CSV or XLSX: every row checked first, then all or nothing."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

from openpyxl import load_workbook
from pydantic import ValidationError
from sqlalchemy import Engine, select
from sqlmodel import Session

from rules.messages import field_path, reason_zh
from service.models import Member, MemberStatus, Organisation
from service.schemas import ImportResult, ImportRowError, MemberCreate
from service.security import id_card_digest, mask_id_card
from service.settings import get_settings

COLUMNS = ["member_no", "name", "id_card", "birth_date", "join_date", "status"]
MAX_ROWS = 20_000


class ImportFormatError(ValueError):
    def __init__(self, zh: str, en: str):
        self.zh, self.en = zh, en
        super().__init__(en)


def _cell(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value).strip()


def read_rows(filename: str, content: bytes) -> list[dict[str, Any]]:
    name = filename.lower()
    if name.endswith(".csv"):
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = content.decode("gb18030", errors="strict")
        rows = list(csv.reader(io.StringIO(text)))
    elif name.endswith(".xlsx"):
        try:
            sheet = load_workbook(io.BytesIO(content), read_only=True, data_only=True).active
        except Exception as exc:  # noqa: BLE001 - any unreadable workbook is the person's file, not our fault
            raise ImportFormatError("无法读取该 Excel 文件", f"Cannot read this workbook: {type(exc).__name__}") from None
        rows = [[_cell(v) for v in row] for row in sheet.iter_rows(values_only=True)]
    else:
        raise ImportFormatError("只支持 .csv 或 .xlsx 文件", "Only .csv and .xlsx files can be imported")
    if not rows:
        raise ImportFormatError("文件是空的", "The file is empty")
    header = [str(h).strip().lower() for h in rows[0]]
    missing = [c for c in COLUMNS[:5] if c not in header]
    if missing:
        raise ImportFormatError(f"缺少列：{', '.join(missing)}", f"Missing columns: {', '.join(missing)}")
    body = [r for r in rows[1:] if any(str(v).strip() for v in r)]
    if len(body) > MAX_ROWS:
        raise ImportFormatError(f"一次最多导入 {MAX_ROWS} 行", f"At most {MAX_ROWS} rows per import")
    return [{h: (str(r[i]).strip() if i < len(r) and r[i] is not None else "") for i, h in enumerate(header) if h in COLUMNS}
            for r in body]


def import_members(engine: Engine, org_id: int, filename: str, content: bytes) -> ImportResult:
    rows = read_rows(filename, content)
    errors: list[ImportRowError] = []
    valid: list[tuple[int, MemberCreate]] = []
    seen: dict[str, int] = {}
    for n, row in enumerate(rows, start=2):  # row 1 is the header
        data = {k: v for k, v in row.items() if v != ""}
        try:
            parsed = MemberCreate.model_validate(data)
        except ValidationError as exc:
            for err in exc.errors():
                errors.append(ImportRowError(row=n, field=field_path(err["loc"]), reason_zh=reason_zh(err), reason_en=err["msg"]))
            continue
        if parsed.member_no in seen:
            errors.append(ImportRowError(row=n, field="member_no", reason_zh=f"会员编号与第 {seen[parsed.member_no]} 行重复",
                                         reason_en=f"member_no repeats row {seen[parsed.member_no]}"))
            continue
        seen[parsed.member_no] = n
        valid.append((n, parsed))
    with Session(engine) as session:
        if session.get(Organisation, org_id) is None:
            raise ImportFormatError("工会组织不存在", "No such organisation")
        existing = set(session.execute(select(Member.member_no).where(Member.member_no.in_(list(seen) or [""]))).scalars())
    for n, parsed in valid:
        if parsed.member_no in existing:
            errors.append(ImportRowError(row=n, field="member_no", reason_zh="会员编号已存在", reason_en="member_no already registered"))
    if errors:
        return ImportResult(imported=0, errors=sorted(errors, key=lambda e: e.row))
    key = get_settings().id_card_key
    with Session(engine) as session, session.begin():
        for _, m in valid:
            session.add(Member(member_no=m.member_no, org_id=org_id, name=m.name, id_card_digest=id_card_digest(key, m.id_card),
                               id_card_masked=mask_id_card(m.id_card), birth_date=m.birth_date, join_date=m.join_date,
                               status=MemberStatus(m.status)))
    return ImportResult(imported=len(valid), errors=[])
