"""依档帮扶: hardship assistance (the existing application workflow) needs a file active on the event date,
and stays within its tier's yearly cap."""

import datetime as dt

from sqlmodel import Session

from service import filing
from service.models import Application
from workflows.application import CHINA, ApplicationWorkflow
from workflows.types import ApplicationDetails

from ..workflows.helpers import open_tasks
from ..workflows.helpers import until as app_until
from ..world import build
from .helpers import DEEP, file_worker, open_file, server_today, to_active


async def file_assistance(client, engine, world, tq, day: dt.date, requested_fen: int):
    """File on the server's date (its clock runs ahead of the wall clock once tests skip time)."""
    details = ApplicationDetails(requested_fen=requested_fen, evidence=["assistance_request"])
    app, _ = filing.record(engine, org_id=world.org_id, member_id=world.members["alice"], benefit="hardship_assistance",
                           event_date=day, details=details, filed_by=world.users["clerk"])
    with Session(engine, expire_on_commit=False) as s, s.begin():
        row = s.get(Application, app.id)
        row.created_at = dt.datetime.combine(day, dt.time(10), CHINA)
        app = row
    await filing.start(client, filing.to_input(app, world.users["clerk"]), tq)
    return client.get_workflow_handle_for(ApplicationWorkflow.run, app.id)


def rules_step(snap):
    return next(e for e in snap.history if e.action == "rules_evaluated").detail


async def test_assistance_needs_an_active_file_and_stays_within_the_tier_cap(time_env, engine):
    world = build(engine)
    client = time_env.client
    async with file_worker(client, engine) as tq:
        today = await server_today(time_env)
        h = await file_assistance(client, engine, world, tq, today, 200_000)
        snap = await app_until(h, lambda s: s.status == "rejected")
        assert rules_step(snap)["fired"] == ["hardship_assistance.no_active_file"]  # no file: 先建档、后帮扶
        assert snap.history[-1].detail["reasons"] == ["没有有效的困难职工档案，先建档、后帮扶"]

        f = await open_file(client, engine, world, tq, time_env)
        await to_active(f, world, time_env, DEEP)  # deep hardship: up to 10,000 yuan a year
        today = await server_today(time_env)

        h = await file_assistance(client, engine, world, tq, today, 1_000_001)
        snap = await app_until(h, lambda s: s.status == "rejected")
        assert rules_step(snap)["fired"] == ["hardship_assistance.over_period_cap.deep"]  # over the tier's yearly cap

        h = await file_assistance(client, engine, world, tq, today, 1_000_000)
        snap = await app_until(h, lambda s: bool(open_tasks(s, "committee_vote")))
        step = rules_step(snap)
        assert (step["outcome"], step["approved_fen"], step["cap_fen"]) == ("eligible", 1_000_000, 1_000_000)
        assert step["fired"] == ["hardship_assistance.eligible.deep"]  # on to the committee, as any assistance
        await h.terminate("test finished")
