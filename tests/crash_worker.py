"""A worker process that dies at the worst moment: right after one activity has done its real work
(committed its effect), before Temporal hears that it finished. Used by the crash tests.

    python -m tests.crash_worker ADDRESS TASK_QUEUE DATABASE_URL [ACTIVITY [WHEN]]

ACTIVITY is the activity that dies (default ``disburse``: the payment is committed, the report never
sent). WHEN narrows it to one call, by what the call is about: the history action for ``project`` and
``hardship_record``, the notice kind for ``notify`` and ``hardship_notify``. Every other activity, and
every workflow, is the service's own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import inspect
import os
import sys

from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

from activities import WelfareActivities
from activities.campaign import CampaignActivities
from activities.hardship import HardshipActivities
from service.db import make_engine
from service.worker import WORKFLOWS, sandboxed_runner

CRASH_EXIT = 137


def about(name: str, args: tuple) -> str | None:
    """What one call of ``name`` is about, to match against WHEN."""
    first = args[0] if args else None
    if name == "project":
        return first.event.action
    if name == "hardship_record":
        return first.item.action
    if name in ("notify", "hardship_notify"):
        return first.kind
    return None


def dies_after(fn, name: str, when: str | None):
    """``fn`` registered as activity ``name``; the process exits once a matching call has returned."""

    def crash_if_matching(args: tuple) -> None:
        if when is None or about(name, args) == when:
            os._exit(CRASH_EXIT)  # the effect is committed; the result never reaches Temporal

    # updated=(): the wrapper takes the signature and type hints, not the activity definition.
    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn, updated=())
        async def wrapper(*args):
            result = await fn(*args)
            crash_if_matching(args)
            return result
    else:
        @functools.wraps(fn, updated=())
        def wrapper(*args):
            result = fn(*args)
            crash_if_matching(args)
            return result
    return activity.defn(name=name)(wrapper)


def activities(engine, client: Client, task_queue: str, dying: str, when: str | None) -> list:
    welfare = WelfareActivities(engine)
    found = (welfare.all() + HardshipActivities(engine, welfare.registry).all()
             + CampaignActivities(engine, client, task_queue, welfare.registry).all())
    names = [activity._Definition.must_from_callable(fn).name for fn in found]
    if dying not in names:
        raise SystemExit(f"no activity named {dying!r}; known: {', '.join(names)}")
    return [dies_after(fn, name, when) if name == dying else fn for fn, name in zip(found, names, strict=True)]


async def main(address: str, task_queue: str, database_url: str, dying: str = "disburse", when: str | None = None) -> None:
    client = await Client.connect(address)
    engine = make_engine(database_url)
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as executor:
        worker = Worker(client, task_queue=task_queue, workflows=WORKFLOWS,
                        activities=activities(engine, client, task_queue, dying, when), activity_executor=executor,
                        max_concurrent_activities=16, workflow_runner=sandboxed_runner())
        await worker.run()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
