"""The Temporal worker alone, as in docker-compose.yml's `worker` service; run as many as the load needs.

    python -m service.run_worker            # poll TASK_QUEUE on TEMPORAL_ADDRESS, with DATABASE_URL
    python -m service.run_worker --check    # the container healthcheck: exit 0 while the worker is alive

On start it makes sure the daily gift schedule exists (service/schedules.py), as `make run` does.
Every worker on the same task queue shares the work. That is safe because every activity is
idempotent: money moves by conditional updates with unique ledger keys, projections carry sequence
numbers, notifications have keys (see activities/welfare.py and service/ledger.py).

While it runs, the worker checks every HEARTBEAT_SECONDS that the Temporal frontend answers and then
touches WORKER_HEARTBEAT_FILE; `--check` fails when that file is older than STALE_SECONDS.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from temporalio.client import Client

# Only the standard library above: `--check` runs every few seconds in the container and must start fast.
HEARTBEAT_SECONDS = 10
STALE_SECONDS = 60


def heartbeat_file() -> Path:
    return Path(os.environ.get("WORKER_HEARTBEAT_FILE", "/tmp/welfare-worker.alive"))


def healthy(path: Path | None = None, stale_after: float = STALE_SECONDS) -> bool:
    path = path or heartbeat_file()
    try:
        return time.time() - path.stat().st_mtime < stale_after
    except FileNotFoundError:
        return False


async def connect(address: str, namespace: str, timeout: float = 120) -> Client:
    import structlog
    from temporalio.client import Client

    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            return await Client.connect(address, namespace=namespace)
        except Exception:  # noqa: BLE001 - the server is still starting
            if asyncio.get_running_loop().time() > deadline:
                raise
            structlog.get_logger("run_worker").warning("temporal_not_ready", address=address, retry_in_s=2)
            await asyncio.sleep(2)


async def beat(client: Client, path: Path, stop: asyncio.Event) -> None:
    while not stop.is_set():
        with contextlib.suppress(Exception):  # a missed beat is what the healthcheck is for
            if await client.service_client.check_health(timeout=timedelta(seconds=5)):
                path.touch()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), HEARTBEAT_SECONDS)


async def main() -> None:
    import structlog

    from service.db import make_engine
    from service.logging import configure
    from service.run_api import migrate_when_ready
    from service.schedules import ensure_gift_schedule
    from service.settings import get_settings
    from service.worker import run_worker

    log = structlog.get_logger("run_worker")
    settings = get_settings()
    configure(settings.log_json, settings.log_level)
    engine = make_engine(settings.resolved_database_url)
    await asyncio.to_thread(migrate_when_ready, engine)  # the API does it too; whoever comes first, once
    client = await connect(settings.temporal_address, settings.temporal_namespace)
    # The daily birthday / retirement gifts, as `make run` does: creating or updating it on every start is safe.
    await ensure_gift_schedule(client, settings.task_queue)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    path = heartbeat_file()
    log.info("worker_starting", task_queue=settings.task_queue, temporal=settings.temporal_address, database=engine.dialect.name)
    heart = asyncio.create_task(beat(client, path, stop))
    try:
        await run_worker(client, engine, settings.task_queue, stop)
    finally:
        stop.set()
        await heart
        path.unlink(missing_ok=True)
        engine.dispose()
        log.info("worker_stopped")


def cli(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m service.run_worker", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 0 if the worker's heartbeat is fresh (healthcheck)")
    args = parser.parse_args(argv)
    if args.check:
        raise SystemExit(0 if healthy() else 1)
    from service.process import exit_now

    asyncio.run(main())
    exit_now(0)  # past the Temporal client's native threads, which can crash interpreter teardown


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    cli(sys.argv[1:])
