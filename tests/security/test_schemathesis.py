"""Generated requests against the live API's OpenAPI spec (schemathesis + hypothesis): no server errors.

Every operation of the spec gets schema-conforming ("positive") and schema-violating ("negative")
requests, with a valid bearer token, once with generated path ids and once with real ones (an
application in its officer check, its task, a member, a fund), against the real uvicorn server,
worker and Temporal dev server. Our handlers answer unexpected exceptions with a 503 rather than a
500, so any 5xx is a failure here; the dev server is checked to be up afterwards, so a 503 cannot be
explained away as Temporal being down.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections import Counter
from dataclasses import dataclass, field

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from workflows.application import CHINA

RECENT = (dt.datetime.now(CHINA).date() - dt.timedelta(days=3)).isoformat()
EXAMPLES = 24  # per operation, generation mode and id variant; the run sends well over 1,000 requests
MIN_REQUESTS = 1_000
# Signing out as the fuzzing user would end the run early: that operation gets a throwaway token per request.
THROWAWAY_TOKEN_OPERATIONS = {("POST", "/api/auth/logout")}
# Server errors found in code this change may not edit, reported to its owners: printed, not failed, until fixed.
# Each names the operation and a text the error's request must contain, so nothing else hides behind it.
KNOWN_SERVER_ERRORS: dict[tuple[str, str, str], str] = {}  # (method, path, marker in the request) -> why it is tolerated


@dataclass
class Run:
    requests: int = 0
    by_status: Counter = field(default_factory=Counter)
    by_operation: Counter = field(default_factory=Counter)
    seconds: Counter = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    transport_errors: list[str] = field(default_factory=list)
    unsatisfiable: list[str] = field(default_factory=list)
    known_errors: list[str] = field(default_factory=list)


def fuzz(spec: dict, base_url: str, token: str, real_ids: dict[str, str], login) -> Run:
    schema = schemathesis.openapi.from_dict(spec)
    run = Run()
    session = requests.Session()
    for result in schema.get_all_operations():
        operation = result.ok()
        key = (operation.method.upper(), operation.path)
        params = [p.name for p in operation.path_parameters]
        variants = [None]
        if params and all(p in real_ids for p in params):
            variants.append({p: real_ids[p] for p in params})
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for path_parameters in variants:
                strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

                @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
                          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
                @given(case=strategy)
                def send(case) -> None:
                    bearer = login() if key in THROWAWAY_TOKEN_OPERATIONS else token
                    try:
                        response = case.call(base_url=base_url, session=session, timeout=60,
                                             headers={"Authorization": f"Bearer {bearer}"})
                    except requests.RequestException as exc:
                        run.transport_errors.append(f"{key} {mode}: {type(exc).__name__}: {exc}")
                        return
                    run.requests += 1
                    run.by_status[response.status_code] += 1
                    run.by_operation[key] += 1
                    if response.status_code >= 500:
                        curl = case.as_curl_command()
                        known = [why for (m, p, marker), why in KNOWN_SERVER_ERRORS.items() if (m, p) == key and marker in curl]
                        (run.known_errors if known else run.server_errors).append(
                            f"{response.status_code} {mode} {curl}\n    -> {response.text[:400]}")

                began = time.monotonic()
                try:
                    send()
                except Unsatisfiable:
                    run.unsatisfiable.append(f"{key} {mode}")  # e.g. no way to violate an operation without parameters
                run.seconds[key] += time.monotonic() - began
    session.close()
    return run


async def real_ids(service) -> dict[str, str]:
    """Ids that exist, so generated requests also reach the handlers' deeper paths."""
    world = service.world
    filed = await service.call("POST", "/api/applications", "alice", json={
        "benefit": "wedding", "member_id": world.members["alice"], "event_date": RECENT, "requested_fen": 50_000,
        "evidence": ["marriage_certificate"]})
    assert filed.status_code == 201, filed.text
    task = (await service.call("GET", "/api/tasks", "clerk")).json()["items"][0]
    return {"app_id": filed.json()["id"], "task_id": task["id"], "member_id": str(world.members["bob"]),
            "fund_id": str(world.funds["member_welfare"])}


async def test_generated_requests_cause_no_server_error(service_any_db):
    service = service_any_db
    started = time.monotonic()
    spec = (await service.http.get("/openapi.json")).json()
    token = (await service.login("admin"))["Authorization"].split(" ", 1)[1]
    ids = await real_ids(service)

    def login() -> str:
        r = requests.post(f"{service.base_url}/api/auth/token", json={"username": "committee3",
                                                                       "password": "correct horse battery staple"}, timeout=30)
        return r.json()["access_token"]

    run = await asyncio.to_thread(fuzz, spec, service.base_url, token, ids, login)
    # The Temporal dev server is still up: no 503 here could have been "the workflow service is down".
    await service.client.workflow_service.get_system_info(__import__("temporalio.api.workflowservice.v1",
                                                                     fromlist=["x"]).GetSystemInfoRequest())
    elapsed = time.monotonic() - started
    summary = (f"{run.requests} requests in {elapsed:.0f}s over {len(run.by_operation)} operations; "
               f"statuses {dict(sorted(run.by_status.items()))}")
    print(summary)
    if run.known_errors:
        print(f"{len(run.known_errors)} known server error(s) still open (not ours to fix):", *KNOWN_SERVER_ERRORS.values(),
              *run.known_errors[:3], sep="\n  ")
    print("slowest:", ", ".join(f"{m} {p} {t:.1f}s" for (m, p), t in run.seconds.most_common(8)))
    assert not run.server_errors, f"{len(run.server_errors)} server error(s); {summary}\n" + "\n".join(run.server_errors[:20])
    assert not run.transport_errors, "\n".join(run.transport_errors[:20])
    assert run.requests >= MIN_REQUESTS, summary
    assert set(run.by_operation) == {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}, summary
