"""durable-rules, wrapped so that its sharp edges cannot cut (DESIGN.md §6).

- A private host whose background dispatcher threads are never started.
- One lock: the C core is not thread-safe and never releases the GIL.
- A fresh session per evaluation, deleted afterwards (a ruleset holds at most 1,024 sessions).
- Rulesets are registered once, under policy version + content hash; they can never change.
- Exceptions that durable-rules swallows into the state are raised again here.
- A sentinel rule matches every fact, so "no rule matched" never reaches the C core (whose
  ``delete_state`` segfaults after an unhandled assert); "no decisive rule" means ``refer``.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

from durable import engine as durable

from rules.compiler import SENTINEL_ID, CompiledPolicy, compile_policy, to_durable_ruleset
from rules.loader import LoadedPolicy

_FIRED = "fired"


class RulesEngineError(RuntimeError):
    """The engine failed; the evaluation has no result (never read as a decision)."""


class _PrivateHost(durable.Host):
    def _run(self) -> None:  # no dispatcher threads: we only assert synchronously
        pass


def _record(rule_id: str):
    def action(c) -> None:
        fired = c.s[_FIRED] or []
        fired.append(rule_id)
        c.s[_FIRED] = fired

    return action


class DurableRulesEngine:
    def __init__(self) -> None:
        self._host = _PrivateHost()
        self._lock = threading.Lock()
        self._compiled: dict[str, CompiledPolicy] = {}
        self._session_ids = itertools.count(1)

    def compiled(self, loaded: LoadedPolicy) -> CompiledPolicy:
        name = loaded.ruleset_name
        found = self._compiled.get(name)
        if found is not None:
            return found
        with self._lock:
            found = self._compiled.get(name)
            if found is None:
                found = compile_policy(loaded.policy)
                self._host.set_rulesets({name: to_durable_ruleset(found, _record)})
                self._compiled[name] = found
        return found

    def fire(self, loaded: LoadedPolicy, facts: dict[str, Any]) -> list[str]:
        """Assert the facts once; return the ids of the rules that fired, in priority order."""
        name = loaded.ruleset_name
        if name not in self._compiled:
            self.compiled(loaded)
        with self._lock:
            sid = f"e{next(self._session_ids)}"
            try:
                state = self._host.assert_fact(name, {**facts, "sid": sid})
            except durable.MessageNotHandledException:
                # Cannot happen while the sentinel matches; the session must then be left alone.
                raise RulesEngineError("no rule matched the facts, not even the sentinel") from None
            try:
                self._host.delete_state(name, sid)
            except Exception as exc:  # the engine's own error type is not importable
                raise RulesEngineError(f"could not close session {sid}: {exc}") from None
        if state.get("exception"):
            raise RulesEngineError(f"a rule action failed: {state['exception']}")
        fired = state.get(_FIRED) or []
        if not fired or fired[-1] != SENTINEL_ID:
            raise RulesEngineError(f"evaluation did not complete; fired: {fired}")
        if len(set(fired)) != len(fired):
            raise RulesEngineError(f"a rule fired twice (an $or with overlapping branches?): {fired}")
        del fired[-1]  # the sentinel
        return fired
