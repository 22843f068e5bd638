"""The Temporal server killed mid-flight and restarted on the same database file (the persistent dev
server of `make run`): the same worker and client carry on, every application completes, each is paid
exactly once, and the ledger and the funds reconcile with the histories.

Ten applications are caught at different points when the server dies: three wait for the officer's
check, two for the chair's approval, three are inside the payment (the money moves while the server
is down; the worker's report of it is lost, so Temporal runs the payment again after the restart),
two are inside the reservation (let through after the restart). The two money activities are the
service's own, behind a gate that holds chosen calls until the test opens it, so "mid-payment" is a
certainty rather than a race.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import signal
import socket
import subprocess
import threading
from collections import Counter
from pathlib import Path

from sqlmodel import Session, select
from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

from activities import WelfareActivities
from activities.campaign import CampaignActivities
from activities.hardship import HardshipActivities
from service.audit.chain import verify_chain
from service.models import ClaimSlot, LedgerEntry
from service.worker import WORKFLOWS, sandboxed_runner
from workflows.application import ApplicationWorkflow
from workflows.types import MoneyRequest, ReserveResult

from ..conftest import binary
from ..workflows.helpers import act, file, ledger, open_tasks, row
from ..world import build, fund
from .crash_helpers import audit_against_history, reach

SNAPSHOT = ApplicationWorkflow.snapshot
# Longer than the client's retry budget for one call (10 s by default): the worker's reports of the
# payments made meanwhile are lost, and Temporal has to retry the payments themselves.
DOWNTIME = 12


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DevServer:
    """`temporal server start-dev` persisted to one file, as `make run` starts it; killable, restartable."""

    def __init__(self, db: Path):
        self.db, self.port, self.ui_port = db, free_port(), free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [binary("temporal"), "server", "start-dev", "--db-filename", str(self.db), "--ip", "127.0.0.1",
             "--port", str(self.port), "--ui-port", str(self.ui_port), "--headless", "--log-level", "error",
             "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"],
            start_new_session=True)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, as a host losing the process would."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    async def ready(self, timeout: float = 60) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            assert self.proc.poll() is None, f"the Temporal server exited with {self.proc.returncode}"
            try:
                await Client.connect(self.address)  # asks the server for its system info
                return
            except Exception:  # noqa: BLE001 - still starting
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(0.3)


class Gate:
    """Holds the calls of chosen applications until opened; records who is waiting."""

    def __init__(self, held: set[str]):
        self.held, self.waiting, self.opened = held, set(), threading.Event()
        self._lock = threading.Lock()

    def pass_through(self, application_id: str) -> None:
        if application_id in self.held and not self.opened.is_set():
            with self._lock:
                self.waiting.add(application_id)
            self.opened.wait(timeout=120)


class GatedActivities(WelfareActivities):
    def __init__(self, engine, reserve: Gate, disburse: Gate):
        super().__init__(engine)
        self.reserve_gate, self.disburse_gate = reserve, disburse

    @activity.defn(name="reserve_funds")
    def reserve_funds(self, m: MoneyRequest) -> ReserveResult:
        self.reserve_gate.pass_through(m.application_id)
        return super().reserve_funds(m)

    @activity.defn(name="disburse")
    def disburse(self, m: MoneyRequest) -> bool:
        self.disburse_gate.pass_through(m.application_id)
        return super().disburse(m)


async def until_true(predicate, what: str, timeout: float = 60) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def decide(h, world, stage: str, user: str) -> None:
    snap = await reach(h, SNAPSHOT, lambda s: bool(open_tasks(s, stage)), timeout=120)
    await act(h, world, user, open_tasks(snap, stage)[0].task_id)


async def to_closed(h, world, stages: list[tuple[str, str]]) -> str:
    for stage, user in [*stages, ("receipt", "clerk"), ("audit_review", "auditor")]:
        await decide(h, world, stage, user)
    return await h.result()


def paid(engine, app_ids: set[str]) -> list[str]:
    with Session(engine) as s:
        return list(s.exec(select(LedgerEntry.application_id).where(LedgerEntry.kind == "disburse",
                                                                   LedgerEntry.application_id.in_(app_ids))).all())


async def disburse_attempts(client: Client, app_id: str) -> list[int]:
    """The attempt of each completed disbursement in the workflow's history."""
    history = await client.get_workflow_handle(app_id).fetch_history()
    scheduled = {e.event_id for e in history.events
                 if e.HasField("activity_task_scheduled_event_attributes")
                 and e.activity_task_scheduled_event_attributes.activity_type.name == "disburse"}
    started = {e.event_id: e.activity_task_started_event_attributes.attempt for e in history.events
               if e.HasField("activity_task_started_event_attributes")
               and e.activity_task_started_event_attributes.scheduled_event_id in scheduled}
    return [started[e.activity_task_completed_event_attributes.started_event_id] for e in history.events
            if e.HasField("activity_task_completed_event_attributes")
            and e.activity_task_completed_event_attributes.scheduled_event_id in scheduled]


