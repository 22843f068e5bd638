"""Human-readable reasons (Chinese first, English beside) for each rule id.

Rule ids read ``<benefit>.<check>[.<qualifier>...]``, ``member.inactive``, or
``hardship.<check>[.<qualifier>]``. The text depends on the rule and the facts only, never on
which evaluator produced the id.
"""

from __future__ import annotations

from typing import Any

from rules.decision import Reason
from rules.model import Policy, SchoolLevel, Tier

SCHOOL_LEVEL_NAMES = {SchoolLevel.university: ("大学", "university"), SchoolLevel.high_school: ("高中", "high school")}
NO_RULE_DECIDED = Reason(
    rule_id=None,
    zh="没有规则能够作出决定（信息不全或情况特殊），转由工会工作人员审核",
    en="No rule could decide (missing information or an unusual case); a union officer decides",
)


def yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"


def _qualifier_names(policy: Policy, qualifier: list[str]) -> tuple[str, str]:
    """'deep' -> 深度困难; 'university' -> 大学; 'university.without_file' -> 大学（无困难档案）."""
    if not qualifier:
        return "", ""
    head = qualifier[0]
    if head in Tier.__members__:
        info = policy.hardship.tiers[Tier(head)]
        return f"（{info.name_zh}）", f" ({info.name_en})"
    zh, en = SCHOOL_LEVEL_NAMES[SchoolLevel(head)]
    if qualifier[1:] == ["without_file"]:
        return f"（{zh}，无困难档案）", f" ({en}, no hardship file)"
    return f"（{zh}）", f" ({en})"


def explain(
    policy: Policy, rule_id: str, facts: dict[str, Any], cap_fen: int | None = None, period_cap_fen: int | None = None
) -> Reason:
    """``cap_fen`` and ``period_cap_fen`` are the rule's own caps (per claim, per year)."""
    head, check, *qualifier = rule_id.split(".")
    if rule_id == "member.inactive":
        return Reason(rule_id=rule_id, zh="申请人不是在册有效会员", en="The applicant is not an active member")
    if head == "hardship":
        return _explain_hardship(policy, rule_id, check, qualifier)
    benefit = policy.benefit(head)
    if benefit is None:  # pragma: no cover - ids come from the policy
        raise KeyError(rule_id)
    qzh, qen = _qualifier_names(policy, qualifier)
    cap = yuan(cap_fen) if cap_fen is not None else "-"
    used_fen = facts.get("period_used_fen", 0)
    used = yuan(used_fen)
    period_cap = yuan(period_cap_fen) if period_cap_fen is not None else "-"
    left = yuan(period_cap_fen - used_fen) if period_cap_fen is not None else "-"
    name_zh, name_en = benefit.name_zh, benefit.name_en
    texts: dict[str, tuple[str, str]] = {
        "event_too_old": (
            f"事件已超过 {benefit.max_event_age_days} 天申报期限",
            f"The event is older than the {benefit.max_event_age_days}-day filing limit",
        ),
        "evidence_missing": (
            "缺少证明材料：" + "、".join(policy.evidence_item(e).name_zh for e in benefit.evidence),
            "Evidence missing; required: " + ", ".join(policy.evidence_item(e).name_en for e in benefit.evidence),
        ),
        "already_claimed": (
            f"{name_zh}已在同一{_scope_zh(benefit.frequency.scope)}内享受过",
            f"{name_en} was already granted {_scope_en(benefit.frequency.scope)}",
        ),
        "relation_not_covered": (
            "去世亲属不属于直系亲属（配偶、父母、子女）",
            "The relative is not an immediate relative (spouse, parent, child)",
        ),
        "no_active_file": (
            "没有有效的困难职工档案，先建档、后帮扶",
            "No active hardship file: file first, then assist",
        ),
        "period_cap_reached": (
            f"本年度累计已达上限{qzh} {period_cap} 元，已用 {used} 元",
            f"This year's total cap{qen} of {period_cap} yuan is used up ({used} yuan granted)",
        ),
        "over_cap": (
            f"申请金额超过上限{qzh} {cap} 元，按规定不予受理超额申请",
            f"The amount asked exceeds the cap{qen} of {cap} yuan; over-cap requests are refused",
        ),
        "over_period_cap": (
            f"申请金额加本年度已用 {used} 元超过年度上限{qzh} {period_cap} 元",
            f"The amount asked plus {used} yuan already granted this year exceeds the yearly cap{qen} of {period_cap} yuan",
        ),
        "eligible": (
            f"符合{name_zh}条件{qzh}，上限 {cap} 元",
            f"Eligible for {name_en}{qen}; cap {cap} yuan",
        ),
        "capped": (
            f"申请金额超过上限，按上限 {cap} 元核定",
            f"The amount asked exceeds the cap; granted at the cap of {cap} yuan",
        ),
        "period_limited": (
            f"受年度累计上限 {period_cap} 元限制，本年已用 {used} 元，按剩余额度 {left} 元核定",
            f"Limited by the yearly total of {period_cap} yuan: {used} yuan already granted, {left} yuan left",
        ),
        "goods_only": ("以慰问品形式发放，不发现金", "Given as goods, never as cash"),
        "visit_only": ("走访慰问，不涉及资金", "A visit only; no money is paid"),
    }
    zh, en = texts[check]
    return Reason(rule_id=rule_id, zh=zh, en=en)


