"""Applications run to known ends on the time-skipping server, for the audit tests."""

from __future__ import annotations

from ..workflows.helpers import approve_stage, file, until


async def run_some(client, engine, world, tq) -> dict[str, str]:
    """A closed birthday gift, a rejected wedding, a refused bereavement, a wedding paid and audited."""
    ids = {}
    h = await file(client, engine, world, tq, "birthday", member="ivan", requested_fen=35_000)
    await approve_stage(h, world, "receipt", "clerk")
    await approve_stage(h, world, "audit_review", "auditor")
    await until(h, lambda s: s.status == "closed")
    ids["birthday"] = h.id
    h = await file(client, engine, world, tq, "wedding", member="grace", requested_fen=50_000, evidence=["marriage_certificate"])
    await approve_stage(h, world, "officer_check", "clerk2")
    await approve_stage(h, world, "chair_approval", "chair", "reject", comment="已领取过")
    await until(h, lambda s: s.status == "rejected")
    ids["wedding_rejected"] = h.id
    h = await file(client, engine, world, tq, "bereavement", requested_fen=100_000,
                   evidence=["death_certificate", "relationship_proof"], relative_id=world.relatives["alice_brother"])
    await until(h, lambda s: s.status == "rejected")
    ids["bereavement_refused"] = h.id
    h = await file(client, engine, world, tq, "wedding", member="ivan", requested_fen=60_000, evidence=["marriage_certificate"])
    await approve_stage(h, world, "officer_check", "clerk2")
    await approve_stage(h, world, "chair_approval", "chair")
    await approve_stage(h, world, "receipt", "clerk")
    await approve_stage(h, world, "audit_review", "auditor")
    await until(h, lambda s: s.status == "closed")
    ids["wedding_paid"] = h.id
    return ids
