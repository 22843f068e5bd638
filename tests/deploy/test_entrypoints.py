"""The compose stack's two commands, run as processes: `python -m service.run_api` and `python -m service.run_worker`.

Against the Temporal dev server and a fresh database: the API migrates and loads no demo data, the
first administrator is created only with a password given to it, two workers share one task queue
(each application paid once) and set up the daily gift schedule, and the worker's healthcheck follows
its heartbeat.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from google.protobuf.duration_pb2 import Duration
from sqlalchemy import create_engine, func, inspect, select
from sqlmodel import Session
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client

from service.models import LedgerEntry, Organisation, User
from service.run_api import create_admin
from workflows.application import CHINA

from ..api.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
ADMIN_PASSWORD = "a long operator password"


def env_for(dev_env, db_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TEMPORAL_ADDRESS", "TASK_QUEUE", "DATA_DIR")}
    return env | {"DATABASE_URL": db_url, "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
                  "DATA_DIR": str(tmp_path / "data"), "LOG_JSON": "true", "PYTHONUNBUFFERED": "1",
                  "ID_CARD_KEY": "a key of this deployment's own"} | extra


def start(module: str, env: dict[str, str], log: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", module, *args], cwd=ROOT, env=env, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def stop(process: subprocess.Popen, timeout: float = 30) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


async def wait_until(predicate, timeout: float = 60, what: str = "") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


async def test_api_and_two_workers_as_processes(dev_env, tmp_path):
    db_url = f"sqlite:///{tmp_path / 'welfare.db'}"
    port = free_port()
    queue = f"deploy-{uuid.uuid4().hex[:8]}"
    # A namespace of its own: the workers create the daily gift schedule, whose id is fixed.
    namespace = f"deploy-{uuid.uuid4().hex[:10]}"
    await dev_env.client.workflow_service.register_namespace(
        RegisterNamespaceRequest(namespace=namespace, workflow_execution_retention_period=Duration(seconds=86_400)))
    env = env_for(dev_env, db_url, tmp_path, API_HOST="127.0.0.1", API_PORT=str(port), TASK_QUEUE=queue,
                  TEMPORAL_NAMESPACE=namespace)
    refused = subprocess.run([sys.executable, "-m", "service.run_api"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                             env=env | {"ID_CARD_KEY": "change-me-in-production"})
    assert refused.returncode != 0 and "ID_CARD_KEY" in refused.stderr  # no default secret in production
    api = start("service.run_api", env, tmp_path / "api.log")
    workers = [start("service.run_worker", env | {"WORKER_HEARTBEAT_FILE": str(tmp_path / f"worker{n}.alive")},
                     tmp_path / f"worker{n}.log") for n in (1, 2)]
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            async def api_up() -> bool:
                assert api.poll() is None, (tmp_path / "api.log").read_text()[-3000:]
                try:
                    return (await http.get("/api/health")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_until(api_up, what="the API")
            engine = create_engine(db_url)
            assert {"application", "member", "ledgerentry", "alembic_version"} <= set(inspect(engine).get_table_names())
            with Session(engine) as s:
                assert s.execute(select(func.count()).select_from(Organisation)).scalar_one() == 0, "demo data loaded"
                assert s.execute(select(func.count()).select_from(User)).scalar_one() == 0, "a default user exists"
            assert not (tmp_path / "data" / "demo-credentials.json").exists()

            # The first administrator: only with a password given to it, never twice.
            create = [sys.executable, "-m", "service.run_api", "--create-admin", "boss", "--org-code", "ORG-X", "--org-name", "某基层工会"]
            made = subprocess.run(create, cwd=ROOT, env=env | {"WELFARE_ADMIN_PASSWORD": ADMIN_PASSWORD}, capture_output=True, text=True)
            assert made.returncode == 0, made.stderr
            for password, refusal in (("short", "at least"), (ADMIN_PASSWORD, "exists already")):
                with pytest.raises(SystemExit, match=refusal):
                    create_admin(engine, "boss", password, "ORG-X", "某基层工会", "")

            # Both workers report healthy.
            for n, worker in enumerate(workers, start=1):
                beat = tmp_path / f"worker{n}.alive"

                async def alive(beat=beat, worker=worker, n=n) -> bool:
                    assert worker.poll() is None, (tmp_path / f"worker{n}.log").read_text()[-3000:]
                    return beat.exists()

                await wait_until(alive, what=f"worker {n}'s heartbeat")
                check = subprocess.run([sys.executable, "-m", "service.run_worker", "--check"], cwd=ROOT,
                                       env=env | {"WORKER_HEARTBEAT_FILE": str(beat)}, capture_output=True)
                assert check.returncode == 0

            # The admin registers members and files birthdays: the workers (one queue, two processes) do the rest.
            token = (await http.post("/api/auth/token", json={"username": "boss", "password": ADMIN_PASSWORD})).json()["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            with Session(engine) as s:
                org_id = s.execute(select(Organisation.id)).scalar_one()
            from service import seed

            with Session(engine) as s, s.begin():
                seed.funds(s, s.get(Organisation, org_id), dt.datetime.now(CHINA).year, {"member_welfare": 10_000_000})
            today = dt.datetime.now(CHINA).date()
            ids = []
            for n in range(6):
                m = await http.post("/api/members", headers=auth, json={
                    "member_no": f"D{n:03d}", "name": f"会员{n}", "id_card": f"11010119900101{n:04d}", "birth_date": "1990-01-01",
                    "join_date": "2015-01-01"})
                assert m.status_code == 201, m.text
                r = await http.post("/api/applications", headers=auth, json={
                    "member_id": m.json()["id"], "benefit": "birthday", "event_date": today.replace(day=1).isoformat(),
                    "requested_fen": 30_000})
                assert r.status_code == 201 and r.json()["decision"]["outcome"] == "eligible", r.text
                ids.append(r.json()["id"])

            async def all_paid() -> bool:
                statuses = [(await http.get(f"/api/applications/{i}", headers=auth)).json()["status"] for i in ids]
                return all(s == "disbursed" for s in statuses)

            await wait_until(all_paid, what="every birthday paid")
            with Session(engine) as s:
                for app_id in ids:
                    kinds = s.execute(select(LedgerEntry.kind).where(LedgerEntry.application_id == app_id)).scalars().all()
                    assert sorted(k.value if hasattr(k, "value") else k for k in kinds) == ["disburse", "reserve"], (app_id, kinds)
            logged = "".join((tmp_path / f"worker{n}.log").read_text() for n in (1, 2))
            assert "facts_gathered" in logged
            client = await Client.connect(env["TEMPORAL_ADDRESS"], namespace=namespace)
            schedule = await client.get_schedule_handle("daily-gifts").describe()
            assert schedule.schedule.action.task_queue == queue  # the daily gifts are scheduled, on this queue
    finally:
        codes = [stop(w) for w in workers]
        api_code = stop(api)
    assert codes == [0, 0], [(tmp_path / f"worker{n}.log").read_text()[-2000:] for n in (1, 2)]
    assert api_code in (0, -signal.SIGTERM), (tmp_path / "api.log").read_text()[-2000:]
    for n in (1, 2):
        assert not (tmp_path / f"worker{n}.alive").exists()
        check = subprocess.run([sys.executable, "-m", "service.run_worker", "--check"], cwd=ROOT,
                               env=env | {"WORKER_HEARTBEAT_FILE": str(tmp_path / f"worker{n}.alive")})
        assert check.returncode == 1
