"""The FastAPI application: JSON API (OpenAPI at /docs) over the store and the workflows."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from temporalio.client import Client

from service import errors, evidence
from service.routes import applications, audit, audit_reports, auth, campaigns, funds, hardship, members, tasks
from service.routes import evidence as evidence_routes
from service.settings import Settings
from service.web import hardship_pages
from service.web import routes as pages

log = structlog.get_logger("api")
MAX_BODY_BYTES = 2 * 1024 * 1024
_APP_ID = re.compile(r"/api/applications/([A-Za-z0-9-]{1,40})")


def temporal_connector(address: str, namespace: str) -> Callable[[], Awaitable[Client]]:
    """Connect on first use (the API starts even while Temporal is still coming up)."""
    lock = asyncio.Lock()
    client: list[Client] = []

    async def get() -> Client:
        if not client:
            async with lock:
                if not client:
                    client.append(await Client.connect(address, namespace=namespace))
        return client[0]

    return get


def create_app(settings: Settings, engine: Engine, temporal: Callable[[], Awaitable[Client]]) -> FastAPI:
    app = FastAPI(
        title="工会福利审批 Union welfare approvals",
        version="0.1.0",
        description="Rules engine and workflow service for trade-union welfare benefits. Money is integer fen (分).",
    )
    app.state.engine = engine
    app.state.temporal = temporal
    app.state.task_queue = settings.task_queue
    app.state.settings = settings
    errors.install(app)

    @app.middleware("http")
    async def context_and_limits(request: Request, call_next) -> Response:
        structlog.contextvars.clear_contextvars()
        match = _APP_ID.search(request.url.path)
        structlog.contextvars.bind_contextvars(request_id=uuid.uuid4().hex[:12], path=request.url.path,
                                               application_id=match.group(1) if match else None)
        length = request.headers.get("content-length")
        limit = evidence.body_limit(request.method, request.url.path, settings) or MAX_BODY_BYTES
        if length is not None and (not length.isdigit() or int(length) > limit):
            mb = limit // (1024 * 1024)
            return JSONResponse({"error": "too_large", "reason_zh": f"请求内容过大（上限 {mb} MB）",
                                 "reason_en": f"The request body is too large ({mb} MB at most)"}, status_code=413)
        response = await call_next(request)
        log.info("request", method=request.method, status=response.status_code)
        return response

    @app.get("/api/health", tags=["health"], summary="Liveness / 健康检查")
    async def health() -> dict:
        return {"status": "ok"}

    for module in (auth, applications, tasks, members, funds, audit, audit_reports, campaigns, hardship, evidence_routes):
        app.include_router(module.router)
    app.include_router(pages.router)
    app.include_router(hardship_pages.router)
    app.mount("/static", StaticFiles(directory=str(Path(pages.__file__).parent / "static")), name="static")
    return app
