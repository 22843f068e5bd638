"""The seed's caps at their boundaries (温直工〔2019〕7号 四(二)), with both evaluators."""

import pytest

from rules import Outcome, evaluate
from rules.model import Form

from .helpers import facts

BOTH = pytest.mark.parametrize("reference", [False, True], ids=["durable", "reference"])


@BOTH
@pytest.mark.parametrize(
    ("benefit", "asked", "approved", "capped"),
    [
        ("hospitalization", 99_999, 99_999, False),
        ("hospitalization", 100_000, 100_000, False),
        ("hospitalization", 100_001, 100_000, True),
        ("birthday", 30_000, 30_000, False),
        ("birthday", 30_001, 30_000, True),
        ("wedding", 50_000, 50_000, False),
        ("wedding", 50_001, 50_000, True),
        ("childbirth", 50_000, 50_000, False),
        ("childbirth", 50_001, 50_000, True),
        ("retirement", 100_000, 100_000, False),
        ("retirement", 100_001, 100_000, True),
    ],
)
def test_cap_boundaries(benefit, asked, approved, capped, reference):
    extra = {"relation": "spouse"} if benefit == "bereavement" else {}
    d = evaluate(facts(benefit, requested_fen=asked, **extra), reference=reference)
    assert d.outcome == Outcome.eligible
    assert d.approved_fen == approved
    assert d.cap_fen == {"hospitalization": 100_000, "birthday": 30_000, "retirement": 100_000}.get(benefit, 50_000)
    assert (f"{benefit}.capped" in d.fired) is capped
    assert d.fired[0] == f"{benefit}.eligible"
    assert d.policy_version == "wenzhou-2019" and len(d.policy_hash) == 64
    assert d.reasons[0].rule_id == f"{benefit}.eligible" and d.reasons[0].zh and d.reasons[0].en


@BOTH
@pytest.mark.parametrize(
    ("relation", "outcome"),
    [("spouse", Outcome.eligible), ("parent", Outcome.eligible), ("child", Outcome.eligible),
     ("sibling", Outcome.ineligible), ("grandparent", Outcome.ineligible), ("other", Outcome.ineligible)],
)
def test_bereavement_only_for_immediate_relatives(relation, outcome, reference):
    d = evaluate(facts("bereavement", requested_fen=100_000, relation=relation), reference=reference)
    assert d.outcome == outcome
    assert d.approved_fen == (100_000 if outcome == Outcome.eligible else 0)
    if outcome == Outcome.ineligible:
        assert d.fired == ["bereavement.relation_not_covered"]
        assert "直系亲属" in d.reasons[0].zh


@BOTH
def test_bereavement_without_relation_goes_to_a_person(reference):
    d = evaluate(facts("bereavement", requested_fen=100_000), reference=reference)
    assert d.outcome == Outcome.refer and d.approved_fen == 0 and d.fired == []
    assert d.reasons[-1].rule_id is None


@BOTH
def test_second_birthday_gift_in_a_year_refused_next_year_allowed(reference):
    second = evaluate(facts("birthday", requested_fen=30_000, prior_claims=1), reference=reference)
    assert second.outcome == Outcome.ineligible and second.approved_fen == 0
    assert "birthday.already_claimed" in second.fired
    # The caller counts prior claims per calendar year of the event: none yet in the next year.
    next_year = evaluate(
        facts("birthday", requested_fen=30_000, prior_claims=0, event_date="2025-03-01", filed_on="2025-03-01"),
        reference=reference,
    )
    assert next_year.outcome == Outcome.eligible and next_year.approved_fen == 30_000


@BOTH
@pytest.mark.parametrize("benefit", ["family_mediation", "member_conflict", "family_hardship_visit"])
def test_visits_carry_no_money(benefit, reference):
    d = evaluate(facts(benefit, requested_fen=50_000), reference=reference)
    assert d.outcome == Outcome.eligible
    assert d.approved_fen == 0 and d.cap_fen == 0 and d.form == Form.visit
    assert f"{benefit}.visit_only" in d.fired


