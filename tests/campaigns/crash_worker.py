"""A worker process that dies in the middle of a warmth campaign: right after its N-th payment is
committed to the ledger, before Temporal hears of it (other payments in flight die with it).

    python -m tests.campaigns.crash_worker ADDRESS TASK_QUEUE DATABASE_URL N
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import sys
import threading

from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

from activities import WelfareActivities
from activities.campaign import CampaignActivities
from service import ledger
from service.db import make_engine
from service.worker import WORKFLOWS
from workflows.types import MoneyRequest

CRASH_EXIT = 137


class DiesMidCampaign(WelfareActivities):
    def __init__(self, engine, die_after: int):
        super().__init__(engine)
        self.die_after, self.paid, self.lock = die_after, 0, threading.Lock()

    @activity.defn(name="disburse")
    def disburse(self, m: MoneyRequest) -> bool:
        ledger.disburse(self.engine, m)  # the real payment, committed
        with self.lock:
            self.paid += 1
            if self.paid >= self.die_after:
                os._exit(CRASH_EXIT)  # the process dies before the result reaches Temporal
        return True


async def main(address: str, task_queue: str, database_url: str, die_after: str) -> None:
    client = await Client.connect(address)
    engine = make_engine(database_url)
    acts = DiesMidCampaign(engine, int(die_after))
    with concurrent.futures.ThreadPoolExecutor(max_workers=32) as executor:
        worker = Worker(client, task_queue=task_queue, workflows=WORKFLOWS,
                        activities=acts.all() + CampaignActivities(engine, client, task_queue, acts.registry).all(),
                        activity_executor=executor, max_concurrent_activities=32)
        await worker.run()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
