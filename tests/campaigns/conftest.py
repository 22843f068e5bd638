"""The running service of the API tests, for the campaign and gift tests."""

from __future__ import annotations

import pytest_asyncio

from ..api.conftest import database, running_service


@pytest_asyncio.fixture
async def campaign_service(dev_env, tmp_path):
    async with database("sqlite", tmp_path) as engine, running_service(dev_env, engine) as svc:
        yield svc
