"""Replay against the current code, and re-check every recorded decision."""

import json
from temporalio.client import WorkflowHistory

from rules.loader import default_registry
from service.audit import history, recheck, replay

from ..workflows.helpers import running_worker
from ..world import build
from .changed_workflow import ChangedWorkflow
from .histories import run_some


async def test_replay_ok_then_catches_a_changed_workflow(time_env, engine):
    world = build(engine)
    async with running_worker(time_env.client, engine) as tq:
        ids = await run_some(time_env.client, engine, world, tq)
        histories = [await history.fetch_one(time_env.client, i) for i in ids.values()]
    outcomes = await replay.replay(histories)
    assert [o.ok for o in outcomes] == [True] * 4
    changed = await replay.replay(histories, workflows=[ChangedWorkflow])
    assert not any(o.ok for o in changed)
    from temporalio.api.enums.v1 import EventType

    for outcome, h in zip(changed, histories):
        first_marker = next(e.event_id for e in h.events if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED)
        assert outcome.event_id == first_marker, (outcome.event_id, first_marker, outcome.error)
    assert "不一致" in changed[0].zh


async def test_recheck_confirms_decisions_and_catches_an_edited_history(time_env, engine):
    world = build(engine)
    async with running_worker(time_env.client, engine) as tq:
        ids = await run_some(time_env.client, engine, world, tq)
        histories = [await history.fetch_one(time_env.client, i) for i in ids.values()]
    records = [history.decode(h) for h in histories]
    birthday = records[0]
    assert birthday.decision["approved_fen"] == 30_000 and birthday.decision["fired"][0] == "birthday.eligible"
    assert birthday.evaluations[0].facts["requested_fen"] == 35_000
    assert [m.kind for m in birthday.money] == ["reserve", "disburse"]
    assert [a.update for a in birthday.actions] == ["act", "act"] and birthday.actions[0].actor == "clerk"
    report = recheck.recheck(records, default_registry())
    assert report.ok and report.decisions == 4
    # Someone edits the recorded decision (more money than the rules gave): the re-check says so.
    raw = json.loads(histories[0].to_json())
    for event in raw["events"]:
        details = event.get("markerRecordedEventAttributes", {}).get("details", {})
        result = details.get("result", {}).get("payloads", [{}])[0]
        if result.get("data") and "approved_fen" in _b64(result["data"]):
            result["data"] = _b64e(_b64(result["data"]).replace('"approved_fen":30000', '"approved_fen":35000'))
    edited = history.decode(WorkflowHistory.from_json(histories[0].workflow_id, raw))
    report = recheck.recheck([edited], default_registry())
    assert [(d.field, d.recorded, d.now) for d in report.differences] == [("approved_fen", 35_000, 30_000)]


def _b64(data: str) -> str:
    import base64

    return base64.b64decode(data).decode()


def _b64e(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()
