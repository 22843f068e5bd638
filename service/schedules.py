"""The Temporal Schedule that starts DailyGiftsWorkflow every day at 01:00 China time.

``ensure_gift_schedule`` creates the schedule, or brings an existing one up to date: calling it on
every start of the service is safe. Missed runs (the server was down) are caught up within the
catch-up window, one at a time (overlap SKIP); each run also re-processes the days before it, so a
run that was skipped still has its days covered, and nothing is created twice.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from workflows.campaign_types import GiftsInput
from workflows.gifts import DailyGiftsWorkflow

GIFT_SCHEDULE_ID = "daily-gifts"
CATCHUP_WINDOW = timedelta(days=30)


def gift_schedule(task_queue: str, workflow_id: str = GIFT_SCHEDULE_ID, catchup_days: int = 31) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(DailyGiftsWorkflow.run, GiftsInput(catchup_days=catchup_days), id=workflow_id,
                                           task_queue=task_queue),
        spec=ScheduleSpec(calendars=[ScheduleCalendarSpec(hour=[ScheduleRange(1)], comment="01:00 China time")],
                          time_zone_name="Asia/Shanghai"),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=CATCHUP_WINDOW),
    )


async def ensure_gift_schedule(client: Client, task_queue: str, schedule_id: str = GIFT_SCHEDULE_ID) -> None:
    """Create the daily gift schedule, or update it to this version's definition."""
    schedule = gift_schedule(task_queue, workflow_id=schedule_id)
    try:
        await client.create_schedule(schedule_id, schedule)
    except ScheduleAlreadyRunningError:

        def keep_state(current: ScheduleUpdateInput) -> ScheduleUpdate:
            schedule.state = current.description.schedule.state  # an administrator's pause stays
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(schedule_id).update(keep_state)
