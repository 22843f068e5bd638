"""Command line: validate policy files; evaluate one application given as JSON.

    python -m rules validate rules/policies/*.yaml
    python -m rules evaluate application.json        (or - for standard input)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rules.durable_engine import RulesEngineError
from rules.evaluate import evaluate
from rules.facts import FactsError
from rules.loader import DEFAULT_POLICY_DIR, PolicyError, PolicyRegistry, load_policy_file


def _print(payload: dict) -> None:
    print(json.dumps(payload, ensure_ascii=False, indent=2))


def _validate(args: argparse.Namespace) -> int:
    loaded, failed = [], False
    for file in args.files:
        try:
            policy = load_policy_file(file)
        except PolicyError as exc:
            _print({"file": exc.file, "valid": False, "path": exc.path, "reason": exc.reason})
            failed = True
            continue
        loaded.append(policy)
        _print({"file": file, "valid": True, "version": policy.version, "hash": policy.hash,
                "effective_from": str(policy.policy.effective_from),
                "effective_to": str(policy.policy.effective_to) if policy.policy.effective_to else None})
    if loaded and not failed and len(loaded) > 1:
        try:
            PolicyRegistry(loaded)
        except PolicyError as exc:
            _print({"file": exc.file, "valid": False, "path": exc.path, "reason": exc.reason})
            failed = True
    return 1 if failed else 0


def _evaluate(args: argparse.Namespace) -> int:
    text = sys.stdin.read() if args.application == "-" else Path(args.application).read_text(encoding="utf-8")
    try:
        raw = json.loads(text)
        registry = PolicyRegistry.from_directory(args.policy_dir)
        decision = evaluate(raw, registry, reference=args.reference)
    except json.JSONDecodeError as exc:
        _print({"error": "invalid_json", "reason_zh": "不是有效的 JSON", "reason_en": str(exc)})
        return 2
    except FactsError as exc:
        _print({"error": "invalid_facts", "field": exc.field, "reason_zh": exc.reason_zh, "reason_en": exc.reason_en})
        return 2
    except PolicyError as exc:
        _print({"error": "invalid_policy", "file": exc.file, "path": exc.path, "reason": exc.reason})
        return 2
    except RulesEngineError as exc:
        _print({"error": "engine_failure", "reason": str(exc)})
        return 3
    _print(decision.model_dump(mode="json"))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rules", description="Union welfare rules / 工会福利规则")
    sub = parser.add_subparsers(dest="command", required=True)
    validate = sub.add_parser("validate", help="validate policy files (and that their dates do not overlap)")
    validate.add_argument("files", nargs="+")
    ev = sub.add_parser("evaluate", help="evaluate one application (JSON facts) and print the decision")
    ev.add_argument("application", help="a JSON file, or - for standard input")
    ev.add_argument("--policy-dir", default=str(DEFAULT_POLICY_DIR))
    ev.add_argument("--reference", action="store_true", help="use the plain-Python reference evaluator")
    args = parser.parse_args(argv)
    return _validate(args) if args.command == "validate" else _evaluate(args)


if __name__ == "__main__":
    sys.exit(main())
