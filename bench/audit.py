"""Audit speed on real histories: ``python -m bench.audit [--quick]``.

Prints ``name=value`` lines (comment lines start with ``#``). One dev server, one worker, one
SQLite database (as bench.e2e): birthday applications filed on the auto route and run until
"disbursed", their histories fetched into memory; then, with the server and worker gone:

1. histories replayed per second through our audit path (service.audit.replay.replay) against
   Temporal's bare Replayer (built as the audit path builds it) on the same in-memory histories,
   both sides taking turns a chunk of histories at a time; target: the audit path at 0.9x the bare
   Replayer or better, and at least 50 histories/s;
2. histories decoded per second (service.audit.history.decode), and recorded decisions re-checked
   per second (service.audit.recheck.recheck with the default policy registry);
3. what that means for a year of a 10,000-member union.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from sqlmodel import Session, select
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from bench import bare
from bench.e2e import (
    BIRTHDAY_FEN,
    Bench,
    add_members,
    auto_route,
    comment,
    emit,
    figures_alone_on_stdout,
    temporal_binary,
)
from rules.loader import default_registry
from service.audit import history, recheck, replay
from service.db import make_engine, migrate
from service.logging import configure
from service.models import Application
from service.worker import WORKFLOWS, build_worker
from tests.world import build

AUDIT_VS_BARE_TARGET = 0.9
MIN_HISTORIES_PER_S = 50
SETTLE_S = 1.0  # after the last "disbursed": the receipt task is still being projected
MEMBERS_10K = 10_000
APPS_PER_MEMBER_YEAR = 3  # an assumption: birthday, plus a couple of other claims in a busy year

T = TypeVar("T")


@dataclass(frozen=True)
class Sizes:
    apps: int  # histories produced (and replayed, decoded, re-checked)
    rounds: int  # replay rounds over all the histories; the median of each side is reported
    chunk: int  # histories replayed by one side before the other side's turn
    recheck_rounds: int  # decode and re-check rounds (they are quick: the median of several)


FULL = Sizes(apps=300, rounds=3, chunk=50, recheck_rounds=5)
QUICK = Sizes(apps=40, rounds=3, chunk=20, recheck_rounds=3)


# --- 1. histories from a real run ---------------------------------------------------------------

async def produce(sizes: Sizes, directory: Path) -> tuple[list[WorkflowHistory], float, float]:
    """Histories of ``sizes.apps`` auto-route birthday applications, each run to "disbursed";
    with the seconds the applications took, and the histories fetched per second (sequentially,
    as service.audit.history.fetch_many does)."""
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=temporal_binary(), dev_server_log_level="error")
    try:
        engine = make_engine(f"sqlite:///{directory / 'audit.db'}")
        migrate(engine)
        world = build(engine, welfare_fen=2 * sizes.apps * BIRTHDAY_FEN)
        members = add_members(engine, world.org_id, sizes.apps)
        queue = f"audit-{uuid.uuid4().hex[:8]}"
        # bench.e2e's auto route only uses the engine, world, client, queue and members: no bare
        # worker and no HTTP API here.
        b = Bench(engine, world, env.client, queue, bare_queue="", reached=bare.Reached(), members=iter(members),
                  http=None)  # type: ignore[arg-type]
        with concurrent.futures.ThreadPoolExecutor(max_workers=32) as executor:
            async with build_worker(env.client, engine, queue, executor):
                spent = await auto_route(b, sizes.apps)
                await asyncio.sleep(SETTLE_S)
                ids = await _workflow_ids(b)
                started = time.perf_counter()
                histories = [h async for h in history.fetch_many(env.client, ids=ids)]
                fetch_s = time.perf_counter() - started
        engine.dispose()
    finally:
        await env.shutdown()
    return histories, spent.wall, len(histories) / fetch_s


async def _workflow_ids(b: Bench) -> list[str]:
    """Every application in this run's (fresh) database: the workflow ids."""

    def ids() -> list[str]:
        with Session(b.engine) as s:
            return list(s.exec(select(Application.id).order_by(Application.id)))

    return await asyncio.to_thread(ids)


