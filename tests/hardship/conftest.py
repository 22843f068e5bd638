"""The API tests' running service, with the hardship-file routes included whether or not service/app.py has them yet."""

from __future__ import annotations

import pytest_asyncio

from service.app import create_app
from service.db import make_engine, migrate
from service.routes import hardship

from ..api import conftest as api


def create_app_with_files(*args, **kwargs):
    app = create_app(*args, **kwargs)
    if not any(getattr(route, "path", "").startswith(hardship.router.prefix) for route in app.routes):
        app.include_router(hardship.router)
    return app


@pytest_asyncio.fixture
async def service(dev_env, tmp_path, monkeypatch):
    monkeypatch.setattr(api, "create_app", create_app_with_files)
    engine = make_engine(f"sqlite:///{tmp_path / 'api.db'}")
    migrate(engine)
    async with api.running_service(dev_env, engine) as svc:
        yield svc
    engine.dispose()
