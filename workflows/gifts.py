"""Scheduled gifts: DailyGiftsWorkflow, started every day by a Temporal Schedule (service.schedules).

Each run processes every day of a window — by default the ``catchup_days`` before today, today
included — so days missed while the service was down are caught up by the next run. Nothing keeps a
"last processed day": a gift's application is recorded with an idempotency key derived from the
member, benefit and year (``gift:birthday:<year>:m<member>``), so processing a day again, or two runs
overlapping, creates nothing twice; the claim slot in the ledger would refuse a second payment anyway.

The gifts themselves are ordinary applications (ApplicationWorkflow) on the benefit's route; on the
auto route they carry their month as ``batch`` and wait for the chair's one-action batch sign-off.
"""

from __future__ import annotations

from datetime import date, timedelta, timezone

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    import workflows.campaign_types as c

CHINA = timezone(timedelta(hours=8))
CHUNK_DAYS = 31  # one activity per month of days at most: short activities, small results
CREATE = {"start_to_close_timeout": timedelta(minutes=10), "heartbeat_timeout": timedelta(minutes=2),
          "retry_policy": RetryPolicy(maximum_interval=timedelta(minutes=1))}


@workflow.defn(name="DailyGiftsWorkflow")
class DailyGiftsWorkflow:
    @workflow.run
    async def run(self, inp: c.GiftsInput) -> c.GiftsResult:
        end = date.fromisoformat(inp.end) if inp.end else workflow.now().astimezone(CHINA).date()
        start = date.fromisoformat(inp.start) if inp.start else end - timedelta(days=inp.catchup_days)
        total = c.GiftsResult(start.isoformat(), end.isoformat(), 0, 0, 0)
        day = start
        while day <= end:
            last = min(end, day + timedelta(days=CHUNK_DAYS - 1))
            part = await workflow.execute_activity(
                "create_gifts", c.GiftsRange(day.isoformat(), last.isoformat(), inp.org_id), result_type=c.GiftsResult, **CREATE
            )
            total.created += part.created
            total.existing += part.existing
            total.started += part.started
            day = last + timedelta(days=1)
        return total
