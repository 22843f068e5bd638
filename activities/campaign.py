"""Activities of warmth campaigns and scheduled gifts, and the campaign's recipients list (签领表).

Payments themselves go through the application activities ``reserve_funds`` and ``disburse``
(activities.welfare → service.ledger): same code, same idempotency keys, same checks.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass

import structlog
from sqlalchemy import Engine, select
from sqlmodel import Session
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError

from rules.loader import PolicyRegistry, default_registry
from service import filing, gifts
from service.audit.reports import FORMS, Money, Table, yuan
from service.models import ClaimSlot, Fund, HardshipFile, LedgerEntry, LedgerKind, Member, Organisation
import workflows.campaign_types as c

log = structlog.get_logger("activities.campaign")
START_CONCURRENCY = 50


def _money_text(fen: int) -> str:
    return f"{yuan(fen)} 元"


def plan(engine: Engine, registry: PolicyRegistry, inp: c.CampaignInput) -> c.CampaignPlan:
    """The active files on ``as_of`` (one per member, newest), their amounts, and the fund check."""
    as_of = dt.date.fromisoformat(inp.as_of)
    loaded = registry.for_date(as_of)
    if loaded is None:
        return _refused("no_policy", f"{as_of} 没有生效的福利政策", f"No policy is in force on {as_of}")
    policy = loaded.policy
    hardship = policy.hardship
    fund_code = inp.fund_code or hardship.warmth_fund
    if fund_code not in {f.code for f in policy.funds}:
        return _refused("no_fund", f"政策中没有经费“{fund_code}”", f"The policy has no fund {fund_code!r}", fund_code=fund_code)
    with Session(engine) as session:
        fund = session.execute(select(Fund).where(Fund.org_id == inp.org_id, Fund.year == inp.year, Fund.code == fund_code)
                               ).scalars().first()
        files = session.execute(
            select(HardshipFile.id, HardshipFile.member_id, HardshipFile.tier)
            .join(Member, Member.id == HardshipFile.member_id)
            .where(Member.org_id == inp.org_id, HardshipFile.status == "active", HardshipFile.active_from <= as_of,
                   HardshipFile.active_until >= as_of)
            .order_by(HardshipFile.member_id, HardshipFile.id)
        ).all()
        slots = session.execute(select(ClaimSlot.claim_key).where(ClaimSlot.claim_key.like(c.claim_prefix(inp.campaign_id) + "%"))
                                ).scalars().all()
    if fund is None:
        return _refused("no_fund", f"{inp.year} 年度尚未设立该项经费（{fund_code}）",
                        f"No {fund_code} fund for {inp.year} yet", fund_code=fund_code)
    newest: dict[int, str] = {}
    for _, member_id, tier in files:  # ordered by id: the newest file of a member wins
        newest[member_id] = tier
    households = [c.Household(member_id, tier, hardship.tiers[tier].warmth_fen)
                  for member_id, tier in sorted(newest.items()) if hardship.tiers[tier].warmth_fen > 0]
    already = {int(key.rsplit(":m", 1)[1]) for key in slots}  # reserved or paid by an earlier run of this campaign
    total = sum(h.amount_fen for h in households)
    to_pay = sum(h.amount_fen for h in households if h.member_id not in already)
    available = fund.budget_fen - fund.reserved_fen - fund.spent_fen
    result = c.CampaignPlan(households, total, to_pay, available, fund_code, inp.year, hardship.warmth_form.value,
                            policy.version)
    if to_pay > available:
        result.refusal = {
            "code": "insufficient_funds",
            "zh": f"经费余额不足：本次送温暖共 {len(households)} 户，需 {_money_text(to_pay)}，"
                  f"{fund.name_zh}可用 {_money_text(available)}；未发放任何款项",
            "en": f"Not enough in the fund: {len(households)} households need {yuan(to_pay)} yuan, "
                  f"{fund.name_en} has {yuan(available)} yuan available; nothing was paid",
        }
    return result


def _refused(code: str, zh: str, en: str, fund_code: str = "") -> c.CampaignPlan:
    return c.CampaignPlan([], 0, 0, 0, fund_code, 0, "", "", {"code": code, "zh": zh, "en": en})


class CampaignActivities:
    def __init__(self, engine: Engine, client: Client, task_queue: str, registry: PolicyRegistry | None = None):
        self.engine = engine
        self.client = client
        self.task_queue = task_queue
        self.registry = registry or default_registry()

    def all(self) -> list:
        return [self.plan_campaign, self.create_gifts]

    @activity.defn(name="plan_campaign")
    def plan_campaign(self, inp: c.CampaignInput) -> c.CampaignPlan:
        result = plan(self.engine, self.registry, inp)
        log.info("campaign_planned", campaign=inp.campaign_id, households=len(result.households), total_fen=result.total_fen,
                 refused=result.refusal["code"] if result.refusal else None)
        return result

    @activity.defn(name="create_gifts")
    async def create_gifts(self, r: c.GiftsRange) -> c.GiftsResult:
        """Record the gifts due in the range (once each), then start their workflows."""
        start, end = dt.date.fromisoformat(r.start), dt.date.fromisoformat(r.end)
        recorded = await asyncio.to_thread(gifts.record_gifts, self.engine, start, end, r.org_id, self.registry)
        to_start = recorded.created + recorded.unstarted
        gate = asyncio.Semaphore(START_CONCURRENCY)

        async def start_one(inp) -> int:
            async with gate:
                try:
                    await filing.start(self.client, inp, self.task_queue)
                except WorkflowAlreadyStartedError:
                    return 0  # started and finished long ago
                activity.heartbeat()
                return 1

        started = sum(await asyncio.gather(*(start_one(inp) for inp in to_start)))
        log.info("gifts_created", start=r.start, end=r.end, created=len(recorded.created), existing=recorded.existing,
                 started=started)
        return c.GiftsResult(r.start, r.end, len(recorded.created), recorded.existing, started,
                             [inp.application_id for inp in recorded.created])


# --- the recipients list (签领表) -----------------------------------------------------------------

@dataclass
class Recipient:
    member_no: str
    name: str
    tier: str
    tier_zh: str
    amount_fen: int
    form: str | None
    paid_at: str
    reference: str

    def as_dict(self) -> dict:
        forms = FORMS.get(self.form or "", (self.form or "", self.form or ""))
        return {"member_no": self.member_no, "name": self.name, "tier": self.tier, "tier_zh": self.tier_zh,
                "amount_fen": self.amount_fen, "amount_yuan": yuan(self.amount_fen), "form": self.form,
                "form_zh": forms[0], "paid_at": self.paid_at, "reference": self.reference, "signature": ""}


def recipients(engine: Engine, campaign: str, registry: PolicyRegistry | None = None) -> list[Recipient]:
    """Every household the campaign paid, from the ledger: the disbursement of each claim slot of the
    campaign; the tier is the one the amount was computed from (kept in the slot's period key)."""
    registry = registry or default_registry()
    query = (select(ClaimSlot.claim_key, ClaimSlot.period_key, LedgerEntry.amount_fen, LedgerEntry.form, LedgerEntry.created_at,
                    LedgerEntry.application_id)
             .join(LedgerEntry, LedgerEntry.application_id == ClaimSlot.application_id)
             .where(ClaimSlot.claim_key.like(c.claim_prefix(campaign) + "%"), LedgerEntry.kind == LedgerKind.disburse))
    with Session(engine) as session:
        paid = session.execute(query).all()
        member_ids = [int(key.rsplit(":m", 1)[1]) for key, *_ in paid]
        members: dict[int, tuple[str, str]] = {}
        for chunk in range(0, len(member_ids), 500):
            ids = member_ids[chunk:chunk + 500]
            members.update({m_id: (no, name) for m_id, no, name in
                            session.execute(select(Member.id, Member.member_no, Member.name).where(Member.id.in_(ids)))})
    rows = []
    for (_, period, amount, form, at, ref), member_id in zip(paid, member_ids, strict=True):
        tier = period.rsplit(":t", 1)[1] if ":t" in period else ""
        loaded = registry.for_date(at.date()) if at else None
        info = loaded.policy.hardship.tiers.get(tier) if loaded else None
        no, name = members.get(member_id, ("", ""))
        rows.append(Recipient(no, name, tier, info.name_zh if info else tier, int(amount), form,
                              at.isoformat(timespec="seconds") if at else "", ref))
    return sorted(rows, key=lambda r: (r.member_no, r.reference))


def recipient_table(engine: Engine, campaign: str, org_id: int, title: str | None = None) -> Table:
    rows = recipients(engine, campaign)
    with Session(engine) as session:
        org = session.get(Organisation, org_id)
    total = sum(r.amount_fen for r in rows)
    caption = [f"{org.name_zh if org else ''}  {title or campaign}  送温暖签领表",
               f"{org.name_en if org else ''}  {campaign}: warmth campaign recipients"]
    return Table("签领表 Recipients",
                 ["会员编号 Member no.", "姓名 Name", "困难类别 Tier", "金额(元) Amount (yuan)", "形式 Form", "编号 Reference",
                  "签名 Signature"],
                 [[r.member_no, r.name, r.tier_zh, Money(r.amount_fen), FORMS.get(r.form or "", (r.form or "",))[0], r.reference, ""]
                  for r in rows],
                 ["合计 Total", f"{len(rows)} 户 households", "", Money(total), "", "", ""], caption=caption)
