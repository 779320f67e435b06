"""The business itself: sign-up, its settings and persona, its billing, its API keys."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from engine.db import api_keys as api_keys_db
from engine.db import clientes as clientes_db
from engine.errors import Forbidden
from engine.services import api_keys, clientes
from serve_app.deps import Ctx, Session, Tenant
from serve_app.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    BillingOut,
    CheckoutRequest,
    ClienteOut,
    ErrorBody,
    LinkOut,
    MeUpdate,
    PortalRequest,
    RowId,
    SignupOut,
    SignupRequest,
)

router = APIRouter(tags=["tenant: account"])
UPSTREAM: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "no Stripe customer yet (portal)"},
    502: {"model": ErrorBody, "description": "Stripe could not be reached"},
    503: {"model": ErrorBody, "description": "billing is not configured"},
}


@router.post(
    "/signup",
    response_model=SignupOut,
    status_code=status.HTTP_201_CREATED,
    responses={403: {"model": ErrorBody, "description": "sign-up is closed (SIGNUP_ENABLED)"}},
)
async def signup(body: SignupRequest, ctx: Ctx, session: Session) -> SignupOut:
    """A new business: a cliente (PENDENTE until it pays, unless there is a trial) and its
    first API key, shown once. Open only with SIGNUP_ENABLED."""
    if not ctx.settings.signup_enabled:
        raise Forbidden("sign-up is closed here: ask the operator for an account")
    cliente = await clientes.create_cliente(
        session, {"nome": body.nome}, status=None, trial_days=ctx.settings.trial_days
    )
    created = await api_keys.create_key(session, cliente.id, name="signup", created_by="cliente")
    await session.commit()
    return SignupOut(
        cliente=ClienteOut.model_validate(cliente),
        api_key=ApiKeyCreated.model_validate({**_key_fields(created.row), "key": created.key}),
    )


@router.get("/me", response_model=ClienteOut)
async def get_me(tenant: Tenant, session: Session) -> ClienteOut:
    """The business's settings, persona and status."""
    return ClienteOut.model_validate(await clientes_db.get_cliente(session, tenant.cliente_id))


@router.patch("/me", response_model=ClienteOut)
async def update_me(body: MeUpdate, tenant: Tenant, session: Session) -> ClienteOut:
    """Change its name, persona and behaviour (debounce, business hours, messages, groups…);
    null sets a field back to the default."""
    cliente, _ = await clientes.update_cliente(
        session, tenant.cliente_id, body.model_dump(exclude_unset=True)
    )
    await session.commit()
    return ClienteOut.model_validate(cliente)


@router.get("/billing", response_model=BillingOut)
async def billing_status(tenant: Tenant, ctx: Ctx) -> BillingOut:
    """Its status, whether it is served, its subscription and grace period."""
    found = await ctx.billing.status(tenant.cliente_id)
    return BillingOut.model_validate(found, from_attributes=True)


@router.post("/billing/checkout", response_model=LinkOut, responses=UPSTREAM)
async def billing_checkout(
    tenant: Tenant, ctx: Ctx, body: CheckoutRequest | None = None
) -> LinkOut:
    """A Stripe Checkout page to subscribe (the price is the operator's STRIPE_PRICE_ID)."""
    body = body or CheckoutRequest()
    url = await ctx.billing.checkout_url(
        tenant.cliente_id, success_url=body.success_url, cancel_url=body.cancel_url
    )
    return LinkOut(url=url)


@router.post("/billing/portal", response_model=LinkOut, responses=UPSTREAM)
async def billing_portal(tenant: Tenant, ctx: Ctx, body: PortalRequest | None = None) -> LinkOut:
    """A Stripe Customer Portal page: card, invoices, cancellation."""
    body = body or PortalRequest()
    return LinkOut(url=await ctx.billing.portal_url(tenant.cliente_id, return_url=body.return_url))


@router.get("/api-keys", response_model=list[ApiKeyOut])
async def list_keys(tenant: Tenant, session: Session) -> list[ApiKeyOut]:
    """Its keys (prefixes, never the keys), revoked ones included."""
    rows = await api_keys_db.list_keys(session, tenant.cliente_id)
    return [ApiKeyOut.model_validate(r) for r in rows]


@router.post("/api-keys", response_model=ApiKeyCreated, status_code=status.HTTP_201_CREATED)
async def create_key(body: ApiKeyCreate, tenant: Tenant, session: Session) -> ApiKeyCreated:
    """Another key for the business; the key is in this answer only."""
    created = await api_keys.create_key(
        session, tenant.cliente_id, name=body.name, created_by="cliente"
    )
    await session.commit()
    return ApiKeyCreated.model_validate({**_key_fields(created.row), "key": created.key})


@router.delete("/api-keys/{key_id}", response_model=ApiKeyOut)
async def revoke_key(key_id: RowId, tenant: Tenant, session: Session) -> ApiKeyOut:
    """Revoke a key: from now on it is refused (401). Revoking the one in use is allowed."""
    row = await api_keys_db.revoke_key(session, tenant.cliente_id, key_id)
    await session.commit()
    return ApiKeyOut.model_validate(row)


def _key_fields(row: object) -> dict[str, object]:
    return ApiKeyOut.model_validate(row).model_dump()