def _explain_hardship(policy: Policy, rule_id: str, check: str, qualifier: list[str]) -> Reason:
    h = policy.hardship
    line = yuan(h.dibao_monthly_fen)
    if check == "excluded":
        exclusion = next(e for e in h.exclusions if e.code == qualifier[0])
        return Reason(rule_id=rule_id, zh=f"不符合困难认定：{exclusion.name_zh}", en=f"Excluded: {exclusion.name_en}")
    if check == "tier":
        tier = Tier(qualifier[0])
        criteria = {
            Tier.deep: (
                f"家庭人均可支配收入低于当地低保标准（每人每月 {line} 元）",
                f"household income per person below the local minimum living line ({line} yuan a month)",
            ),
            Tier.relative: (
                f"家庭人均可支配收入低于低保标准的 {h.relative_multiplier} 倍",
                f"household income per person below {h.relative_multiplier}x the minimum living line",
            ),
            Tier.accident: (
                f"遭遇突发事件，刚性支出超过家庭收入的 {h.accident_cost_ratio_pct}%",
                f"a sudden event, with unavoidable costs above {h.accident_cost_ratio_pct}% of household income",
            ),
        }[tier]
        info = h.tiers[tier]
        return Reason(rule_id=rule_id, zh=f"认定为{info.name_zh}：{criteria[0]}", en=f"{info.name_en}: {criteria[1]}")
    above = (
        f"家庭人均收入不低于低保标准的 {h.relative_multiplier} 倍",
        f"Household income per person is at least {h.relative_multiplier}x the minimum living line",
    )
    if qualifier == ["costs_within_ratio"]:
        return Reason(
            rule_id=rule_id,
            zh=f"{above[0]}，突发事件后刚性支出未超过家庭收入的 {h.accident_cost_ratio_pct}%",
            en=f"{above[1]}, and after the sudden event costs are not above {h.accident_cost_ratio_pct}% of income",
        )
    return Reason(rule_id=rule_id, zh=f"{above[0]}，且无突发事件", en=f"{above[1]}, with no sudden event")


def _scope_zh(scope: str) -> str:
    return {
        "calendar_year": "自然年度",
        "event": "事件",
        "member": "会员",
        "child": "子女",
        "child_school_year": "子女学年",
        "household_year": "家庭年度",
    }.get(scope, "范围")


def _scope_en(scope: str) -> str:
    return {
        "calendar_year": "this calendar year",
        "event": "for this event",
        "member": "to this member",
        "child": "for this child",
        "child_school_year": "for this child this school year",
        "household_year": "to this household this year",
    }.get(scope, "in this scope")
