"""The rules command line, run as a person runs it."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "rules", *args], input=stdin, capture_output=True, text=True, cwd=ROOT, timeout=60)


def test_validate_default_policy():
    result = run("validate", "rules/policies/wenzhou-2019.yaml")
    assert result.returncode == 0
    out = json.loads(result.stdout)
    assert out["valid"] is True and out["version"] == "wenzhou-2019" and len(out["hash"]) == 64


def test_validate_reports_file_path_and_reason(tmp_path):
    bad = tmp_path / "bad.yaml"
    text = (ROOT / "rules/policies/wenzhou-2019.yaml").read_text(encoding="utf-8")
    bad.write_text(text.replace("cap_fen: 30000", "cap_fen: -3"), encoding="utf-8")
    result = run("validate", str(bad))
    assert result.returncode == 1
    out = json.loads(result.stdout)
    assert out["file"] == str(bad) and out["path"].endswith(".cap_fen") and "greater than or equal to 0" in out["reason"]


def test_evaluate_prints_the_decision_with_its_explanation():
    result = run("evaluate", "examples/hospitalization.json")
    assert result.returncode == 0, result.stderr
    d = json.loads(result.stdout)
    assert d["outcome"] == "eligible" and d["approved_fen"] == 100_000 and d["requested_fen"] == 120_000
    assert d["fired"] == ["hospitalization.eligible", "hospitalization.capped"]
    assert d["policy_version"] == "wenzhou-2019" and d["route"]["kind"] == "chair"
    assert all(r["zh"] and r["en"] for r in d["reasons"])


def test_evaluate_from_stdin_and_bad_input():
    facts = {"benefit": "birthday", "event_date": "2024-05-01", "filed_on": "2024-05-01", "member_active": True, "requested_fen": 30001}
    ok = run("evaluate", "-", stdin=json.dumps(facts))
    assert ok.returncode == 0 and json.loads(ok.stdout)["approved_fen"] == 30_000
    bad = run("evaluate", "-", stdin=json.dumps(facts | {"requested_fen": 300.5}))
    assert bad.returncode == 2
    err = json.loads(bad.stdout)
    assert err["field"] == "requested_fen" and "整数" in err["reason_zh"]
    assert run("evaluate", "-", stdin="{not json").returncode == 2
