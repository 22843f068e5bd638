"""docker-compose.yml: valid against the Compose Specification's JSON schema, and the stack we mean.

Docker cannot run on the development machines, so the file is checked here instead: the official
schema (vendored as compose-spec.json from the compose-spec/compose-spec repository, file
schema/compose-spec.json, commit 00655e2222608fa6eaecdf12ac5195889ca2244a), then our own expectations:
healthchecks, named volumes, start order on healthy dependencies, no password written in the file.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((Path(__file__).with_name("compose-spec.json")).read_text(encoding="utf-8"))
SERVICES = {"postgresql", "temporal", "temporal-ui", "app-db", "api", "worker"}
REQUIRED_VARIABLE = re.compile(r"\$\{[A-Z_]+:\?[^}]*\}")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def validator() -> jsonschema.Draft7Validator:
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    return jsonschema.Draft7Validator(SCHEMA)


def test_the_vendored_schema_is_the_compose_specification():
    assert SCHEMA["title"] == "Compose Specification" and SCHEMA["$id"] == "compose_spec.json"
    service = SCHEMA["definitions"]["service"]["properties"]
    assert {"healthcheck", "depends_on", "build", "volumes"} <= set(service)
    conditions = service["depends_on"]["oneOf"][1]["patternProperties"]["^[a-zA-Z0-9._-]+$"]["properties"]["condition"]["enum"]
    assert "service_healthy" in conditions


def test_valid_against_the_compose_specification(compose):
    errors = sorted(validator().iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


@pytest.mark.parametrize("breakage", [
    lambda c: c["services"]["api"].update(helthcheck={}),  # a misspelt key
    lambda c: c["services"]["worker"]["depends_on"]["temporal"].update(condition="when_ready"),
    lambda c: c["services"]["api"].update(ports="8000:8000"),  # not a list
    lambda c: c.update(volumez={}),
])
def test_the_schema_check_catches_a_broken_file(compose, breakage):
    broken = json.loads(json.dumps(compose))
    breakage(broken)
    assert list(validator().iter_errors(broken))


def test_the_services(compose):
    services = compose["services"]
    assert set(services) == SERVICES
    temporal = services["temporal"]
    assert temporal["image"].startswith("temporalio/auto-setup:") and temporal["environment"]["DB"] == "postgres12"
    assert temporal["environment"]["POSTGRES_SEEDS"] == "postgresql"
    assert temporal["depends_on"]["postgresql"]["condition"] == "service_healthy"
    assert services["temporal-ui"]["image"].startswith("temporalio/ui:")
    assert services["temporal-ui"]["environment"]["TEMPORAL_ADDRESS"] == "temporal:7233"
    for db in ("postgresql", "app-db"):
        assert services[db]["image"].startswith("postgres:")


def test_every_service_has_a_healthcheck_or_runs_once(compose):
    one_shots = {name for s in compose["services"].values() for name, dep in (s.get("depends_on") or {}).items()
                 if isinstance(dep, dict) and dep.get("condition") == "service_completed_successfully"}
    for name, service in compose["services"].items():
        if name in one_shots:
            assert service.get("restart", "no") == "no", name
            continue
        check = service.get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), f"{name} has no healthcheck"
        test = check["test"]
        assert isinstance(test, str) or test[0] in ("CMD", "CMD-SHELL"), name


def test_named_volumes_are_declared_and_the_databases_keep_their_data(compose):
    declared = set(compose.get("volumes") or {})
    used = set()
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source", "")
            if source and not source.startswith((".", "/", "~")):
                used.add(source)
    assert used and used <= declared, (used, declared)
    for db in ("postgresql", "app-db"):
        assert any(str(v).endswith(":/var/lib/postgresql/data") for v in compose["services"][db]["volumes"]), db


def test_api_and_worker_start_on_healthy_temporal_and_database(compose):
    for name, module in (("api", "service.run_api"), ("worker", "service.run_worker")):
        service = compose["services"][name]
        deps = service["depends_on"]
        assert deps["temporal"]["condition"] == "service_healthy" and deps["app-db"]["condition"] == "service_healthy", name
        assert service["build"] in (".", {"context": "."}), name
        assert service["command"] == ["python", "-m", module], name
        assert importlib.util.find_spec(module) is not None, module
        env = service["environment"]
        assert env["TEMPORAL_ADDRESS"] == "temporal:7233" and "@app-db:5432/" in env["DATABASE_URL"], name
        assert env["TASK_QUEUE"] == compose["services"]["worker"]["environment"]["TASK_QUEUE"]
    assert compose["services"]["api"]["environment"]["API_HOST"] == "0.0.0.0"


def test_no_password_or_key_is_written_in_the_file(compose):
    """Secrets come from the environment (a .env file beside it): Compose refuses to start without them."""
    for name, service in compose["services"].items():
        env = service.get("environment") or {}
        for key, value in env.items():
            if any(word in key for word in ("PASSWORD", "PWD", "KEY")) or key == "DATABASE_URL":
                assert REQUIRED_VARIABLE.search(str(value)), f"{name}.{key} is written in the file: {value}"


def test_the_dockerfile_builds_the_app():
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim\b", dockerfile, re.M)
    assert "build-essential" in dockerfile and re.search(r"pip install \.", dockerfile)
    copied = set(re.findall(r"^COPY (\w+) \1$", dockerfile, re.M))
    assert {"rules", "workflows", "activities", "service", "migrations"} <= copied
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".venv", "data", ".git"} <= set(ignored)
