"""LGPD requests a business makes about one of its customers: export, erase."""

from __future__ import annotations

from fastapi import APIRouter

from engine.services.privacy import api_key_actor
from serve_app.deps import Ctx, Tenant
from serve_app.schemas import Contact, ContactErased, ContactExportOut

router = APIRouter(prefix="/contacts", tags=["tenant: contacts"])


@router.get("/{contact}/export", response_model=ContactExportOut)
async def export_contact(contact: Contact, tenant: Tenant, ctx: Ctx) -> ContactExportOut:
    """Everything held about one customer: conversations, messages, turns, memory, lid pairs."""
    data = await ctx.privacy.export(
        tenant.cliente_id, contact, actor=api_key_actor(tenant.api_key_id)
    )
    return ContactExportOut.model_validate(data)


@router.delete("/{contact}", response_model=ContactErased)
async def erase_contact(contact: Contact, tenant: Tenant, ctx: Ctx) -> ContactErased:
    """Erase one customer: every row about them, and the bot's memory of them; audited."""
    counts = await ctx.privacy.erase(
        tenant.cliente_id, contact, actor=api_key_actor(tenant.api_key_id)
    )
    return ContactErased.model_validate(counts)
