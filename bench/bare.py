"""A bare workflow for bench.e2e: the auto route's activity calls up to "disbursed", each a no-op.

ApplicationWorkflow on the auto route (birthday, holiday_gift) makes, until it records "disbursed"
("filed" is written with the application row, before the workflow starts):

    gather_facts  evaluate_rules  project(rules_evaluated)
    reserve_funds  project(approved)  disburse  project(disbursed)

that is 5 local activities (gather_facts, evaluate_rules, 3 projections) and 2 regular ones
(reserve_funds, disburse). BareWorkflow makes the same calls in the same order with the same
options, on a worker configured like ours, so the difference is what our activities do.
"""

from __future__ import annotations

import concurrent.futures
import threading

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():
    from service.worker import sandboxed_runner
    from workflows.application import LOCAL, MONEY

LOCAL_STEP, REGULAR_STEP = "local", "regular"
STEPS = [
    (LOCAL_STEP, "gather_facts"),
    (LOCAL_STEP, "evaluate_rules"),
    (LOCAL_STEP, "project:rules_evaluated"),
    (REGULAR_STEP, "reserve_funds"),
    (LOCAL_STEP, "project:approved"),
    (REGULAR_STEP, "disburse"),
    (LOCAL_STEP, "project:disbursed"),
]
LAST_STEP = STEPS[-1][1]


class Reached:
    """Which bare workflows have made their last call: the counterpart of polling status='disbursed'."""

    def __init__(self) -> None:
        self._ids: set[str] = set()
        self._lock = threading.Lock()

    def add(self, workflow_id: str) -> None:
        with self._lock:
            self._ids.add(workflow_id)

    def count(self, workflow_ids: set[str]) -> int:
        with self._lock:
            return len(self._ids & workflow_ids)


class BareActivities:
    def __init__(self, reached: Reached) -> None:
        self.reached = reached

    @activity.defn(name="bare_local")
    def local(self, step: str) -> None:
        if step == LAST_STEP:
            self.reached.add(activity.info().workflow_id)

    @activity.defn(name="bare_regular")
    def regular(self, step: str) -> None:
        pass


@workflow.defn(name="BareWorkflow")
class BareWorkflow:
    @workflow.run
    async def run(self) -> None:
        for kind, step in STEPS:
            if kind == LOCAL_STEP:
                await workflow.execute_local_activity("bare_local", step, **LOCAL)
            else:
                await workflow.execute_activity("bare_regular", step, **MONEY)


def build_bare_worker(client: Client, reached: Reached, task_queue: str, executor: concurrent.futures.Executor) -> Worker:
    """Configured as service.worker.build_worker configures ours."""
    acts = BareActivities(reached)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[BareWorkflow],
        activities=[acts.local, acts.regular],
        activity_executor=executor,
        workflow_runner=sandboxed_runner(),
        max_concurrent_activities=32,
        max_concurrent_local_activities=32,
    )