# --- 2. replay: bare Replayer against the audit path --------------------------------------------

async def _iterate(histories: Iterable[WorkflowHistory]) -> AsyncIterator[WorkflowHistory]:
    for h in histories:
        yield h


async def bare_replay(histories: list[WorkflowHistory]) -> int:
    """Temporal's Replayer alone, as the audit path builds it; the number of failed replays."""
    results = await Replayer(workflows=WORKFLOWS).replay_workflows(_iterate(histories), raise_on_replay_failure=False)
    return len(results.replay_failures)


async def audit_replay(histories: list[WorkflowHistory]) -> int:
    outcomes = await replay.replay(histories)
    assert len(outcomes) == len(histories), (len(outcomes), len(histories))
    return sum(not o.ok for o in outcomes)


async def timed(call: Callable[[], Awaitable[T]]) -> tuple[float, T]:
    started = time.perf_counter()
    value = await call()
    return time.perf_counter() - started, value


async def replays(histories: list[WorkflowHistory], sizes: Sizes) -> float:
    """Rounds over all the histories, a chunk at a time: each chunk replayed by both sides in turn,
    the side that goes first swapped from one chunk to the next; the audit path's rate."""
    n = len(histories)
    warm = histories[: max(1, n // 10)]
    await bare_replay(warm)  # the sandbox's first imports, for both sides
    await audit_replay(warm)
    sides = {"bare": bare_replay, "audit": audit_replay}
    rounds: dict[str, list[float]] = {"bare": [], "audit": []}  # seconds per round (all histories)
    pairs: list[float] = []  # bare seconds / audit seconds, chunk by chunk
    failures: dict[str, int] = {"bare": 0, "audit": 0}
    chunks = [histories[i:i + sizes.chunk] for i in range(0, n, sizes.chunk)]
    turn = 0
    for _ in range(sizes.rounds):
        spent_in_round = {"bare": 0.0, "audit": 0.0}
        for chunk in chunks:
            order = ["bare", "audit"] if turn % 2 == 0 else ["audit", "bare"]
            turn += 1
            spent: dict[str, float] = {}
            for side in order:
                spent[side], failed = await timed(lambda side=side: sides[side](chunk))
                failures[side] += failed
                spent_in_round[side] += spent[side]
            pairs.append(spent["bare"] / spent["audit"])
        for side, seconds in spent_in_round.items():
            rounds[side].append(seconds)
    bare_rate = n / statistics.median(rounds["bare"])
    audit_rate = n / statistics.median(rounds["audit"])
    # paired chunk by chunk, so that a slow spell on a busy machine falls on both sides alike
    ratio = statistics.median(pairs)
    events = sum(len(h.events) for h in histories)
    comment(f"replay rounds (s, all {n} histories): bare {' '.join(f'{s:.2f}' for s in rounds['bare'])}; "
            f"audit {' '.join(f'{s:.2f}' for s in rounds['audit'])}; rates: median round; ratio: median of "
            f"{len(pairs)} chunk pairs of {sizes.chunk} histories (their spread: "
            f"{min(pairs):.2f}-{max(pairs):.2f})")
    emit("bare_replayer_histories_per_s", bare_rate)
    emit("audit_replay_histories_per_s", audit_rate)
    emit("audit_replay_events_per_s", events / statistics.median(rounds["audit"]))
    emit("audit_vs_bare_ratio", f"{ratio:.3f}")
    emit("audit_vs_bare_target", AUDIT_VS_BARE_TARGET)
    emit("audit_vs_bare_ok", ratio >= AUDIT_VS_BARE_TARGET)
    emit("audit_replay_min_target_per_s", MIN_HISTORIES_PER_S)
    emit("audit_replay_min_ok", audit_rate >= MIN_HISTORIES_PER_S)
    emit("bare_replay_failures", failures["bare"])
    emit("audit_replay_failures", failures["audit"])
    assert failures["audit"] == 0 and failures["bare"] == 0, failures  # histories of the current code
    return audit_rate


# --- 3. decode and re-check ---------------------------------------------------------------------

def rechecks(histories: list[WorkflowHistory], sizes: Sizes) -> tuple[float, float]:
    """Histories decoded per second and decisions re-checked per second (medians of the rounds);
    returns the decode rate and the re-check rate in histories per second."""
    registry = default_registry()
    decode_s, recheck_s = [], []
    report: recheck.RecheckReport | None = None
    for _ in range(sizes.recheck_rounds):
        started = time.perf_counter()
        records = [history.decode(h) for h in histories]
        decode_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        report = recheck.recheck(records, registry)
        recheck_s.append(time.perf_counter() - started)
    assert report is not None
    decisions = report.decisions
    decode_rate = len(histories) / statistics.median(decode_s)
    recheck_rate = decisions / statistics.median(recheck_s)
    emit("decode_histories_per_s", decode_rate)
    emit("recheck_decisions", decisions)
    emit("recheck_decisions_per_s", recheck_rate)
    emit("recheck_differences", len(report.differences))
    assert report.ok, report.differences[:5]
    assert decisions >= len(histories), (decisions, len(histories))  # one decision (at least) per application
    return decode_rate, recheck_rate * decisions / len(histories)


# --- main ---------------------------------------------------------------------------------------

async def run(sizes: Sizes, directory: Path) -> None:
    histories, produce_s, fetch_rate = await produce(sizes, directory)
    assert len(histories) == sizes.apps, (len(histories), sizes.apps)
    events = [len(h.events) for h in histories]
    comment(f"{len(histories)} auto-route birthday applications run to 'disbursed' in {produce_s:.1f} s; "
            "histories fetched, then the dev server and worker stopped before any timing")
    emit("histories", len(histories))
    emit("events_per_history_mean", float(statistics.mean(events)))
    emit("events_per_history_max", max(events))
    emit("fetch_histories_per_s", fetch_rate)
    replay_rate = await replays(histories, sizes)
    decode_rate, recheck_histories_rate = rechecks(histories, sizes)
    year = MEMBERS_10K * APPS_PER_MEMBER_YEAR
    audit_s = year * (1 / replay_rate + 1 / decode_rate + 1 / recheck_histories_rate)
    comment(f"a year of a {MEMBERS_10K:,}-member union: assumed {APPS_PER_MEMBER_YEAR} applications per member-year "
            f"({year:,} histories) shaped like these (~{statistics.mean(events):.0f} events; a closed application "
            "has a few more), one process: replay + decode + re-check; '_with_fetch' adds fetching each history "
            "in turn as measured here from a local dev server")
    emit("est_year_10k_members_minutes", audit_s / 60)
    emit("est_year_10k_members_with_fetch_minutes", (audit_s + year / fetch_rate) / 60)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.audit", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about 10x less work (smoke test)")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    configure(json_lines=False, level="WARNING")
    comment(f"bench.audit python={sys.version.split()[0]} cores={os.cpu_count()} quick={str(args.quick).lower()} "
            f"apps={sizes.apps} replay_rounds={sizes.rounds} load_avg_1m={os.getloadavg()[0]:.2f} "
            # the sandbox re-imports the workflow module for every history: without .pyc files it compiles it each time
            f"bytecode_cache={'off' if sys.dont_write_bytecode else 'on'}")
    started = time.perf_counter()
    with figures_alone_on_stdout(), tempfile.TemporaryDirectory(prefix="bench-audit-") as directory:
        asyncio.run(run(sizes, Path(directory)))
    comment(f"total {time.perf_counter() - started:.0f} s load_avg_1m={os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
