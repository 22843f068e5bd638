"""The auditor's command line (output is JSON).

    python -m service.audit timeline APP_ID
    python -m service.audit replay     [--id ID ...] [--year YYYY] [--query Q]
    python -m service.audit recheck    [--id ID ...] [--year YYYY] [--query Q]
    python -m service.audit projection [--id ID ...] [--year YYYY] [--query Q] [--funds]
    python -m service.audit what-if POLICY.yaml [--id ID ...] [--year YYYY]
    python -m service.audit verify-log

TEMPORAL_ADDRESS and DATABASE_URL say where to look (the same settings as the service).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import asdict
from typing import Any

from temporalio.client import Client

from rules.loader import PolicyError, default_registry, load_policy_file
from service.audit import projection_audit, recheck, replay, timeline, whatif
from service.audit.history import decode, fetch_one
from service.audit.selection import Selection, histories, records_of
from service.db import make_engine
from service.process import exit_now
from service.settings import get_settings


def _print(payload: Any) -> None:
    print(json.dumps(payload, ensure_ascii=False, indent=2, default=str))


def _selection(args: argparse.Namespace) -> Selection:
    return Selection(ids=args.id or None, year=args.year, query=args.query)


async def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    engine = make_engine(settings.resolved_database_url)
    if args.command == "verify-log":
        from service.audit.chain import verify_chain

        report = verify_chain(engine)
        _print(asdict(report))
        return 0 if report.ok else 1
    client = await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace)
    if args.command == "timeline":
        rec = decode(await fetch_one(client, args.application_id))
        _print([asdict(e) for e in timeline.build(engine, rec)])
        return 0
    found = await histories(client, _selection(args))
    if args.command == "replay":
        outcomes = await replay.replay(found)
        _print({"histories": len(outcomes), "failed": sum(not o.ok for o in outcomes), "outcomes": [asdict(o) for o in outcomes]})
        return 0 if all(o.ok for o in outcomes) else 1
    records = records_of(found)
    if args.command == "recheck":
        report = recheck.recheck(records, default_registry())
        _print({"decisions": report.decisions, "differences": [asdict(d) for d in report.differences]})
        return 0 if report.ok else 1
    if args.command == "projection":
        report = await projection_audit.audit(engine, client, records, funds=args.funds)
        _print({"applications": report.applications, "findings": [asdict(f) for f in report.findings]})
        return 0 if report.ok else 1
    try:
        proposed = load_policy_file(args.policy)
    except PolicyError as exc:
        _print({"error": "invalid_policy", "file": exc.file, "path": exc.path, "reason": exc.reason})
        return 2
    report = whatif.what_if(records, proposed)
    _print({"policy_version": report.policy_version, "policy_hash": report.policy_hash, "difference_fen": report.difference_fen,
            "benefits": {code: asdict(b) | {"difference_fen": b.difference_fen} for code, b in report.benefits.items()},
            "not_evaluable": report.not_evaluable})
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.audit", description="经费审查 Audit tools")
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("timeline", help="the story of one application")
    t.add_argument("application_id")
    for name in ("replay", "recheck", "projection", "what-if"):
        p = sub.add_parser(name)
        if name == "what-if":
            p.add_argument("policy", help="the proposed policy file (YAML)")
        p.add_argument("--id", action="append", help="an application id (repeatable)")
        p.add_argument("--year", type=int, help="every application started in this year (China time)")
        p.add_argument("--query", help="a Temporal visibility query")
        if name == "projection":
            p.add_argument("--funds", action="store_true", help="also check fund totals (audit a whole year)")
    sub.add_parser("verify-log", help="check the audit log's hash chain")
    args = parser.parse_args(argv)
    return asyncio.run(run(args))


if __name__ == "__main__":
    exit_now(main())