@BOTH
@pytest.mark.parametrize("benefit", ["birthday", "wedding", "childbirth", "retirement", "child_university", "holiday_gift"])
def test_goods_only_benefits_are_never_cash(benefit, reference):
    d = evaluate(facts(benefit, requested_fen=10_000), reference=reference)
    assert d.form == Form.goods
    assert f"{benefit}.goods_only" in d.fired
    assert any("不发现金" in r.zh for r in d.reasons)


@BOTH
def test_inactive_member_is_refused_whatever_else_holds(reference):
    d = evaluate(facts("hospitalization", requested_fen=1, member_active=False), reference=reference)
    assert d.outcome == Outcome.ineligible and d.fired[0] == "member.inactive" and d.approved_fen == 0


@BOTH
def test_missing_evidence_refuses_and_names_it(reference):
    d = evaluate(facts("bereavement", requested_fen=1, relation="parent", evidence=["death_certificate"]), reference=reference)
    assert d.outcome == Outcome.ineligible and "bereavement.evidence_missing" in d.fired
    assert "亲属关系证明" in d.reasons[0].zh


@BOTH
def test_event_older_than_filing_limit(reference):
    ok = evaluate(facts("hospitalization", requested_fen=1, event_date="2024-01-01", filed_on="2024-06-29"), reference=reference)
    late = evaluate(facts("hospitalization", requested_fen=1, event_date="2024-01-01", filed_on="2024-06-30"), reference=reference)
    assert ok.outcome == Outcome.eligible  # 180 days
    assert late.outcome == Outcome.ineligible and late.fired == ["hospitalization.event_too_old"]


@BOTH
def test_holiday_gifts_limited_by_the_yearly_total(reference):
    limited = evaluate(facts("holiday_gift", requested_fen=50_000, period_used_fen=100_000), reference=reference)
    assert limited.outcome == Outcome.eligible and limited.approved_fen == 30_000 and limited.cap_fen == 30_000
    assert "holiday_gift.period_limited" in limited.fired
    used_up = evaluate(facts("holiday_gift", requested_fen=1, period_used_fen=130_000), reference=reference)
    assert used_up.outcome == Outcome.ineligible and "holiday_gift.period_cap_reached" in used_up.fired


@BOTH
@pytest.mark.parametrize(
    ("tier", "used", "asked", "outcome", "rule"),
    [
        (None, 0, 100, Outcome.ineligible, "hardship_assistance.no_active_file"),
        ("deep", 0, 1_000_000, Outcome.eligible, "hardship_assistance.eligible.deep"),
        ("deep", 1, 1_000_000, Outcome.ineligible, "hardship_assistance.over_period_cap.deep"),
        ("relative", 0, 600_001, Outcome.ineligible, "hardship_assistance.over_period_cap.relative"),
        ("relative", 600_000, 1, Outcome.ineligible, "hardship_assistance.period_cap_reached.relative"),
        ("accident", 300_000, 500_000, Outcome.eligible, "hardship_assistance.eligible.accident"),
    ],
)
def test_hardship_assistance_needs_an_active_file_and_stays_within_the_tier(tier, used, asked, outcome, rule, reference):
    d = evaluate(facts("hardship_assistance", file_tier=tier, period_used_fen=used, requested_fen=asked), reference=reference)
    assert d.outcome == outcome and rule in d.fired
    assert d.approved_fen == (asked if outcome == Outcome.eligible else 0)


@BOTH
@pytest.mark.parametrize(
    ("tier", "level", "approved", "rule"),
    [
        ("deep", "university", 300_000, "education_grant.eligible.university"),
        ("relative", "high_school", 200_000, "education_grant.eligible.high_school"),
        (None, "university", 100_000, "education_grant.eligible.university.without_file"),
        (None, "high_school", 50_000, "education_grant.eligible.high_school.without_file"),
    ],
)
def test_education_grant_by_school_level(tier, level, approved, rule, reference):
    d = evaluate(facts("education_grant", file_tier=tier, school_level=level, requested_fen=999_999), reference=reference)
    assert d.outcome == Outcome.eligible and d.approved_fen == approved and d.fired[0] == rule
