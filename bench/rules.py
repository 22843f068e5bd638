"""Throughput and memory of the rules engine: ``python -m bench.rules [--quick] [--n N]``.

Prints ``name=value`` lines (comment lines start with ``#``). Every timed path runs on the same
deterministic set of applications, cycled:

- wrapper:   ``evaluate(dict)`` - validation, policy pick, prepare, durable-rules, decision + reasons;
- raw:       durable-rules alone on the same compiled ruleset, pre-prepared flat facts, a bare host;
- reference: ``evaluate(dict, reference=True)``, the plain-Python evaluator;
- zen:       zen-engine (GoRules) on a decision table for the flat-cap benefits, same flat facts;
- memory:    RSS before and after many wrapper evaluations.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import itertools
import json
import os
import random
import sys
import time
from collections import Counter
from typing import Any, Callable

from durable import engine as durable

from rules.compiler import SENTINEL_ID, compile_policy, to_durable_ruleset
from rules.evaluate import evaluate, evaluate_prepared, shared_engine
from rules.facts import FACT_KIND, ApplicationFacts, prepare
from rules.loader import LoadedPolicy, default_registry
from rules.model import (
    HARDSHIP_ASSESSMENT,
    KNOWN_EXCLUSIONS,
    Benefit,
    FrequencyScope,
    OverCap,
    Policy,
    Relation,
    SchoolLevel,
    Tier,
)

SEED = 20190701
PER_BENEFIT = 24
HARDSHIP_CASES = 48
EVENT_SPAN_DAYS = 6 * 365  # event dates spread over this many days of the policy's time in force
RSS_GROWTH_TARGET_MB = 10
WRAPPER_VS_RAW_TARGET = 0.8


# --- the application set ---------------------------------------------------------------------

def _dates(rng: random.Random, policy: Policy, max_age: int | None, clean: bool = False) -> dict[str, str]:
    first, last = policy.effective_from, policy.effective_to
    span = EVENT_SPAN_DAYS if last is None else min(EVENT_SPAN_DAYS, (last - first).days + 1)
    event = first + dt.timedelta(days=rng.randrange(0, span))
    if max_age is None:
        age = rng.choice([0, 2, 30, 400, 2000])
    elif clean:
        age = rng.choice([0, 1, 7, max_age // 2, max_age - 1, max_age])
    else:  # often right at the limit, sometimes just or far beyond
        age = rng.choice([0, 7, max_age - 1, max_age, max_age + 1, 2 * max_age])
    return {"event_date": event.isoformat(), "filed_on": (event + dt.timedelta(days=age)).isoformat()}


def _amount(rng: random.Random, cap: int) -> int:
    if cap == 0:
        return rng.choice([0, 0, 1, 10_000])
    return max(0, rng.choice([0, 1, cap // 2, cap - 1, cap, cap, cap + 1, 2 * cap, cap + 50_000]))


def _household(rng: random.Random, policy: Policy) -> dict[str, Any]:
    """Net income around the deep and relative lines, costs around the accident ratio."""
    h = policy.hardship
    size = rng.randint(1, 6)
    deep, relative = size * h.dibao_annual_fen * h.deep_multiplier, size * h.dibao_annual_fen * h.relative_multiplier
    net = max(0, rng.choice([0, deep // 2, deep - 1, deep, deep + 1, relative - 1, relative, relative + 1, relative * 3 // 2, relative * 3]))
    ratio = h.accident_cost_ratio_pct
    # costs / income = ratio% exactly when costs = net * ratio / (100 - ratio); one fen more is above it
    at_ratio = net * ratio // (100 - ratio)
    costs = rng.choice([0, net // 10, at_ratio, at_ratio + 1, at_ratio * 2])
    household: dict[str, Any] = {
        "size": size,
        "annual_income_fen": net + costs,
        "unavoidable_costs_fen": costs,
        "sudden_event": rng.random() < 0.5,
    }
    for code in KNOWN_EXCLUSIONS:
        if rng.random() < 0.08:
            household[code] = True
        elif rng.random() < 0.3:
            household[code] = False  # explicit, as a form would send it
    return household


def _cap_variants(b: Benefit) -> list[tuple[dict[str, Any], int]]:
    """(extra fields, the cap that should apply) for each way this benefit is capped."""
    if b.tier_caps_fen is not None:
        out = [({"file_tier": t.value}, cap) for t, cap in b.tier_caps_fen.items()]
        return out + [({}, min(b.tier_caps_fen.values()))]  # no file: refused (requires_active_file)
    if b.level_caps_fen is not None:
        out: list[tuple[dict[str, Any], int]] = []
        for level, cap in b.level_caps_fen.items():
            for tier in Tier:
                out.append(({"school_level": level.value, "file_tier": tier.value}, cap))
            without = (b.level_caps_without_file_fen or {}).get(level)
            out.append(({"school_level": level.value}, without if without is not None else cap))
        out.append(({"file_tier": Tier.deep.value}, max(b.level_caps_fen.values())))  # school level unknown: refer
        return out
    assert b.cap_fen is not None
    return [({}, b.cap_fen)]


def _benefit_case(rng: random.Random, policy: Policy, b: Benefit) -> dict[str, Any]:
    """About half the cases are clean (only the amount and the cap variant vary), the others carry
    random faults: inactive member, late filing, claimed before, missing evidence, wrong relative."""
    clean = rng.random() < 0.5
    extra, cap = rng.choice(_cap_variants(b))
    app: dict[str, Any] = {
        "benefit": b.code,
        **_dates(rng, policy, b.max_event_age_days, clean),
        "member_active": clean or rng.random() > 0.15,
        **extra,
        "requested_fen": _amount(rng, cap),
    }
    limit = b.frequency.max_claims
    if clean:
        app["prior_claims"] = rng.choice([0, 0, limit - 1]) if b.frequency.scope != FrequencyScope.case else 0
    elif b.frequency.scope == FrequencyScope.case:
        app["prior_claims"] = rng.choice([0, 5])
    else:
        app["prior_claims"] = rng.choice([0, limit - 1, limit, limit + 1])
    yearly = b.period_cap_fen if b.period_cap_fen is not None else (cap if b.tier_caps_fen is not None else None)
    refuse = b.over_cap == OverCap.refuse
    if clean and refuse:  # an amount above a refusing cap is a fault: keep clean cases within it
        app["requested_fen"] = rng.choice([1, cap // 4, cap // 2, cap - 1, cap])
    if yearly is not None:
        room = max(0, yearly - app["requested_fen"])
        used = [0, room // 2, room] if clean and refuse else [0, yearly // 3, room, yearly - 1]
        app["period_used_fen"] = max(0, rng.choice(used if clean else [*used, yearly, yearly + 1]))
    r = 0.0 if clean else rng.random()
    if r < 0.5:
        app["evidence"] = list(b.evidence)
    elif r < 0.75 and b.evidence:
        app["evidence"] = [e for e in b.evidence if e != rng.choice(b.evidence)]
    elif r < 0.85:
        app["evidence"] = [*b.evidence, "festival_list"]
    # else: no evidence at all
    if b.eligible_relations is not None:
        choices = [*b.eligible_relations, None] if clean else [*Relation, None]
        relation = rng.choice(choices)  # None: the relation is not known (the case is referred)
        if relation is not None:
            app["relation"] = relation.value
    elif rng.random() < 0.1:
        app["relation"] = rng.choice(list(Relation)).value
    if rng.random() < 0.05:
        app["household"] = _household(rng, policy)  # allowed, irrelevant to the benefit
    if "school_level" not in app and rng.random() < 0.03:
        app["school_level"] = rng.choice(list(SchoolLevel)).value
    return app


def _hardship_case(rng: random.Random, policy: Policy) -> dict[str, Any]:
    app: dict[str, Any] = {
        "benefit": HARDSHIP_ASSESSMENT,
        **_dates(rng, policy, None),
        "member_active": rng.random() > 0.05,
        "household": _household(rng, policy),
    }
    if rng.random() < 0.2:
        app["file_tier"] = rng.choice(list(Tier)).value  # a renewal
    return app


def build_applications(policy: Policy) -> list[dict[str, Any]]:
    rng = random.Random(SEED)
    apps = [_benefit_case(rng, policy, b) for b in policy.benefits for _ in range(PER_BENEFIT)]
    apps += [_hardship_case(rng, policy) for _ in range(HARDSHIP_CASES)]
    rng.shuffle(apps)
    return apps


# --- raw durable-rules -----------------------------------------------------------------------

class _BareHost(durable.Host):
    def _run(self) -> None:  # no dispatcher threads
        pass


def _append_fired(rule_id: str):
    def action(c) -> None:
        fired = c.s["fired"] or []
        fired.append(rule_id)
        c.s["fired"] = fired

    return action


# --- zen-engine: the flat-cap benefits as one decision table ---------------------------------

def _zen_flat_cap_benefits(policy: Policy) -> list[Benefit]:
    return [b for b in policy.benefits if b.cap_fen is not None and b.over_cap == OverCap.reduce]


def zen_decision_graph(policy: Policy) -> dict[str, Any]:
    """First-hit table written from the policy itself (not from our compiler): refusals first,
    then the grant, then ``refer`` (a fact is missing, e.g. the relation)."""
    cols = ["benefit", "member_active", "event_age_days", "evidence_missing", "prior_claims", "relation", "period_used_fen"]
    outs = ["outcome", "rule", "cap_fen", "approved_fen"]
    rows: list[dict[str, str]] = []

    def row(b: Benefit, check: str, outcome: str, cap: str = "null", approved: str = "0", **cells: str) -> None:
        r = {"_id": f"{b.code}.{check}", **{f"i_{c}": "" for c in cols}, "i_benefit": json.dumps(b.code)}
        r |= {f"i_{k}": v for k, v in cells.items()}
        r |= {"o_outcome": json.dumps(outcome), "o_rule": json.dumps(f"{b.code}.{check}"), "o_cap_fen": cap, "o_approved_fen": approved}
        rows.append(r)

    for b in _zen_flat_cap_benefits(policy):
        row(b, "member_inactive", "ineligible", member_active="false")
        if b.max_event_age_days is not None:
            row(b, "event_too_old", "ineligible", event_age_days=f"> {b.max_event_age_days}")
        if b.evidence:
            row(b, "evidence_missing", "ineligible", evidence_missing="> 0")
        if b.frequency.scope != FrequencyScope.case:
            row(b, "already_claimed", "ineligible", prior_claims=f">= {b.frequency.max_claims}")
        covered = ""
        if b.eligible_relations is not None:
            covered = ", ".join(json.dumps(r.value) for r in b.eligible_relations)
            others = [r for r in Relation if r not in b.eligible_relations]
            if others:
                row(b, "relation_not_covered", "ineligible", relation=", ".join(json.dumps(r.value) for r in others))
        cap = str(b.cap_fen)
        if b.period_cap_fen is not None:
            row(b, "period_cap_reached", "ineligible", period_used_fen=f">= {b.period_cap_fen}")
            cap = f"min([{b.cap_fen}, {b.period_cap_fen} - period_used_fen])"
        row(b, "eligible", "eligible", cap=cap, approved=f"min([requested_fen, {cap}])", relation=covered, member_active="true")
        row(b, "refer", "refer")

    table = {
        "hitPolicy": "first",
        "inputs": [{"id": f"i_{c}", "name": c, "field": c} for c in cols],
        "outputs": [{"id": f"o_{o}", "name": o, "field": o} for o in outs],
        "rules": rows,
    }
    return {
        "contentType": "application/vnd.gorules.decision",
        "nodes": [
            {"id": "request", "type": "inputNode", "name": "Request", "position": {"x": 0, "y": 0}},
            {"id": "flat_caps", "type": "decisionTableNode", "name": "Flat caps", "position": {"x": 300, "y": 0}, "content": table},
            {"id": "response", "type": "outputNode", "name": "Response", "position": {"x": 600, "y": 0}},
        ],
        "edges": [
            {"id": "e1", "type": "edge", "sourceId": "request", "targetId": "flat_caps"},
            {"id": "e2", "type": "edge", "sourceId": "flat_caps", "targetId": "response"},
        ],
    }


def _zen_spot_checks(policy: Policy) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Hand-written cases with the answer worked out from the policy's numbers."""
    base = {"fact_kind": FACT_KIND, "member_active": True, "prior_claims": 0, "period_used_fen": 0,
            "event_age_days": 3, "evidence_missing": 0, "file_tier": "none"}

    def flat(code: str, requested: int, **more: Any) -> dict[str, Any]:
        f = {**base, "benefit": code, "requested_fen": requested, **more}
        f["period_total_fen"] = f["period_used_fen"] + requested
        return f

    refused = {"outcome": "ineligible", "cap_fen": None, "approved_fen": 0}
    checks = []
    if (b := policy.benefit("hospitalization")) is not None and b.cap_fen:
        checks += [
            (flat(b.code, b.cap_fen + 20_000), {"outcome": "eligible", "cap_fen": b.cap_fen, "approved_fen": b.cap_fen}),
            (flat(b.code, b.cap_fen // 2), {"outcome": "eligible", "cap_fen": b.cap_fen, "approved_fen": b.cap_fen // 2}),
            (flat(b.code, 1, evidence_missing=1), refused),
            (flat(b.code, 1, member_active=False), refused),
        ]
    if (b := policy.benefit("bereavement")) is not None and b.eligible_relations and b.cap_fen:
        uncovered = next(r for r in Relation if r not in b.eligible_relations)
        checks += [
            (flat(b.code, 1, relation=b.eligible_relations[0].value), {"outcome": "eligible", "cap_fen": b.cap_fen, "approved_fen": 1}),
            (flat(b.code, 1, relation=uncovered.value), refused),
            (flat(b.code, 1), {"outcome": "refer", "cap_fen": None, "approved_fen": 0}),  # relation unknown
        ]
    if (b := policy.benefit("holiday_gift")) is not None and b.period_cap_fen and b.cap_fen:
        used = b.period_cap_fen - b.cap_fen // 4
        left = min(b.cap_fen, b.period_cap_fen - used)
        checks += [
            (flat(b.code, b.cap_fen, period_used_fen=used), {"outcome": "eligible", "cap_fen": left, "approved_fen": left}),
            (flat(b.code, 1, period_used_fen=b.period_cap_fen), refused),
        ]
    return checks


# --- measuring -------------------------------------------------------------------------------

def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        resident_pages = int(f.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def cycle(items: list, n: int) -> list:
    return list(itertools.islice(itertools.cycle(items), n))


# CPU time of this thread, not wall time: on a shared machine the time this process waits for a core
# would otherwise be charged to whichever path happens to be running.
clock = time.thread_time


def per_second(run: Callable[[list], None], items: list, n: int, warmup: int) -> float:
    run(cycle(items, warmup))
    work = cycle(items, n)
    gc.collect()
    start = clock()
    run(work)
    return n / (clock() - start)


def interleaved_per_second(paths: dict[str, tuple[Callable[[list], None], list]], n: int, warmup: int, rounds: int = 20) -> dict[str, float]:
    """Each path runs n evaluations in ``rounds`` slices taken in turn, so that a slow spell of a
    shared machine falls on all paths alike (the ratios matter more than the absolute figures)."""
    slices = {name: cycle(items, n) for name, (_, items) in paths.items()}
    for run, items in paths.values():
        run(cycle(items, warmup))
    spent = dict.fromkeys(paths, 0.0)
    bounds = [n * i // rounds for i in range(rounds + 1)]
    for lo, hi in zip(bounds, bounds[1:]):
        for name, (run, _) in paths.items():
            work = slices[name][lo:hi]
            gc.collect()
            start = clock()
            run(work)
            spent[name] += clock() - start
    return {name: n / spent[name] for name in paths}


def emit(name: str, value: Any) -> None:
    if isinstance(value, bool):
        value = str(value).lower()
    elif isinstance(value, float):
        value = f"{value:.1f}"
    print(f"{name}={value}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rules", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about 10x fewer evaluations (smoke test)")
    parser.add_argument("--n", type=int, default=None, help="evaluations per timed section (default 20000; 2000 with --quick)")
    args = parser.parse_args(argv)
    scale = 10 if args.quick else 1
    n = args.n if args.n is not None else 20_000 // scale
    warmup = max(200, n // 10)
    mem_n, mem_warmup = 200_000 // scale, 2_000

    registry = default_registry()
    loaded: LoadedPolicy = registry.versions[-1]  # the latest version; every event date falls in its time
    policy = loaded.policy
    apps = build_applications(policy)
    print(f"# bench.rules python={sys.version.split()[0]} cores={os.cpu_count()} n={n} quick={str(args.quick).lower()} clock=thread_cpu_time")
    emit("policy_version", loaded.version)
    emit("policy_hash", loaded.hash)
    emit("applications_in_set", len(apps))

    # Every application is valid and all go to one policy version (the raw path assumes it).
    parsed = [ApplicationFacts.model_validate(a) for a in apps]
    assert all(registry.for_date(f.event_date) is loaded for f in parsed), "the set spans several policy versions"
    flats = [prepare(policy, f) for f in parsed]

    wrapper_decisions = [evaluate(a) for a in apps]
    reference_decisions = [evaluate(a, reference=True) for a in apps]
    outcomes = Counter(d.outcome.value for d in wrapper_decisions)
    emit("set_benefits", len({a["benefit"] for a in apps}))
    for outcome in ("eligible", "ineligible", "refer"):
        emit(f"set_{outcome}", outcomes[outcome])
    same = [w.model_dump(exclude={"engine"}) == r.model_dump(exclude={"engine"}) for w, r in zip(wrapper_decisions, reference_decisions)]
    emit("wrapper_reference_mismatches", same.count(False))

    # 1. the wrapper, with explanations
    def run_wrapper(batch: list) -> None:
        for a in batch:
            evaluate(a)

    # 2. raw durable-rules: the same compiled ruleset on a bare host, pre-prepared facts
    host = _BareHost()
    raw_name = "raw-" + loaded.ruleset_name
    host.set_rulesets({raw_name: to_durable_ruleset(compile_policy(policy), _append_fired)})
    sids = itertools.count(1)

    raw_mismatches = 0
    for flat, decision in zip(flats, wrapper_decisions):
        sid = f"r{next(sids)}"
        state = host.assert_fact(raw_name, {**flat, "sid": sid})  # the sentinel matches every prepared fact
        host.delete_state(raw_name, sid)
        fired = list(state.get("fired") or [])
        assert fired and fired[-1] == SENTINEL_ID, f"raw run did not complete: {fired}"
        raw_mismatches += fired[:-1] != decision.fired
    emit("raw_wrapper_fired_mismatches", raw_mismatches)

    def run_raw(batch: list) -> None:
        for flat in batch:
            sid = f"r{next(sids)}"
            host.assert_fact(raw_name, {**flat, "sid": sid})
            host.delete_state(raw_name, sid)

    # 3. the reference evaluator, same entry point
    def run_reference(batch: list) -> None:
        for a in batch:
            evaluate(a, reference=True)

    # Where the wrapper's time goes: its durable step alone (lock, session ids, checks), same facts
    engine = shared_engine()

    def run_fire(batch: list) -> None:
        for flat in batch:
            engine.fire(loaded, flat)

    rates = interleaved_per_second(
        {"wrapper": (run_wrapper, apps), "raw": (run_raw, flats), "reference": (run_reference, apps), "fire": (run_fire, flats)},
        n,
        warmup,
    )
    emit("wrapper_decisions_per_s", rates["wrapper"])
    emit("raw_durable_per_s", rates["raw"])
    emit("reference_decisions_per_s", rates["reference"])
    emit("wrapper_fire_only_per_s", rates["fire"])

    # 4. the wrapper's cost over raw durable-rules
    ratio = rates["wrapper"] / rates["raw"]
    emit("wrapper_vs_raw_ratio", f"{ratio:.3f}")
    emit("wrapper_vs_raw_target", WRAPPER_VS_RAW_TARGET)
    emit("wrapper_vs_raw_ok", ratio >= WRAPPER_VS_RAW_TARGET)

    # 5. zen-engine on the flat-cap benefits, same flat facts (pre-prepared, as for raw)
    zen_codes = {b.code for b in _zen_flat_cap_benefits(policy)}
    zen_pairs = [(f, d) for f, d in zip(flats, wrapper_decisions) if f["benefit"] in zen_codes]
    try:
        import zen
    except ImportError as exc:
        print(f"# zen-engine not importable: {exc}")
        emit("zen_engine_decisions_per_s", "unavailable")
    else:
        graph = zen_decision_graph(policy)
        # Two ways to call it: an engine with a static loader (decision compiled once, reused), and
        # ZenEngine.create_decision(...).evaluate, which costs ~0.2 ms per call even for a graph
        # that only passes its input through.
        loaded_engine = zen.ZenEngine({"loader": {"type": "static", "content": {"flat_caps": graph}}})
        decision = zen.ZenEngine().create_decision(json.dumps(graph))

        def zen_result(flat: dict[str, Any]) -> dict[str, Any]:
            got = loaded_engine.evaluate("flat_caps", flat)["result"]
            assert decision.evaluate(flat)["result"] == got
            return {"outcome": got.get("outcome"), "cap_fen": got.get("cap_fen"), "approved_fen": got.get("approved_fen")}

        for flat, spot in _zen_spot_checks(policy):
            got = zen_result(flat)
            assert got == spot, f"zen-engine spot check: {flat}: {got} != {spot}"
            d = evaluate_prepared(loaded, flat)
            assert {"outcome": d.outcome.value, "cap_fen": d.cap_fen, "approved_fen": d.approved_fen} == spot, (flat, d)
        for flat, expected in zen_pairs:  # the table must agree with our engine on every case
            want = {"outcome": expected.outcome.value, "cap_fen": expected.cap_fen, "approved_fen": expected.approved_fen}
            assert zen_result(flat) == want, f"zen-engine disagrees on {flat}: {zen_result(flat)} != {want}"
        zen_flats = [f for f, _ in zen_pairs]

        def run_zen(batch: list) -> None:
            evaluate_zen = loaded_engine.evaluate
            for flat in batch:
                evaluate_zen("flat_caps", flat)

        def run_zen_decision(batch: list) -> None:
            evaluate_zen = decision.evaluate
            for flat in batch:
                evaluate_zen(flat)

        zen_app_set = [a for a in apps if a["benefit"] in zen_codes]
        emit("zen_engine_subset_applications", len(zen_flats))
        emit("zen_engine_decisions_per_s", per_second(run_zen, zen_flats, n, warmup))
        emit("zen_engine_create_decision_per_s", per_second(run_zen_decision, zen_flats, n // 4, warmup // 4))
        emit("raw_durable_same_subset_per_s", per_second(run_raw, zen_flats, n, warmup))
        emit("wrapper_same_subset_per_s", per_second(run_wrapper, zen_app_set, n, warmup))

    # 6. memory: RSS across many wrapper evaluations, after a warm-up
    run_wrapper(cycle(apps, mem_warmup))
    gc.collect()
    work = itertools.islice(itertools.cycle(apps), mem_n)  # lazily: the list itself would count
    before = rss_mb()
    run_wrapper(work)
    gc.collect()
    after = rss_mb()
    emit("rss_evaluations", mem_n)
    emit("rss_before_mb", before)
    emit("rss_after_mb", after)
    emit("rss_growth_mb", after - before)
    emit("rss_growth_target_mb", RSS_GROWTH_TARGET_MB)
    emit("rss_growth_ok", after - before <= RSS_GROWTH_TARGET_MB)
    return 0


if __name__ == "__main__":
    sys.exit(main())
