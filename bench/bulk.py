"""Years of applications and approval tasks written straight into a database, for bench.e2e's inbox timing.

One union (tests.world: a chair, clerks, committee, auditor) with a few thousand members. The
newest ``BACKLOG`` applications are in progress, with open tasks (two thirds of them at the chair);
every older one is finished, its tasks done or cancelled. The backlog is the same whatever the
number of applications: history grows, the inbox does not.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from itertools import islice

from sqlalchemy import Engine, insert, select
from sqlmodel import Session

from service.deps import Caller, caller_for_user
from service.models import Application, ApprovalTask, Member, User
from tests.world import World, build

MEMBERS = 3_000
BACKLOG = 300  # in-progress applications: 200 at the chair, 50 awaiting receipt, 50 at a committee vote
CHUNK = 5_000
SPAN = dt.timedelta(days=5 * 365)
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
POLICY = {"policy_version": "wenzhou-2019", "policy_hash": "0" * 64}

# Finished applications: (benefit, route's task stages, share in a hundred)
ROUTES = [
    ("birthday", ["receipt", "audit_review"], 50),
    ("hospitalization", ["officer_check", "chair_approval", "receipt", "audit_review"], 35),
    ("child_university", ["committee_vote", "receipt", "audit_review"], 15),
]
ROLE = {"officer_check": "clerk", "chair_approval": "chair", "committee_vote": "committee", "receipt": "clerk",
        "audit_review": "auditor"}


def populate(engine: Engine, n_apps: int) -> Caller:
    """Write ``n_apps`` applications with their tasks; return the chair as the inbox's caller."""
    world = build(engine)
    members = _insert_members(engine, world.org_id)
    apps = (_application(world, members, i, n_apps) for i in range(n_apps))
    tasks = (task for i in range(n_apps) for task in _tasks(world, i, n_apps))
    _insert(engine, Application, apps)
    _insert(engine, ApprovalTask, tasks)
    return caller(engine, world.users["chair"].user_id)


def caller(engine: Engine, user_id: int) -> Caller:
    with Session(engine) as session:
        return caller_for_user(session, session.get(User, user_id))


def _insert(engine: Engine, model, rows: Iterator[dict]) -> None:
    rows = iter(rows)
    with engine.begin() as conn:
        while chunk := list(islice(rows, CHUNK)):
            conn.execute(insert(model), chunk)


def _insert_members(engine: Engine, org_id: int) -> list[int]:
    rows = ({"member_no": f"B{n:06d}", "org_id": org_id, "name": f"会员{n}", "id_card_digest": hashlib.sha256(str(n).encode()).hexdigest(),
             "id_card_masked": "330***********0000", "birth_date": dt.date(1960 + n % 40, 1 + n % 12, 1 + n % 28),
             "join_date": dt.date(2010, 1, 1), "status": "active"} for n in range(MEMBERS))
    _insert(engine, Member, rows)
    with Session(engine) as session:
        return list(session.execute(select(Member.id).where(Member.org_id == org_id)).scalars())


def _created(i: int, n_apps: int) -> dt.datetime:
    return NOW - SPAN + SPAN * (i + 1) / (n_apps + 1)


def _app_id(i: int, n_apps: int) -> str:
    return f"A{_created(i, n_apps):%Y%m%d}-{i:010X}"


def _route(i: int, n_apps: int) -> tuple[str, str, str | None, list[tuple[str, str, str | None]]]:
    """(benefit, application status, its stage, [(task stage, task status, outcome)])."""
    if i >= n_apps - BACKLOG:
        k = i % 6
        if k < 4:
            return "hospitalization", "pending_approval", "chair_approval", [
                ("officer_check", "done", "approve"), ("chair_approval", "open", None)]
        if k == 4:
            return "birthday", "disbursed", "receipt", [("receipt", "open", None)]
        return "child_university", "pending_approval", "committee_vote", [("committee_vote", "open", None)]
    benefit, stages = _finished_route(i)
    if benefit != "birthday" and i % 17 == 0:
        return benefit, "rejected", None, [(stages[0], "done", "approve"), (stages[1], "done", "reject")]
    if benefit != "birthday" and i % 23 == 0:
        return benefit, "withdrawn", None, [(stages[0], "cancelled", None)]
    return benefit, "closed", None, [(stage, "done", "approve") for stage in stages]


def _finished_route(i: int) -> tuple[str, list[str]]:
    share = i % 100
    for benefit, stages, weight in ROUTES:
        if share < weight:
            return benefit, stages
        share -= weight
    raise AssertionError("the shares of ROUTES must add up to 100")


def _application(world: World, members: list[int], i: int, n_apps: int) -> dict:
    benefit, status, stage, tasks = _route(i, n_apps)
    created = _created(i, n_apps)
    approved = 0 if status in ("rejected", "withdrawn") else 30_000
    outcome = "refer" if benefit == "hospitalization" else "eligible"
    actions = ["filed", "rules_evaluated", *(f"task_{task_outcome or 'opened'}" for _, _, task_outcome in tasks), status]
    history = [{"seq": n, "at": (created + dt.timedelta(minutes=n)).isoformat(), "action": action, "actor": None, "detail": {}}
               for n, action in enumerate(actions, start=1)]
    return {
        "id": _app_id(i, n_apps), "org_id": world.org_id, "member_id": members[i % len(members)], "benefit": benefit,
        "event_date": created.date() - dt.timedelta(days=3), "event_key": None, "claim_key": f"{benefit}:{i}",
        "requested_fen": 30_000, "approved_fen": approved, "status": status, "stage": stage, "outcome": outcome,
        "decision": {"outcome": outcome, "approved_fen": approved, "cap_fen": 30_000, "fired": [f"{benefit}.eligible"],
                     "reasons": [], "route": {"kind": "auto"}, "form": "goods", **POLICY},
        "details": {"requested_fen": 30_000, "evidence": []}, **POLICY,
        "filed_by_user_id": world.users["clerk"].user_id, "idempotency_key": None, "created_at": created,
        "updated_at": created + dt.timedelta(days=1), "projection_seq": len(history), "history": history,
    }


def _tasks(world: World, i: int, n_apps: int) -> Iterator[dict]:
    _, _, _, tasks = _route(i, n_apps)
    app_id = _app_id(i, n_apps)
    committee = [world.users[f"committee{n}"].user_id for n in range(1, 5)]
    for n, (stage, status, outcome) in enumerate(tasks):
        at = _created(i, n_apps) + dt.timedelta(hours=n)
        for voter in committee if stage == "committee_vote" else [None]:
            decided = status == "done"
            yield {"id": f"{app_id}:1:{stage}" + (f":{voter}" if voter else ""), "application_id": app_id,
                   "org_id": world.org_id, "stage": stage, "role": ROLE[stage], "assignee_user_id": voter, "status": status,
                   "outcome": outcome, "comment": None,
                   "decided_by_user_id": (voter or world.users[ROLE[stage]].user_id) if decided else None,
                   "due_at": at + dt.timedelta(days=7), "reminded": False, "escalated": False, "created_at": at,
                   "decided_at": at + dt.timedelta(minutes=30) if decided else None}
