"""A running service with the campaign routes (included here if service.app does not include them yet)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import uuid

import httpx
import pytest_asyncio
import uvicorn

from service.app import create_app
from service.db import make_engine, migrate
from service.routes import campaigns
from service.settings import Settings
from service.worker import build_worker

from ..api.conftest import Service, free_port, set_passwords
from ..world import build


def with_campaign_routes(app):
    if not any(getattr(r, "path", "").startswith("/api/campaigns") for r in app.routes):
        app.include_router(campaigns.router)
    return app


@pytest_asyncio.fixture
async def campaign_service(dev_env, tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'api.db'}")
    migrate(engine)
    world = build(engine)
    set_passwords(engine)
    task_queue = f"campaign-api-{uuid.uuid4().hex[:8]}"
    client = dev_env.client

    async def temporal():
        return client

    app = with_campaign_routes(create_app(Settings(task_queue=task_queue), engine, temporal))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    with concurrent.futures.ThreadPoolExecutor(max_workers=32) as executor:
        async with build_worker(client, engine, task_queue, executor):
            serving = asyncio.create_task(server.serve())
            while not server.started:
                await asyncio.sleep(0.02)
            base = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(base_url=base, timeout=60) as http:
                yield Service(base, engine, world, client, http, {}, task_queue)
            server.should_exit = True
            await serving
    engine.dispose()
