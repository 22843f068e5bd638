"""The durable-rules traps of DESIGN.md §6, each pinned by a test that fails if the wrapper forgets it."""

import threading

import pytest

from rules import FactsError, Outcome, RulesEngineError, evaluate
from rules.durable_engine import DurableRulesEngine
from rules.evaluate import shared_engine
from rules.facts import FACT_KIND
from rules.loader import default_registry

from .helpers import EVENT, facts


def test_more_evaluations_than_durable_sessions_allow():
    # A ruleset holds at most 1,024 open sessions: each evaluation must close its own.
    for i in range(3_000):
        assert evaluate(facts("birthday", requested_fen=i % 40_000)).outcome == Outcome.eligible


def test_no_decisive_rule_refers_to_a_person_and_never_crashes():
    # Facts no benefit rule can decide (a case the policy has no answer for): the sentinel keeps
    # durable-rules from the unhandled-assert path, whose delete_state would crash the process.
    for _ in range(50):
        d = evaluate(facts("bereavement", requested_fen=100_000))
        assert d.outcome == Outcome.refer and d.approved_fen == 0


def test_unmatched_facts_raise_instead_of_deciding():
    loaded = default_registry().for_date(EVENT)
    with pytest.raises(RulesEngineError, match="no rule matched"):
        DurableRulesEngine().fire(loaded, {"fact_kind": "something-else", "benefit": "none-such"})


def test_exception_swallowed_by_durable_rules_is_raised(monkeypatch):
    loaded = default_registry().for_date(EVENT)
    engine = DurableRulesEngine()

    def failing(rule_id):
        def action(c):
            if rule_id == "birthday.eligible":
                raise ZeroDivisionError("inside an action")
            c.s["fired"] = (c.s["fired"] or []) + [rule_id]
        return action

    monkeypatch.setattr("rules.durable_engine._record", failing)
    flat = {"fact_kind": FACT_KIND, "benefit": "birthday", "member_active": True, "requested_fen": 1,
            "prior_claims": 0, "period_used_fen": 0, "period_total_fen": 1, "event_age_days": 0, "file_tier": "none",
            "evidence_missing": 0}
    with pytest.raises(RulesEngineError, match="inside an action"):
        engine.fire(loaded, flat)


@pytest.mark.parametrize(
    ("field", "value"),
    [("member_active", 1), ("member_active", "true"), ("requested_fen", 100.5), ("requested_fen", "100"),
     ("requested_fen", -1), ("prior_claims", True), ("relation", "cousin"), ("colour", "red")],
)
def test_schema_rejects_what_durable_rules_would_coerce(field, value):
    # durable-rules matches `member_active == true` against 1 and "true": the schema must stop them.
    with pytest.raises(FactsError) as err:
        evaluate(facts("hospitalization", **{field: value}))
    assert err.value.field == field and err.value.reason_zh and err.value.reason_en


def test_decimal_and_float_money_rejected():
    from decimal import Decimal

    for amount in (Decimal("100.00"), 100.0):
        with pytest.raises(FactsError):
            evaluate(facts("hospitalization", requested_fen=amount))


def test_unknown_benefit_and_future_event_are_input_errors():
    with pytest.raises(FactsError) as err:
        evaluate(facts("free_lunch"))
    assert err.value.field == "benefit"
    with pytest.raises(FactsError) as err:
        evaluate(facts("birthday", event_date="2024-03-10", filed_on="2024-03-01"))
    assert err.value.field == "event_date"


def test_rulesets_registered_once_per_version_and_hash():
    engine = shared_engine()
    loaded = default_registry().for_date(EVENT)
    assert engine.compiled(loaded) is engine.compiled(loaded)
    with pytest.raises(Exception, match="already registered"):
        engine._host.set_rulesets({loaded.ruleset_name: {}})


def test_concurrent_callers_get_the_sequential_answers():
    cases = [
        facts(b, requested_fen=amount, relation=rel, prior_claims=prior)
        for b in ("hospitalization", "bereavement", "birthday", "wedding", "holiday_gift")
        for amount in (0, 29_999, 30_001, 100_001)
        for rel in ("spouse", "sibling")
        for prior in (0, 1)
    ]
    expected = [evaluate(c).model_dump() for c in cases]
    results: dict[int, list] = {}
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            results[n] = [evaluate(c).model_dump() for c in cases for _ in range(3)][::3]
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert all(results[n] == expected for n in range(8))


def test_arithmetic_on_a_missing_field_never_matches():
    # Unguarded, durable-rules matched both "below 1x the line" and "at least 2x the line" when the
    # household size was absent: deep hardship on missing data.
    loaded = default_registry().for_date(EVENT)
    flat = {"fact_kind": FACT_KIND, "benefit": "hardship_assessment", "member_active": True, "requested_fen": 0,
            "prior_claims": 0, "period_used_fen": 0, "period_total_fen": 0, "event_age_days": 0, "file_tier": "none",
            "income_fen": 0, "net_income_fen": 0, "costs_x100": 0, "sudden_event": False,
            "excl_multiple_homes": False, "excl_business_or_employer": False,
            "excl_private_school_or_abroad": False, "excl_private_car": False}
    assert shared_engine().fire(loaded, flat) == []
    assert shared_engine().fire(loaded, flat | {"household_size": 2}) == ["hardship.tier.deep"]
