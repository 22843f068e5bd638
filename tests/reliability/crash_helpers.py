"""Crash one worker process mid-activity and take over with a normal worker; then read every effect
back from the database: ledger, funds, claim slots, notifications, projection history, tasks, audit log."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlmodel import Session, select
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from service.audit import projection_audit
from service.audit.chain import verify_chain
from service.audit.history import decode, fetch_one
from service.models import Application, ApprovalTask, AuditEvent, ClaimSlot, Fund, HardshipFile, LedgerEntry, Notification
from service.worker import build_worker

from ..crash_worker import CRASH_EXIT

ROOT = Path(__file__).resolve().parents[2]


async def reach(handle: WorkflowHandle, query, predicate, timeout: float = 90.0):
    """Query until ``predicate`` holds. While a dead worker's task waits for its timeout the query
    fails or times out: that is expected here, so keep asking until the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    while True:
        try:
            last = await handle.query(query, rpc_timeout=timedelta(seconds=5))
            if predicate(last):
                return last
        except RPCError as exc:
            last = exc
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s; last: {last!r}"[:3000])
        await asyncio.sleep(0.1)


@dataclass
class Picture:
    """What the database says about one application or hardship file."""

    history: list[dict] = field(default_factory=list)  # the projection's history items
    ledger: list[tuple[str, int]] = field(default_factory=list)  # (kind, amount) in entry order
    claim_slots: int = 0
    notifications: Counter = field(default_factory=Counter)  # idempotency key -> rows
    audit: list[tuple[str, str]] = field(default_factory=list)  # (idempotency key, action) in chain order
    audit_details: dict[str, dict] = field(default_factory=dict)
    tasks: dict[str, str] = field(default_factory=dict)  # task id -> status
    file_rows: list[tuple[int, str]] = field(default_factory=list)  # a hardship file's (period, status) rows

    @property
    def actions(self) -> list[str]:
        return [item["action"] for item in self.history]


def picture(engine, subject: str) -> Picture:
    with Session(engine) as s:
        app = s.get(Application, subject)
        entries = s.exec(select(LedgerEntry).where(LedgerEntry.application_id == subject).order_by(LedgerEntry.id)).all()
        slots = s.exec(select(ClaimSlot).where(ClaimSlot.application_id == subject)).all()
        notices = s.exec(select(Notification.idempotency_key).where(Notification.application_id == subject)).all()
        events = s.exec(select(AuditEvent).where(AuditEvent.application_id == subject).order_by(AuditEvent.id)).all()
        tasks = s.exec(select(ApprovalTask).where(ApprovalTask.application_id == subject)).all()
        rows = s.exec(select(HardshipFile).where(HardshipFile.file_id == subject).order_by(HardshipFile.period)).all()
        return Picture(
            history=list(app.history) if app else [],
            ledger=[(e.kind.value if hasattr(e.kind, "value") else e.kind, e.amount_fen) for e in entries],
            claim_slots=len(slots),
            notifications=Counter(notices),
            audit=[(e.idempotency_key, e.action) for e in events],
            audit_details={e.idempotency_key: dict(e.detail or {}) for e in events},
            tasks={t.id: t.status.value if hasattr(t.status, "value") else t.status for t in tasks},
            file_rows=[(r.period, r.status) for r in rows],
        )


def fund_totals(engine, fund_id: int) -> tuple[int, int]:
    """(spent, reserved) in fen."""
    with Session(engine) as s:
        f = s.get(Fund, fund_id)
        return f.spent_fen, f.reserved_fen


@dataclass
class Outcome:
    result: Any
    at_crash: Any  # a Picture, unless the case noted something else
    final: Any
    snapshot: Any  # the workflow's own view at the end (a query), to hold the database against
    chain_ok: bool
    chain_checked: int
    findings: list = field(default_factory=list)  # the projection audit: database against history
    funds: dict[str, tuple[int, int]] = field(default_factory=dict)


class Crash:
    """A crash worker for one task queue, and the normal worker that takes over once it has died."""

    def __init__(self, client: Client, engine, task_queue: str, activity: str, when: str | None = None):
        self.client, self.engine, self.task_queue = client, engine, task_queue
        self.activity, self.when = activity, when
        self.subject: str | None = None
        self.inspect = lambda: picture(self.engine, self.subject)  # what to note once the worker has died
        self.at_crash: Any = None
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> Crash:
        address = self.client.service_client.config.target_host
        url = self.engine.url.render_as_string(hide_password=False)
        args = [sys.executable, "-m", "tests.crash_worker", address, self.task_queue, url, self.activity]
        self.proc = subprocess.Popen(args + ([self.when] if self.when else []), cwd=ROOT)
        return self

    async def takeover(self, timeout: float = 90.0) -> None:
        """Wait for the crash worker to die where it should, note what it left behind, start a normal worker."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.proc.poll() is None:
            if loop.time() > deadline:
                raise AssertionError(f"the crash worker did not die in {self.activity} ({self.when}) within {timeout} s")
            await asyncio.sleep(0.1)
        assert self.proc.returncode == CRASH_EXIT, f"crash worker exited {self.proc.returncode}, not in {self.activity}"
        self.at_crash = await asyncio.to_thread(self.inspect)
        executor = self._stack.enter_context(concurrent.futures.ThreadPoolExecutor(max_workers=32))
        await self._stack.enter_async_context(build_worker(self.client, self.engine, self.task_queue, executor))

    async def __aexit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        await self._stack.aclose()


async def audit_against_history(engine, client: Client, app_ids: list[str]) -> list:
    """The projection audit: the database rebuilt from the histories, every disagreement listed."""
    records = [decode(await fetch_one(client, app_id)) for app_id in app_ids]
    report = await projection_audit.audit(engine, client, records, funds=True)
    return report.findings


async def outcome(crash: Crash, handle: WorkflowHandle, query, result: str, funds: dict[str, int] | None = None,
                  applications: bool = True) -> Outcome:
    """Everything a case asserts on, read while the taking-over worker still answers queries."""
    snapshot = await handle.query(query)
    chain = await asyncio.to_thread(verify_chain, crash.engine)
    findings = await audit_against_history(crash.engine, crash.client, [crash.subject]) if applications else []
    return Outcome(result, crash.at_crash, await asyncio.to_thread(picture, crash.engine, crash.subject), snapshot,
                   chain.ok, chain.checked, findings,
                   {code: fund_totals(crash.engine, fund_id) for code, fund_id in (funds or {}).items()})
