"""A worker process that dies at the worst moment: right after the payment is committed to the
ledger, before Temporal hears that the activity finished. Used by the crash tests.

    python -m tests.crash_worker ADDRESS TASK_QUEUE DATABASE_URL
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import sys

from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

from activities import WelfareActivities
from service import ledger
from service.db import make_engine
from service.worker import WORKFLOWS
from workflows.types import MoneyRequest

CRASH_EXIT = 137


class DiesAfterPaying(WelfareActivities):
    @activity.defn(name="disburse")
    def disburse(self, m: MoneyRequest) -> bool:
        ledger.disburse(self.engine, m)  # the real payment, committed
        os._exit(CRASH_EXIT)  # the process dies before the result reaches Temporal


async def main(address: str, task_queue: str, database_url: str) -> None:
    client = await Client.connect(address)
    acts = DiesAfterPaying(make_engine(database_url))
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as executor:
        worker = Worker(client, task_queue=task_queue, workflows=WORKFLOWS, activities=acts.all(), activity_executor=executor)
        await worker.run()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
