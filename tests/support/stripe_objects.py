"""Stripe API objects (customer, price, subscription, checkout session, invoice, portal session)
shaped as the installed `stripe` library's API version returns them, plus the form decoder.

Shapes follow API versions since 2025-03-31 ("basil"), which `stripe` 16 pins: a subscription's
billing period is on its items (`items.data[i].current_period_start/end`), not on the
subscription; an invoice names its subscription in `parent.subscription_details.subscription`,
not in `invoice.subscription`, and has no `paid` boolean (use `status == "paid"`).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from tests.support.stripe_events import new_id

MONTH_S = 30 * 24 * 3600
INTERVAL_S = {"day": 24 * 3600, "week": 7 * 24 * 3600, "month": MONTH_S, "year": 365 * 24 * 3600}
SUBSCRIPTION_STATUSES = (
    "incomplete",
    "incomplete_expired",
    "trialing",
    "active",
    "past_due",
    "canceled",
    "unpaid",
    "paused",
)

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def decode_form(body: str) -> dict[str, Any]:
    """Decode a Stripe form body or query string: `a[b][0][c]=1` → `{"a": {"b": [{"c": "1"}]}}`.

    Values stay strings, as Stripe's own parser gives them (`"true"`, `"1"`); `a[]=x` appends;
    a dict whose keys are all digits becomes a list in index order. Raises ValueError on a key
    that is not `name[sub]...` (Stripe answers 400 to those)."""
    root: dict[str, Any] = {}
    for raw_key, value in parse_qsl(body, keep_blank_values=True):
        match = _KEY.match(raw_key)
        if match is None:
            raise ValueError(f"Invalid parameter name: {raw_key}")
        parts = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        node: dict[str, Any] = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part == "":  # a[] = append
                part = str(sum(1 for k in node if k.isdigit()))
            if last:
                node[part] = value
            else:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    raise ValueError(f"Invalid parameter name: {raw_key}")
                node = child
    return _listify(root)


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {k: _listify(v) for k, v in node.items()}
    if converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


def customer(*, created: int, email: str | None, name: str | None, **fields: Any) -> dict[str, Any]:
    return {
        "id": new_id("cus", 14),
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": created,
        "currency": None,
        "default_source": None,
        "delinquent": False,
        "description": fields.get("description"),
        "discount": None,
        "email": email,
        "invoice_prefix": new_id("X", 6)[2:].upper(),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": dict(fields.get("metadata") or {}),
        "name": name,
        "phone": fields.get("phone"),
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }


def price(
    price_id: str, *, created: int, unit_amount: int, currency: str, interval: str | None
) -> dict[str, Any]:
    recurring = (
        None
        if interval is None
        else {
            "interval": interval,
            "interval_count": 1,
            "meter": None,
            "trial_period_days": None,
            "usage_type": "licensed",
        }
    )
    return {
        "id": price_id,
        "object": "price",
        "active": True,
        "billing_scheme": "per_unit",
        "created": created,
        "currency": currency,
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": None,
        "metadata": {},
        "nickname": None,
        "product": new_id("prod", 14),
        "recurring": recurring,
        "tax_behavior": "unspecified",
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "one_time" if interval is None else "recurring",
        "unit_amount": unit_amount,
        "unit_amount_decimal": str(unit_amount),
    }


def plan_of(the_price: dict[str, Any]) -> dict[str, Any]:
    recurring = the_price["recurring"] or {}
    return {
        "id": the_price["id"],
        "object": "plan",
        "active": True,
        "amount": the_price["unit_amount"],
        "amount_decimal": the_price["unit_amount_decimal"],
        "billing_scheme": "per_unit",
        "created": the_price["created"],
        "currency": the_price["currency"],
        "interval": recurring.get("interval"),
        "interval_count": 1,
        "livemode": False,
        "metadata": {},
        "meter": None,
        "nickname": None,
        "product": the_price["product"],
        "tiers_mode": None,
        "transform_usage": None,
        "trial_period_days": None,
        "usage_type": "licensed",
    }


def subscription(
    *,
    customer_id: str,
    the_price: dict[str, Any],
    status: str,
    created: int,
    metadata: dict[str, str],
    trial_end: int | None = None,
) -> dict[str, Any]:
    sub_id = new_id("sub")
    period_s = INTERVAL_S[(the_price["recurring"] or {}).get("interval") or "month"]
    period_end = trial_end if trial_end is not None else created + period_s
    item: dict[str, Any] = {
        "id": new_id("si", 14),
        "object": "subscription_item",
        "billing_thresholds": None,
        "created": created,
        "current_period_end": period_end,
        "current_period_start": created,
        "discounts": [],
        "metadata": {},
        "plan": plan_of(the_price),
        "price": dict(the_price),
        "quantity": 1,
        "subscription": sub_id,
        "tax_rates": [],
    }
    return {
        "id": sub_id,
        "object": "subscription",
        "application": None,
        "application_fee_percent": None,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
        "billing_cycle_anchor": period_end,
        "billing_cycle_anchor_config": None,
        "billing_mode": {"flexible": None, "type": "classic"},
        "billing_thresholds": None,
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": "charge_automatically",
        "created": created,
        "currency": the_price["currency"],
        "customer": customer_id,
        "days_until_due": None,
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [],
        "description": None,
        "discounts": [],
        "ended_at": None,
        "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
        "items": {
            "object": "list",
            "data": [item],
            "has_more": False,
            "total_count": 1,
            "url": f"/v1/subscription_items?subscription={sub_id}",
        },
        "latest_invoice": None,
        "livemode": False,
        "metadata": dict(metadata),
        "next_pending_invoice_item_invoice": None,
        "on_behalf_of": None,
        "pause_collection": None,
        "payment_settings": {
            "payment_method_options": None,
            "payment_method_types": None,
            "save_default_payment_method": "off",
        },
        "pending_invoice_item_interval": None,
        "pending_setup_intent": None,
        "pending_update": None,
        "schedule": None,
        "start_date": created,
        "status": status,
        "test_clock": None,
        "transfer_data": None,
        "trial_end": trial_end,
        "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
        "trial_start": created if trial_end is not None else None,
    }


def invoice(
    sub: dict[str, Any], *, created: int, paid: bool, billing_reason: str, attempt_count: int
) -> dict[str, Any]:
    item = sub["items"]["data"][0]
    amount = 0 if sub["status"] == "trialing" else item["price"]["unit_amount"]
    invoice_id = new_id("in")
    return {
        "id": invoice_id,
        "object": "invoice",
        "account_country": "BR",
        "amount_due": amount,
        "amount_paid": amount if paid else 0,
        "amount_remaining": 0 if paid else amount,
        "attempt_count": attempt_count,
        "attempted": True,
        "auto_advance": not paid,
        "billing_reason": billing_reason,
        "collection_method": "charge_automatically",
        "created": created,
        "currency": sub["currency"],
        "customer": sub["customer"],
        "hosted_invoice_url": f"https://invoice.stripe.com/i/{invoice_id}",
        "lines": {
            "object": "list",
            "data": [
                {
                    "id": new_id("il"),
                    "object": "line_item",
                    "amount": amount,
                    "currency": sub["currency"],
                    "invoice": invoice_id,
                    "livemode": False,
                    "metadata": {},
                    "parent": {
                        "type": "subscription_item_details",
                        "invoice_item_details": None,
                        "subscription_item_details": {
                            "invoice_item": None,
                            "proration": False,
                            "proration_details": {"credited_items": None},
                            "subscription": sub["id"],
                            "subscription_item": item["id"],
                        },
                    },
                    "period": {
                        "start": item["current_period_start"],
                        "end": item["current_period_end"],
                    },
                    "pricing": {
                        "type": "price_details",
                        "price_details": {
                            "price": item["price"]["id"],
                            "product": item["price"]["product"],
                        },
                        "unit_amount_decimal": item["price"]["unit_amount_decimal"],
                    },
                    "quantity": 1,
                }
            ],
            "has_more": False,
            "total_count": 1,
            "url": f"/v1/invoices/{invoice_id}/lines",
        },
        "livemode": False,
        "metadata": {},
        "next_payment_attempt": None if paid else created + 3 * 24 * 3600,
        "number": None,
        "parent": {
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": {
                "metadata": dict(sub["metadata"]),
                "subscription": sub["id"],
            },
        },
        "period_end": item["current_period_end"],
        "period_start": item["current_period_start"],
        "status": "paid" if paid else "open",
        "status_transitions": {
            "finalized_at": created,
            "marked_uncollectible_at": None,
            "paid_at": created if paid else None,
            "voided_at": None,
        },
        "subtotal": amount,
        "total": amount,
    }


def checkout_session(
    params: dict[str, Any], *, created: int, amount: int, currency: str
) -> dict[str, Any]:
    session_id = new_id("cs_test", 58)
    return {
        "id": session_id,
        "object": "checkout.session",
        "allow_promotion_codes": params.get("allow_promotion_codes") == "true" or None,
        "amount_subtotal": amount,
        "amount_total": amount,
        "billing_address_collection": params.get("billing_address_collection"),
        "cancel_url": params.get("cancel_url"),
        "client_reference_id": params.get("client_reference_id"),
        "created": created,
        "currency": currency,
        "customer": params.get("customer"),
        "customer_creation": None if params.get("customer") else "always",
        "customer_details": None,
        "customer_email": params.get("customer_email"),
        "expires_at": created + 24 * 3600,
        "invoice": None,
        "livemode": False,
        "locale": params.get("locale"),
        "metadata": dict(params.get("metadata") or {}),
        "mode": params["mode"],
        "payment_intent": None,
        "payment_method_types": ["card"],
        "payment_status": "unpaid",
        "status": "open",
        "submit_type": None,
        "subscription": None,
        "success_url": params.get("success_url"),
        "ui_mode": params.get("ui_mode", "hosted"),
        "url": f"https://checkout.stripe.com/c/pay/{session_id}",
    }


def portal_session(
    *, customer_id: str, return_url: str | None, created: int, locale: str | None
) -> dict[str, Any]:
    return {
        "id": new_id("bps"),
        "object": "billing_portal.session",
        "configuration": "bpc_fake_default_configuration",
        "created": created,
        "customer": customer_id,
        "flow": None,
        "livemode": False,
        "locale": locale,
        "on_behalf_of": None,
        "return_url": return_url,
        "url": "https://billing.stripe.com/p/session/test_" + new_id("x", 40)[2:],
    }
