"""Application histories from Temporal, decoded into what an auditor reads.

Everything here comes from the workflow's event history, never from our database: the input as
filed, every rules input and decision (local-activity results), every approver action (accepted
Updates, with the actor), every movement of money (regular activities with their requests and
results) and the outcome.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory
from temporalio.converter import default as default_converter

WORKFLOW_TYPE = "ApplicationWorkflow"
MONEY_ACTIVITIES = {"reserve_funds": "reserve", "disburse": "disburse", "release_funds": "release"}
_payloads = default_converter().payload_converter


@dataclass
class Evaluation:
    event_id: int
    at: dt.datetime
    facts: dict[str, Any]
    decision: dict[str, Any] | None = None


@dataclass
class Action:
    event_id: int
    at: dt.datetime
    update: str  # act / withdraw / resubmit / revoke / object
    args: list[Any]

    @property
    def actor(self) -> str | None:
        first = self.args[0] if self.args else None
        if isinstance(first, dict):
            return (first.get("actor") or first).get("username")
        return None


@dataclass
class MoneyMove:
    event_id: int
    at: dt.datetime
    kind: str  # reserve / disburse / release
    request: dict[str, Any]
    result: Any = None

    @property
    def happened(self) -> bool:
        """A reservation that found no funds moved nothing."""
        return self.kind != "reserve" or bool(isinstance(self.result, dict) and self.result.get("ok"))


@dataclass
class RecordedApplication:
    workflow_id: str
    run_id: str
    history: WorkflowHistory
    started_at: dt.datetime | None = None
    closed_at: dt.datetime | None = None
    input: dict[str, Any] = field(default_factory=dict)
    evaluations: list[Evaluation] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    money: list[MoneyMove] = field(default_factory=list)
    result: str | None = None  # the final status, once the workflow has completed
    terminated: bool = False

    @property
    def decision(self) -> dict[str, Any] | None:
        decided = [e.decision for e in self.evaluations if e.decision is not None]
        return decided[-1] if decided else None


def _time(event: HistoryEvent) -> dt.datetime:
    return event.event_time.ToDatetime(tzinfo=dt.UTC)


def _decode(payloads) -> list[Any]:
    return [_payloads.from_payload(p) for p in payloads]


def decode(history: WorkflowHistory) -> RecordedApplication:
    events = list(history.events)
    rec = RecordedApplication(history.workflow_id, history.run_id, history)
    scheduled: dict[int, MoneyMove] = {}
    for event in events:
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            attrs = event.workflow_execution_started_event_attributes
            rec.started_at = _time(event)
            args = _decode(attrs.input.payloads)
            rec.input = args[0] if args else {}
        elif kind == EventType.EVENT_TYPE_MARKER_RECORDED:
            _local_activity(rec, event)
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            money_kind = MONEY_ACTIVITIES.get(attrs.activity_type.name)
            if money_kind:
                request = _decode(attrs.input.payloads)[0]
                scheduled[event.event_id] = MoneyMove(event.event_id, _time(event), money_kind, request)
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            attrs = event.activity_task_completed_event_attributes
            move = scheduled.get(attrs.scheduled_event_id)
            if move is not None:
                results = _decode(attrs.result.payloads)
                move.result = results[0] if results else None
                move.at = _time(event)
                rec.money.append(move)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            attrs = event.workflow_execution_update_accepted_event_attributes
            request = attrs.accepted_request.input
            rec.actions.append(Action(event.event_id, _time(event), request.name, _decode(request.args.payloads)))
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            rec.closed_at = _time(event)
            results = _decode(event.workflow_execution_completed_event_attributes.result.payloads)
            rec.result = results[0] if results else None
        elif kind in (EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
                      EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED):
            rec.closed_at = _time(event)
            rec.terminated = True
    return rec


def _local_activity(rec: RecordedApplication, event: HistoryEvent) -> None:
    marker = event.marker_recorded_event_attributes
    if marker.marker_name != "core_local_activity" or "data" not in marker.details:
        return
    data = json.loads(marker.details["data"].payloads[0].data)
    result = _decode(marker.details["result"].payloads) if "result" in marker.details else []
    value = result[0] if result else None
    if data.get("activity_type") == "gather_facts" and isinstance(value, dict):
        rec.evaluations.append(Evaluation(event.event_id, _time(event), value.get("facts", {})))
    elif data.get("activity_type") == "evaluate_rules" and rec.evaluations:
        rec.evaluations[-1].decision = value


async def fetch_one(client: Client, workflow_id: str) -> WorkflowHistory:
    return await client.get_workflow_handle(workflow_id).fetch_history()


def year_query(year: int) -> str:
    start = dt.datetime(year, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=8))).isoformat()
    end = dt.datetime(year + 1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=8))).isoformat()
    return f"WorkflowType = '{WORKFLOW_TYPE}' AND StartTime >= '{start}' AND StartTime < '{end}'"


async def fetch_many(client: Client, *, ids: list[str] | None = None, query: str | None = None,
                     year: int | None = None, limit: int | None = None) -> AsyncIterator[WorkflowHistory]:
    """Histories by id, by a visibility query, or for a whole year (China time)."""
    if ids:
        for workflow_id in ids:
            yield await fetch_one(client, workflow_id)
        return
    query = query or (year_query(year) if year is not None else f"WorkflowType = '{WORKFLOW_TYPE}'")
    async for history in client.list_workflows(query, limit=limit).map_histories():
        yield history
