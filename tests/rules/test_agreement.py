"""durable-rules and the plain-Python reference agree exactly, on thousands of random applications."""

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules.evaluate import evaluate_prepared, parse_facts, policy_for
from rules.facts import MAX_FEN, prepare
from rules.loader import default_registry
from rules.model import HARDSHIP_ASSESSMENT, KNOWN_EXCLUSIONS, Relation, SchoolLevel, Tier

POLICY = default_registry().versions[0].policy
BENEFITS = [b.code for b in POLICY.benefits] + [HARDSHIP_ASSESSMENT]
EVIDENCE = [e.code for e in POLICY.evidence]
CAPS = sorted(
    {b.cap_fen for b in POLICY.benefits if b.cap_fen is not None}
    | {c for b in POLICY.benefits for c in (b.tier_caps_fen or {}).values()}
    | {c for b in POLICY.benefits for c in (b.level_caps_fen or {}).values()}
    | {c for b in POLICY.benefits for c in (b.level_caps_without_file_fen or {}).values()}
    | {b.period_cap_fen for b in POLICY.benefits if b.period_cap_fen}
)
LINE = POLICY.hardship.dibao_annual_fen

# Amounts cluster where decisions change: at every cap, one fen either side, and anywhere else.
near_caps = st.sampled_from(CAPS).flatmap(lambda c: st.integers(max(0, c - 2), c + 2))
amounts = st.one_of(near_caps, st.integers(0, 2_000_000), st.just(0), st.just(MAX_FEN))


def optional(strategy):
    return st.one_of(st.none(), strategy)


@st.composite
def households(draw):
    size = draw(st.integers(1, 30))
    line_multiple = draw(st.sampled_from([0, 1, 2, 3]))
    net_target = size * LINE * line_multiple + draw(st.integers(-2, 2))
    costs = draw(st.one_of(st.integers(0, 3_000_000), st.just(0)))
    income = draw(st.one_of(st.just(max(0, net_target + costs)), st.integers(0, MAX_FEN // 100)))
    if draw(st.booleans()):  # exact 80% boundary cases for the sudden-event test
        income = draw(st.integers(0, 10_000_000)) * 5
        costs = income * POLICY.hardship.accident_cost_ratio_pct // 100 + draw(st.integers(-1, 1))
        costs = max(0, costs)
    exclusions = {code: draw(st.booleans()) if draw(st.integers(0, 4)) == 0 else False for code in KNOWN_EXCLUSIONS}
    return {"size": size, "annual_income_fen": income, "unavoidable_costs_fen": costs,
            "sudden_event": draw(st.booleans()), **exclusions}


@st.composite
def applications(draw):
    event = draw(st.dates(dt.date(2019, 1, 1), dt.date(2026, 12, 31)))
    age = draw(st.one_of(st.integers(0, 400), st.sampled_from([59, 60, 61, 179, 180, 181, 364, 365, 366, 367])))
    raw = {
        "benefit": draw(st.sampled_from(BENEFITS)),
        "event_date": event,
        "filed_on": event + dt.timedelta(days=age),
        "requested_fen": draw(amounts),
        "member_active": draw(st.booleans()) if draw(st.integers(0, 5)) == 0 else True,
        "prior_claims": draw(st.sampled_from([0, 0, 0, 1, 2, 11, 12, 13])),
        "period_used_fen": draw(st.one_of(st.just(0), near_caps, amounts)),
        "evidence": draw(st.lists(st.sampled_from(EVIDENCE), max_size=4)),
    }
    for key, strategy in [
        ("relation", st.sampled_from(list(Relation))),
        ("file_tier", st.sampled_from(list(Tier))),
        ("school_level", st.sampled_from(list(SchoolLevel))),
        ("household", households()),
    ]:
        value = draw(optional(strategy))
        if value is not None:  # absent, not null: the caller did not know it
            raw[key] = value
    if raw["benefit"] == HARDSHIP_ASSESSMENT and "household" not in raw:
        raw["household"] = draw(households())
    return raw


def both(raw):
    facts = parse_facts(raw)
    loaded = policy_for(facts, default_registry())
    flat = prepare(loaded.policy, facts)
    durable = evaluate_prepared(loaded, flat).model_dump(exclude={"engine"})
    reference = evaluate_prepared(loaded, flat, reference=True).model_dump(exclude={"engine"})
    return durable, reference


@settings(max_examples=4_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(applications())
def test_durable_rules_and_reference_agree(raw):
    durable, reference = both(raw)
    assert durable == reference
    assert 0 <= durable["approved_fen"] <= raw["requested_fen"]
    if durable["cap_fen"] is not None:
        assert durable["approved_fen"] <= durable["cap_fen"]
    if durable["outcome"] != "eligible":
        assert durable["approved_fen"] == 0


@st.composite
def partial_flat_facts(draw):
    """Prepared facts with optional keys knocked out one by one: absent must never grant."""
    raw = draw(applications())
    facts = parse_facts(raw)
    loaded = policy_for(facts, default_registry())
    flat = prepare(loaded.policy, facts)
    optional_keys = [k for k in flat if k.startswith(("excl_", "household", "net_", "costs_", "income_", "sudden_"))
                     or k in ("relation", "school_level")]
    for key in draw(st.lists(st.sampled_from(optional_keys), unique=True)) if optional_keys else []:
        del flat[key]
    return loaded, flat


@settings(max_examples=1_500, deadline=None)
@given(partial_flat_facts())
def test_agreement_when_facts_are_missing(case):
    loaded, flat = case
    durable = evaluate_prepared(loaded, flat).model_dump(exclude={"engine"})
    reference = evaluate_prepared(loaded, flat, reference=True).model_dump(exclude={"engine"})
    assert durable == reference
