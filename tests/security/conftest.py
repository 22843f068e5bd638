"""Fixtures for the security tests: the running service of the API tests, and a second union beside it."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

import pytest_asyncio
from google.protobuf.duration_pb2 import Duration
from sqlmodel import Session
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client

from service import seed
from service.models import Role
from service.security import hash_password

from ..api.conftest import PASSWORD, database, running_service
from ..world import YEAR


@dataclass
class Namespaced:
    """Stands in for the dev-server environment in `running_service`: a client of a namespace of its own."""

    client: Client


async def own_namespace(dev_env) -> Namespaced:
    """A fresh Temporal namespace on the session's dev server. Some workflow ids are deterministic
    (a hardship file is HF-<member id>-<n>, a campaign CAMPAIGN-<org>-<year>-<name>): in the shared
    default namespace another test's database with the same small ids would already have used them."""
    name = f"security-{uuid.uuid4().hex[:10]}"
    await dev_env.client.workflow_service.register_namespace(
        RegisterNamespaceRequest(namespace=name, workflow_execution_retention_period=Duration(seconds=86_400)))
    return Namespaced(await Client.connect(dev_env.client.service_client.config.target_host, namespace=name))


@pytest_asyncio.fixture
async def service(dev_env, tmp_path):
    async with database("sqlite", tmp_path) as engine, running_service(await own_namespace(dev_env), engine) as svc:
        yield svc


@pytest_asyncio.fixture(params=["sqlite", "postgresql"])
async def service_any_db(request, dev_env, tmp_path):
    """The running service on SQLite, and on PostgreSQL where one answers (skipped, saying so, elsewhere)."""
    async with database(request.param, tmp_path) as engine, running_service(await own_namespace(dev_env), engine) as svc:
        yield svc


@dataclass
class OtherUnion:
    """A second grassroots union with its own clerk, a plain member and funds: nothing of it is the first union's."""

    org_id: int
    members: dict[str, int] = field(default_factory=dict)
    funds: dict[str, int] = field(default_factory=dict)


def add_second_union(engine) -> OtherUnion:
    hashed = hash_password(PASSWORD)
    with Session(engine) as s, s.begin():
        org = seed.organisation(s, "ORG2", "第二基层工会", "Second grassroots union")
        other = OtherUnion(org_id=org.id)
        for n, name in enumerate(("zhang", "li"), start=1):
            # A distinct id-card range from tests/world.py (which uses 33030219800101nnnn).
            m = seed.member(s, org, f"B{n:04d}", name, f"11010119900202{n:04d}", dt.date(1990, 2, 2))
            other.members[name] = m.id
        seed.user(s, "clerk_b", PASSWORD, org, [Role.clerk], of_member=s.get(seed.Member, other.members["li"]), password_hash=hashed)
        seed.user(s, "zhang", PASSWORD, org, [Role.member], of_member=s.get(seed.Member, other.members["zhang"]),
                  password_hash=hashed)
        for fund in seed.funds(s, org, YEAR, {"member_welfare": 1_000_000, "hardship_fund": 1_000_000}):
            other.funds[fund.code] = fund.id
    return other


def add_plain_member(engine, org_id: int, username: str, member_id: int) -> None:
    """A user who is only a member (no office) of ``org_id``, for a member other than the applicant."""
    with Session(engine) as s, s.begin():
        org = s.get(seed.Organisation, org_id)
        seed.user(s, username, PASSWORD, org, [Role.member], of_member=s.get(seed.Member, member_id),
                  password_hash=hash_password(PASSWORD))


def grant(engine, username: str, org_id: int, role: Role) -> None:
    from sqlmodel import select

    from service.models import RoleGrant, User

    with Session(engine) as s, s.begin():
        user = s.exec(select(User).where(User.username == username)).one()
        s.add(RoleGrant(user_id=user.id, org_id=org_id, role=role))
