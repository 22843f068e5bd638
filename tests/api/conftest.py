"""A running service for API tests: Temporal dev server, worker, uvicorn on a free port, real HTTP."""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import tempfile
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
import uvicorn
from sqlmodel import Session, select

from service.app import create_app
from service.db import make_engine, migrate
from service.models import User
from service.security import hash_password
from service.settings import Settings
from service.worker import build_worker

from ..conftest import drop_postgres, fresh_postgres_url, postgres_reachable
from ..world import World, build

PASSWORD = "correct horse battery staple"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Service:
    base_url: str
    engine: object
    world: World
    client: object  # temporalio Client
    http: httpx.AsyncClient
    tokens: dict[str, str]
    task_queue: str
    evidence_dir: Path | None = None  # uploaded files: a temporary directory per service

    async def login(self, username: str) -> dict[str, str]:
        if username not in self.tokens:
            r = await self.http.post("/api/auth/token", json={"username": username, "password": PASSWORD})
            assert r.status_code == 200, r.text
            self.tokens[username] = r.json()["access_token"]
        return {"Authorization": f"Bearer {self.tokens[username]}"}

    async def call(self, method: str, path: str, user: str | None = None, **kw) -> httpx.Response:
        headers = kw.pop("headers", {}) | (await self.login(user) if user else {})
        return await self.http.request(method, path, headers=headers, **kw)


def set_passwords(engine) -> None:
    hashed = hash_password(PASSWORD)
    with Session(engine) as s, s.begin():
        for user in s.exec(select(User)).all():
            user.password_hash = hashed


@asynccontextmanager
async def running_service(dev_env, engine, **world_kw):
    world = build(engine, **world_kw)
    set_passwords(engine)
    task_queue = f"api-{uuid.uuid4().hex[:8]}"
    evidence_dir = tempfile.TemporaryDirectory(prefix="evidence-")
    settings = Settings(task_queue=task_queue, evidence_dir=Path(evidence_dir.name) / "store")
    client = dev_env.client

    async def temporal():
        return client

    app = create_app(settings, engine, temporal)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    with evidence_dir, concurrent.futures.ThreadPoolExecutor(max_workers=32) as executor:
        async with build_worker(client, engine, task_queue, executor):
            serving = asyncio.create_task(server.serve())
            while not server.started:
                await asyncio.sleep(0.02)
            base = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(base_url=base, timeout=60) as http:
                yield Service(base, engine, world, client, http, {}, task_queue, settings.evidence_dir)
            server.should_exit = True
            await serving


@asynccontextmanager
async def database(kind: str, tmp_path):
    """A migrated engine: SQLite in tmp_path, or a fresh PostgreSQL database (dropped afterwards),
    skipped with a message saying so where no PostgreSQL server answers."""
    if kind == "postgresql":
        if not postgres_reachable():
            pytest.skip("PostgreSQL not reachable at 127.0.0.1:5432: PostgreSQL variant NOT exercised")
        url = fresh_postgres_url()
    else:
        url = f"sqlite:///{tmp_path / 'api.db'}"
    engine = make_engine(url)
    migrate(engine)
    try:
        yield engine
    finally:
        engine.dispose()
        if kind == "postgresql":
            drop_postgres(url)


@pytest_asyncio.fixture
async def service(dev_env, tmp_path):
    async with database("sqlite", tmp_path) as engine, running_service(dev_env, engine) as svc:
        yield svc


@pytest_asyncio.fixture(params=["sqlite", "postgresql"])
async def service_any_db(request, dev_env, tmp_path):
    async with database(request.param, tmp_path) as engine, running_service(dev_env, engine, welfare_fen=25 * 30_000) as svc:
        yield svc
