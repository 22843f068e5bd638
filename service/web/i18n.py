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

# Hardship files (困难职工档案) and warmth campaigns (送温暖).
FILE_STAGE = {
    "clerk_check": ("初审", "Preliminary check"),
    "home_visit": ("入户调查", "Home visit"),
    "committee_vote": ("集体研究表决", "Committee vote"),
    "chair_decision": ("主席决定", "Chair's decision"),
    "public_notice": ("公示", "Public notice"),
    "active": ("有效", "In force"),
    "review_due": ("待年度复核", "Yearly review due"),
    "lapsed": ("已过期未复核", "Lapsed, not reviewed"),
    "renewed": ("已续期", "Renewed"),
    "closed": ("已注销", "Closed"),
    "rejected": ("未通过", "Rejected"),
}
FILE_STATUS = {
    "pending": ("办理中", "In progress"),
    "active": ("有效", "Active"),
    "closed": ("已注销", "Closed"),
    "rejected": ("未通过", "Rejected"),
}
FILE_STORY = {
    "opened": ("建档申请", "File opened"),
    "checked": ("初审", "Preliminary check"),
    "check_rejected": ("初审未通过", "Not passed at the check"),
    "home_visit_reported": ("入户调查报告", "Home-visit report"),
    "assessed": ("规则评定", "Rules' assessment"),
    "not_eligible": ("不符合困难条件", "Not eligible"),
    "committee_opened": ("提交委员会表决", "Put to the committee"),
    "chair_decision_opened": ("提交主席决定", "Put to the chair"),
    "vote_approve": ("投票同意", "Voted for"),
    "vote_reject": ("投票不同意", "Voted against"),
    "committee_decided": ("表决结果", "Vote result"),
    "committee_rejected": ("委员会未通过", "Rejected by the committee"),
    "public_notice_started": ("开始公示", "Public notice started"),
    "objection_received": ("收到异议", "Objection received"),
    "public_notice_passed": ("公示期满无异议", "Public notice passed"),
    "activated": ("档案生效", "File in force"),
    "review_reminder": ("年度复核提醒", "Review reminder"),
    "review_submitted": ("提交年度复核", "Yearly review submitted"),
    "reassessed": ("复核评定", "Reassessed"),
    "renewed": ("续期", "Renewed"),
    "continued": ("新的年度", "Next year begins"),
    "lapsed": ("到期未复核", "Lapsed"),
    "reminder": ("催办提醒", "Reminder sent"),
    "closed": ("注销", "Closed"),
    "refused": ("操作被拒绝", "Action refused"),
}
OUTCOME = {
    "eligible": ("符合", "Eligible"),
    "ineligible": ("不符合", "Not eligible"),
    "refer": ("需人工判断", "Referred to a person"),
    "invalid": ("数据不完整", "Data incomplete"),
    "approve": ("同意", "Approved"),
    "reject": ("不同意", "Rejected"),
}
CAMPAIGN_STATE = {
    "planning": ("计划中", "Planning"),
    "refused": ("被拒绝", "Refused"),
    "running": ("发放中", "Paying"),
    "completed": ("已完成", "Completed"),
}
