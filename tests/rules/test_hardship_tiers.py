"""困难职工 tiers at their exact boundaries: 1x and 2x the 低保 line, the 80% cost ratio, each exclusion."""

import pytest

from rules import Outcome, evaluate
from rules.loader import default_registry
from rules.model import KNOWN_EXCLUSIONS, Tier

from .helpers import EVENT, facts

BOTH = pytest.mark.parametrize("reference", [False, True], ids=["durable", "reference"])
LINE = default_registry().for_date(EVENT).policy.hardship.dibao_annual_fen  # per person per year
SIZE = 3


def assess(reference, *, net=None, income=None, costs=0, sudden=False, **exclusions):
    income = income if income is not None else net + costs
    household = {"size": SIZE, "annual_income_fen": income, "unavoidable_costs_fen": costs, "sudden_event": sudden}
    return evaluate(facts("hardship_assessment", household=household | exclusions, evidence=[]), reference=reference)


@BOTH
@pytest.mark.parametrize(
    ("net", "tier"),
    [
        (SIZE * LINE - 1, Tier.deep),  # just below 1x
        (SIZE * LINE, Tier.relative),  # exactly 1x is not below the line
        (2 * SIZE * LINE - 1, Tier.relative),
        (2 * SIZE * LINE, None),  # exactly 2x: not in hardship
        (-5_000, Tier.deep),  # costs above income
    ],
)
def test_income_tiers_at_the_line(net, tier, reference):
    costs = 1_000 if net >= 0 else 10_000
    d = assess(reference, net=net, costs=costs)
    if tier is None:
        assert d.outcome == Outcome.ineligible and d.fired == ["hardship.not_in_hardship"]
    else:
        assert d.outcome == Outcome.eligible and d.tier == tier and d.fired == [f"hardship.tier.{tier.value}"]
    assert d.approved_fen == 0 and d.route.public_notice_working_days == 5


@BOTH
@pytest.mark.parametrize(("costs", "tier"), [(80_000_000, None), (80_000_001, Tier.accident)])
def test_sudden_event_ratio_at_80_percent(costs, tier, reference):
    # One person, income 1,000,000 yuan: even after the costs, far above 2x the line.
    household = {"size": 1, "annual_income_fen": 100_000_000, "unavoidable_costs_fen": costs, "sudden_event": True}
    assert household["annual_income_fen"] - costs >= 2 * LINE
    d = evaluate(facts("hardship_assessment", evidence=[], household=household), reference=reference)
    if tier is None:  # exactly 80% is not above 80%
        assert d.outcome == Outcome.ineligible and d.fired == ["hardship.not_in_hardship.costs_within_ratio"]
    else:
        assert d.outcome == Outcome.eligible and d.tier == Tier.accident and d.fired == ["hardship.tier.accident"]


@BOTH
def test_no_sudden_event_means_no_accident_tier(reference):
    household = {"size": 1, "annual_income_fen": 100_000_000, "unavoidable_costs_fen": 90_000_000, "sudden_event": False}
    d = evaluate(facts("hardship_assessment", evidence=[], household=household), reference=reference)
    assert d.outcome == Outcome.ineligible and d.fired == ["hardship.not_in_hardship"]


@BOTH
@pytest.mark.parametrize("exclusion", KNOWN_EXCLUSIONS)
def test_each_exclusion_refuses_even_the_poorest(exclusion, reference):
    d = assess(reference, net=0, **{exclusion: True})
    assert d.outcome == Outcome.ineligible
    assert d.fired == [f"hardship.excluded.{exclusion}"]
    assert d.tier is None and d.reasons[0].zh.startswith("不符合困难认定")
