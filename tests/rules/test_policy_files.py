"""Policy files: validation errors say where and why; versions are immutable and never overlap."""

import datetime as dt
from pathlib import Path

import pytest
import yaml

from rules import FactsError, Outcome, evaluate
from rules.loader import DEFAULT_POLICY_DIR, PolicyError, PolicyRegistry, load_policy_file, parse_policy

from .helpers import facts

DEFAULT_FILE = DEFAULT_POLICY_DIR / "wenzhou-2019.yaml"


def default_raw() -> dict:
    return yaml.safe_load(DEFAULT_FILE.read_text(encoding="utf-8"))


def write(tmp_path: Path, name: str, raw: dict) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_default_policy_carries_the_seed_table():
    loaded = load_policy_file(DEFAULT_FILE)
    p = loaded.policy
    caps = {b.code: b.cap_fen for b in p.benefits}
    assert caps["hospitalization"] == 100_000 and caps["bereavement"] == 100_000
    assert caps["birthday"] == 30_000 and caps["wedding"] == 50_000 and caps["childbirth"] == 50_000
    assert caps["retirement"] == 100_000 and caps["family_mediation"] == 0
    assert p.effective_from == dt.date(2019, 1, 1)
    assert all("温直工〔2019〕7号" in b.legal_ref for b in p.benefits if b.category in ("visit", "congratulation"))
    assert loaded.hash == load_policy_file(DEFAULT_FILE).hash


@pytest.mark.parametrize(
    ("mutate", "path", "reason"),
    [
        (lambda r: r["benefits"][0].update(cap_fen=-1), "benefits.0.cap_fen", "greater than or equal to 0"),
        (lambda r: r["benefits"][1].update(fund="nowhere"), "", "unknown fund 'nowhere'"),
        (lambda r: r["benefits"][2].update(cap_fen=500), "benefits.2", "visit-only benefit carries no money"),
        (lambda r: r["benefits"][0].update(colour="red"), "benefits.0.colour", "Extra inputs are not permitted"),
        (lambda r: r.pop("version"), "version", "Field required"),
        (lambda r: r["hardship"].update(relative_multiplier=1), "hardship", "relative_multiplier must exceed"),
        (lambda r: r["benefits"][0]["route"].update(kind="committee"), "benefits.0.route", "committee route needs"),
    ],
)
def test_validation_error_names_file_path_and_reason(tmp_path, mutate, path, reason):
    raw = default_raw()
    mutate(raw)
    file = write(tmp_path, "bad.yaml", raw)
    with pytest.raises(PolicyError) as err:
        load_policy_file(file)
    assert err.value.file == str(file)
    assert err.value.path == path
    assert reason in err.value.reason


def test_broken_yaml_names_the_line():
    with pytest.raises(PolicyError) as err:
        parse_policy("version: x\nbenefits: [\n", "broken.yaml")
    assert err.value.file == "broken.yaml" and err.value.path.startswith("line ")


def test_hash_changes_with_content_not_with_comments():
    text = DEFAULT_FILE.read_text(encoding="utf-8")
    same = parse_policy("# another comment\n" + text)
    changed = parse_policy(text.replace("cap_fen: 30000", "cap_fen: 40000"))
    original = parse_policy(text)
    assert same.hash == original.hash
    assert changed.hash != original.hash
    assert changed.ruleset_name != original.ruleset_name


def two_versions(tmp_path: Path, first_end: str | None, second_start: str) -> list[Path]:
    first, second = default_raw(), default_raw()
    first["effective_to"] = first_end
    second |= {"version": "wenzhou-2025", "effective_from": second_start}
    birthday = next(b for b in second["benefits"] if b["code"] == "birthday")
    birthday["cap_fen"] = 40_000
    return [write(tmp_path, "a.yaml", first), write(tmp_path, "b.yaml", second)]


def test_version_chosen_by_event_date_not_filing_date(tmp_path):
    two_versions(tmp_path, "2024-12-31", "2025-01-01")
    registry = PolicyRegistry.from_directory(tmp_path)
    day_before = evaluate(facts("birthday", requested_fen=40_000, event_date="2024-12-31", filed_on="2025-01-05"), registry)
    first_day = evaluate(facts("birthday", requested_fen=40_000, event_date="2025-01-01", filed_on="2025-01-01"), registry)
    assert (day_before.policy_version, day_before.approved_fen) == ("wenzhou-2019", 30_000)
    assert (first_day.policy_version, first_day.approved_fen) == ("wenzhou-2025", 40_000)
    assert day_before.policy_hash != first_day.policy_hash


@pytest.mark.parametrize(("first_end", "second_start"), [(None, "2025-01-01"), ("2025-01-01", "2025-01-01"), ("2025-06-30", "2025-01-01")])
def test_overlapping_versions_rejected(tmp_path, first_end, second_start):
    two_versions(tmp_path, first_end, second_start)
    with pytest.raises(PolicyError) as err:
        PolicyRegistry.from_directory(tmp_path)
    assert "overlaps 'wenzhou-2019'" in err.value.reason and err.value.path == "effective_from"


def test_no_policy_in_force_is_an_input_error():
    with pytest.raises(FactsError) as err:
        evaluate(facts("birthday", event_date="2018-12-31", filed_on="2019-01-02"))
    assert err.value.field == "event_date" and "没有生效" in err.value.reason_zh


def test_policy_objects_are_immutable():
    loaded = load_policy_file(DEFAULT_FILE)
    with pytest.raises(Exception):
        loaded.policy.benefits[0].cap_fen = 1  # type: ignore[misc]
    assert evaluate(facts("hospitalization", requested_fen=100_000)).outcome == Outcome.eligible
