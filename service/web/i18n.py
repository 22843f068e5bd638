"""Chinese first; English when the person switches (a cookie remembers it)."""

from __future__ import annotations

from fastapi import Request

LANG_COOKIE = "lang"


def language(request: Request) -> str:
    asked = request.query_params.get("lang")
    if asked in ("zh", "en"):
        return asked
    return "en" if request.cookies.get(LANG_COOKIE) == "en" else "zh"


def translator(lang: str):
    def tr(zh: str, en: str) -> str:
        return en if lang == "en" else zh

    return tr


STATUS = {
    "submitted": ("已提交", "Submitted"),
    "pending_approval": ("审批中", "Pending approval"),
    "returned": ("退回补充", "Returned"),
    "awaiting_funds": ("等待经费", "Awaiting funds"),
    "approved": ("已批准", "Approved"),
    "disbursed": ("已发放", "Paid"),
    "receipt_confirmed": ("已签领", "Receipt confirmed"),
    "closed": ("已结案", "Closed"),
    "rejected": ("未通过", "Rejected"),
    "withdrawn": ("已撤回", "Withdrawn"),
}
STAGE = {
    "officer_check": ("经办人初审", "Officer check"),
    "chair_approval": ("主席审批", "Chair approval"),
    "committee_vote": ("委员会表决", "Committee vote"),
    "public_notice": ("公示", "Public notice"),
    "receipt": ("签领确认", "Receipt"),
    "audit_review": ("经审复核", "Audit review"),
}
FORM = {"cash": ("慰问金（现金）", "Cash"), "goods": ("慰问品", "Goods"), "visit": ("走访（不涉及资金）", "Visit only")}
ROUTE = {
    "auto": ("自动（按批次签批）", "Automatic (batch sign-off)"),
    "officer": ("经办人登记", "Officer records it"),
    "chair": ("经办人初审 → 主席审批", "Officer check → chair"),
    "committee": ("委员会集体研究", "Committee vote"),
}


def label(table: dict[str, tuple[str, str]], key: str | None, lang: str) -> str:
    if key is None:
        return ""
    zh, en = table.get(key, (key, key))
    return en if lang == "en" else zh
