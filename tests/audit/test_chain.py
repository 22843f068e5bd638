"""The audit log's hash chain, verified on SQLite and PostgreSQL: intact, edited, re-hashed, cut."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import select, text
from sqlmodel import Session

from service import audit_log
from service.audit.chain import BROKEN_PREV_LINK, HASH_MISMATCH, render_at, verify_chain
from service.models import AuditEvent


def _append(engine, n: int = 5) -> list[int]:
    for i in range(1, n + 1):
        audit_log.append_with_retry(engine, f"APP-{i}:1", f"APP-{i}", "clerk", "filed",
                                    {"status": "submitted", "requested_fen": 10_000 * i, "note": f"第{i}条 慰问", "nested": {"a": [i, None]}})
    with Session(engine) as s:
        return list(s.execute(select(AuditEvent.id).order_by(AuditEvent.id)).scalars())


def _execute(engine, sql: str, **params) -> None:
    with engine.begin() as conn:
        conn.execute(text(sql), params)


def _json_param(engine) -> str:
    return "CAST(:d AS JSON)" if engine.dialect.name == "postgresql" else ":d"


def test_empty_log_is_intact(any_engine):
    report = verify_chain(any_engine)
    assert (report.ok, report.checked, report.first_break, report.last_hash) == (True, 0, None, audit_log.GENESIS)


def test_rows_written_by_append_verify(any_engine):
    ids = _append(any_engine)
    report = verify_chain(any_engine)
    assert report.ok and report.checked == len(ids) == 5 and report.broken == 0
    with Session(any_engine) as s:
        assert report.last_hash == s.get(AuditEvent, ids[-1]).hash
    assert "5" in report.zh and report.en.startswith("Audit log intact")


def test_edited_detail_breaks_that_row(any_engine):
    ids = _append(any_engine)
    _execute(any_engine, f"UPDATE auditevent SET detail = {_json_param(any_engine)} WHERE id = :id",
             d=json.dumps({"status": "submitted", "requested_fen": 99_999}), id=ids[2])
    report = verify_chain(any_engine)
    assert not report.ok and report.checked == 5 and report.broken == 1
    assert (report.first_break.event_id, report.first_break.problem) == (ids[2], HASH_MISMATCH)
    assert f"第 {ids[2]} 号" in report.first_break.zh and str(ids[2]) in report.first_break.en


def test_edited_actor_breaks_that_row(any_engine):
    ids = _append(any_engine)
    _execute(any_engine, "UPDATE auditevent SET actor = 'chair' WHERE id = :id", id=ids[1])
    report = verify_chain(any_engine)
    assert (report.first_break.event_id, report.first_break.problem, report.broken) == (ids[1], HASH_MISMATCH, 1)


def test_rehashed_row_breaks_the_next_link(any_engine):
    """Someone who edits a row and recomputes its hash still breaks the link of the row after it."""
    ids = _append(any_engine)
    with Session(any_engine) as s:
        row = s.get(AuditEvent, ids[1])
        forged = {"status": "submitted", "requested_fen": 1}
        new_hash = audit_log.event_hash(row.prev_hash, row.idempotency_key, row.application_id, row.actor, row.action,
                                        forged, render_at(row.at))
    _execute(any_engine, f"UPDATE auditevent SET detail = {_json_param(any_engine)}, hash = :h WHERE id = :id",
             d=json.dumps(forged), h=new_hash, id=ids[1])
    report = verify_chain(any_engine)
    assert (report.first_break.event_id, report.first_break.problem, report.broken) == (ids[2], BROKEN_PREV_LINK, 1)


def test_deleted_middle_row_breaks_the_next_link(any_engine):
    ids = _append(any_engine)
    _execute(any_engine, "DELETE FROM auditevent WHERE id = :id", id=ids[2])
    report = verify_chain(any_engine)
    assert not report.ok and report.checked == 4 and report.broken == 1
    assert (report.first_break.event_id, report.first_break.problem) == (ids[3], BROKEN_PREV_LINK)
    assert "前序哈希" in report.first_break.zh


def test_deleted_first_row_breaks_the_genesis_link(any_engine):
    ids = _append(any_engine, 3)
    _execute(any_engine, "DELETE FROM auditevent WHERE id = :id", id=ids[0])
    report = verify_chain(any_engine)
    assert (report.first_break.event_id, report.first_break.problem) == (ids[1], BROKEN_PREV_LINK)


def test_render_at_normalises_to_utc():
    aware = dt.datetime(2026, 3, 31, 16, 30, 0, 123456, tzinfo=dt.UTC)
    china = aware.astimezone(dt.timezone(dt.timedelta(hours=8)))
    naive = aware.replace(tzinfo=None)
    assert render_at(aware) == render_at(china) == render_at(naive) == render_at(aware.isoformat()) == aware.isoformat()
    assert render_at(aware) == "2026-03-31T16:30:00.123456+00:00"