async def test_server_killed_and_restarted_every_application_completes_paid_once(engine, tmp_path):
    world = build(engine)
    server = DevServer(tmp_path / "temporal.db")
    server.start()
    worker_task: asyncio.Task | None = None
    try:
        await server.ready()
        client = await Client.connect(server.address)
        task_queue = "restart"
        birthdays = ["alice", "erin", "frank", "grace", "ivan"]
        handles = {}
        for member in birthdays:
            handles[("birthday", member)] = await file(client, engine, world, task_queue, "birthday", member=member,
                                                       requested_fen=30_000)
        paying = {handles[("birthday", m)].id for m in birthdays[:3]}
        reserving = {handles[("birthday", m)].id for m in birthdays[3:]}
        reserve_gate, disburse_gate = Gate(reserving), Gate(paying)
        acts = GatedActivities(engine, reserve_gate, disburse_gate)
        with concurrent.futures.ThreadPoolExecutor(max_workers=32) as executor:
            worker = Worker(client, task_queue=task_queue, workflows=WORKFLOWS, activity_executor=executor,
                            activities=acts.all() + HardshipActivities(engine, acts.registry).all()
                            + CampaignActivities(engine, client, task_queue, acts.registry).all(),
                            workflow_runner=sandboxed_runner(), max_concurrent_activities=32)
            worker_task = asyncio.create_task(worker.run())
            for member in ("erin", "grace", "ivan"):
                handles[("hospitalization", member)] = await file(
                    client, engine, world, task_queue, "hospitalization", member=member, requested_fen=80_000,
                    evidence=["hospital_papers"], event_key=f"人民医院 {member}")
            for member in ("frank", "erin"):
                handles[("wedding", member)] = await file(client, engine, world, task_queue, "wedding", member=member,
                                                          requested_fen=50_000, evidence=["marriage_certificate"])
                await decide(handles[("wedding", member)], world, "officer_check", "clerk2")
            for member in ("erin", "grace", "ivan"):
                await reach(handles[("hospitalization", member)], SNAPSHOT, lambda s: bool(open_tasks(s, "officer_check")))
            for member in ("frank", "erin"):
                await reach(handles[("wedding", member)], SNAPSHOT, lambda s: bool(open_tasks(s, "chair_approval")))
            await until_true(lambda: disburse_gate.waiting == paying and reserve_gate.waiting == reserving,
                             "the payments and reservations to be under way")

            server.kill()
            disburse_gate.opened.set()  # the money moves while nobody can hear of it
            await until_true(lambda: len(paid(engine, paying)) == 3, "the held payments to be committed")
            await asyncio.sleep(DOWNTIME)
            assert not worker_task.done(), "the worker gave up while the server was down"

            server.start()  # same file, same port
            await server.ready()
            reserve_gate.opened.set()
            # The same client and worker carry on: nothing is reconnected by hand.
            approvals = {"birthday": [], "hospitalization": [("officer_check", "clerk2"), ("chair_approval", "chair")],
                         "wedding": [("chair_approval", "chair")]}
            results = await asyncio.gather(*(to_closed(h, world, approvals[benefit]) for (benefit, _), h in handles.items()))
            assert results == ["closed"] * 10
            assert not worker_task.done()
            for app_id in paying:  # paid once, though run twice: the first run's report never arrived
                assert await disburse_attempts(client, app_id) == [2], app_id

            amounts = {"birthday": 30_000, "hospitalization": 80_000, "wedding": 50_000}
            for (benefit, _), h in handles.items():
                assert ledger(engine, h.id) == [("reserve", amounts[benefit]), ("disburse", amounts[benefit])]
                assert row(engine, h.id).status == "closed"
            with Session(engine) as s:
                slots = Counter(s.exec(select(ClaimSlot.application_id)).all())
            assert slots == Counter({h.id: 1 for h in handles.values()})
            total = sum(amounts[benefit] for benefit, _ in handles)
            f = fund(engine, world.funds["member_welfare"])
            assert (f.spent_fen, f.reserved_fen) == (total, 0)  # 5 × 300 + 3 × 800 + 2 × 500 yuan
            assert await audit_against_history(engine, client, [h.id for h in handles.values()]) == []
            assert verify_chain(engine).ok
            await worker.shutdown()
    finally:
        if worker_task is not None and not worker_task.done():
            worker_task.cancel()
            with contextlib.suppress(BaseException):
                await worker_task
        server.kill()

