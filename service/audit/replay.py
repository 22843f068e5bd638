"""Replay histories against the current workflow code: ok, or non-deterministic at an event."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from service.worker import WORKFLOWS, sandboxed_runner

_EVENT = re.compile(r"HistoryEvent\(id: (\d+)")


@dataclass
class ReplayOutcome:
    workflow_id: str
    run_id: str
    ok: bool
    event_id: int | None = None  # where replay diverged from history
    error: str | None = None

    @property
    def zh(self) -> str:
        if self.ok:
            return "重放一致"
        return f"重放不一致（第 {self.event_id} 个事件处）" if self.event_id else "重放不一致"


async def _iterate(histories: Iterable[WorkflowHistory]) -> AsyncIterator[WorkflowHistory]:
    for history in histories:
        yield history


def replayer_for(workflows) -> Replayer:
    """The worker's own sandbox configuration, so replay checks the code as the worker runs it."""
    return Replayer(workflows=workflows, workflow_runner=sandboxed_runner())


async def replay(histories: Iterable[WorkflowHistory] | AsyncIterator[WorkflowHistory], workflows=None) -> list[ReplayOutcome]:
    """Replay every history; ``workflows`` defaults to the ones the worker runs."""
    source = histories if hasattr(histories, "__aiter__") else _iterate(histories)
    replayer = replayer_for(workflows or WORKFLOWS)
    outcomes: list[ReplayOutcome] = []
    async with replayer.workflow_replay_iterator(source) as results:
        async for result in results:
            history = result.history
            failure = result.replay_failure
            if failure is None:
                outcomes.append(ReplayOutcome(history.workflow_id, history.run_id, True))
                continue
            message = str(failure)
            found = _EVENT.search(message)
            event_id = int(found.group(1)) if found else await divergence(history, replayer)
            outcomes.append(ReplayOutcome(history.workflow_id, history.run_id, False, event_id, message[:2000]))
    return outcomes


async def _fails(history: WorkflowHistory, replayer: Replayer) -> bool:
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    return result.replay_failure is not None


async def divergence(history: WorkflowHistory, replayer: Replayer) -> int | None:
    """The first event at which the code and the history part ways: the shortest failing prefix."""
    events = list(history.events)
    low, high = 1, len(events)  # invariant: the prefix of `high` events fails
    if not await _fails(WorkflowHistory(history.workflow_id, events), replayer):
        return None
    while low < high:
        middle = (low + high) // 2
        if await _fails(WorkflowHistory(history.workflow_id, events[:middle]), replayer):
            high = middle
        else:
            low = middle + 1
    return events[high - 1].event_id
