"""The Temporal worker: application, hardship-file, campaign and gift workflows and their activities."""

from __future__ import annotations

import asyncio
import concurrent.futures

from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities import WelfareActivities
from activities.campaign import CampaignActivities
from activities.hardship import HardshipActivities
from workflows.application import ApplicationWorkflow
from workflows.campaign import CampaignWorkflow, HouseholdPaymentWorkflow
from workflows.gifts import DailyGiftsWorkflow
from workflows.hardship_file import HardshipFileWorkflow

def sandboxed_runner() -> SandboxedWorkflowRunner:
    """The sandbox still refuses non-deterministic calls; modules are passed through rather than
    re-imported for every workflow run. The audit replayer uses the same configuration."""
    return SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_all_modules())


WORKFLOWS = [ApplicationWorkflow, HardshipFileWorkflow, CampaignWorkflow, HouseholdPaymentWorkflow, DailyGiftsWorkflow]


def build_worker(client: Client, engine: Engine, task_queue: str, executor: concurrent.futures.Executor) -> Worker:
    acts = WelfareActivities(engine)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=acts.all() + HardshipActivities(engine, acts.registry).all()
        + CampaignActivities(engine, client, task_queue, acts.registry).all(),
        activity_executor=executor,
        workflow_runner=sandboxed_runner(),
        max_concurrent_activities=32,
        max_concurrent_local_activities=32,
    )


async def run_worker(client: Client, engine: Engine, task_queue: str, stop: asyncio.Event) -> None:
    with concurrent.futures.ThreadPoolExecutor(max_workers=32) as executor:
        async with build_worker(client, engine, task_queue, executor):
            await stop.wait()
