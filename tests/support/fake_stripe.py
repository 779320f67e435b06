"""A real HTTP server speaking the subset of Stripe's REST API (v1) a SaaS needs, for the real
`stripe` library to talk to.

Point the library at it with `fake.client()` or, by hand,
`stripe.StripeClient(fake.api_key, base_addresses={"api": fake.url})` (sync `client.v1.…` and
`…_async` methods both work; http:// is fine). Requests are form-encoded (`a[b][0][c]`), the key
is checked (`Authorization: Bearer sk_test_…` or HTTP Basic as curl's `-u sk_test_…:` sends),
and errors have Stripe's shape `{"error": {"type", "message", "code"?, "param"?}}`:
401 for a bad key, 404 for an unknown id, 400 for a missing/unknown parameter or a reference to
a missing object. A POST with an `Idempotency-Key` the server has seen is answered with the stored
response (`Idempotent-Replayed: true`), as Stripe does when the library retries.

Endpoints: POST/GET/DELETE `/v1/customers[/{id}]`, POST/GET `/v1/checkout/sessions[/{id}]`,
POST `/v1/billing_portal/sessions`, GET `/v1/subscriptions[/{id}]`, GET `/v1/invoices/{id}`.

The test plays Stripe's side: `complete_checkout`, `set_subscription`, `pay_invoice`,
`fail_invoice` change the stored objects and return the events Stripe would send; `sign`/`deliver`
sign them with `webhook_secret` (see `stripe_events`). Every request is kept in `requests`.
"""

from __future__ import annotations

import base64
import copy
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import stripe
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.support import stripe_objects as objects
from tests.support.http_server import ServerThread
from tests.support.stripe_events import SignedEvent, build_event, deliver, new_id, sign_event

DEFAULT_PRICE = "price_conversa_mensal"

_CUSTOMER_PARAMS = {"email", "name", "description", "phone", "metadata", "expand"}
_CHECKOUT_PARAMS = {
    *("mode", "line_items", "customer", "customer_email", "client_reference_id", "metadata"),
    *("success_url", "cancel_url", "subscription_data", "allow_promotion_codes", "locale"),
    *("expand", "ui_mode", "billing_address_collection", "payment_method_types"),
}
_SUBSCRIPTION_DATA_PARAMS = {"metadata", "trial_period_days", "trial_end", "description"}
_PORTAL_PARAMS = {"customer", "return_url", "configuration", "locale", "expand"}
_LIST_PARAMS = {"customer", "status", "price", "limit", "expand"}
_SET_FIELDS = {"status", "cancel_at_period_end", "cancel_at", "pause_collection", "metadata"}


class StripeError(Exception):
    """Raised inside a handler to answer with Stripe's error shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        error_type: str = "invalid_request_error",
        **extra: Any,
    ):
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"message": message, "type": error_type}
        if code is not None:
            self.body["code"] = code
            self.body["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
        self.body.update(extra)


def _missing(kind: str, object_id: str, *, param: str = "id", status: int = 404) -> StripeError:
    return StripeError(
        status, f"No such {kind}: '{object_id}'", code="resource_missing", param=param
    )


@dataclass
class StripeRequest:
    method: str
    path: str
    params: dict[str, Any]  # decoded form body (POST) or query string (GET), values as strings
    api_key: str | None
    idempotency_key: str | None
    stripe_version: str | None
    status: int
    at: float
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names


@dataclass
class FakeStripe:
    api_key: str = "sk_test_conversa_fake_0123456789"
    webhook_secret: str = "whsec_conversa_fake_0123456789abcdef"
    clock: Callable[[], float] = time.time  # object and event timestamps (not signatures)
    fail_status: int | None = None  # answer every API request with this status (Stripe down)
    requests: list[StripeRequest] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)  # every event made, in order
    prices: dict[str, dict[str, Any]] = field(default_factory=dict)
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    checkout_sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    invoices: dict[str, dict[str, Any]] = field(default_factory=dict)
    portal_sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    _idempotent: dict[str, tuple[str, dict[str, Any], int, dict[str, Any]]] = field(
        default_factory=dict
    )
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _server: ServerThread | None = None

    def __post_init__(self) -> None:
        self.add_price(DEFAULT_PRICE)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeStripe:
        self._server = ServerThread(self.app()).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    @property
    def url(self) -> str:
        """The API base address (`base_addresses["api"]`, or `stripe.api_base`)."""
        assert self._server is not None
        return self._server.url

    def client(self, **options: Any) -> stripe.StripeClient:
        """A `StripeClient` aimed at this server (sync methods use requests, `*_async` httpx)."""
        return stripe.StripeClient(self.api_key, base_addresses={"api": self.url}, **options)

    # -- the HTTP side ------------------------------------------------------------------------

    def app(self) -> FastAPI:
        app = FastAPI()
        routes: list[tuple[str, re.Pattern[str], Callable[..., dict[str, Any]]]] = [
            ("POST", re.compile(r"/v1/customers"), self._create_customer),
            ("GET", re.compile(r"/v1/customers/([^/]+)"), self._retrieve_customer),
            ("DELETE", re.compile(r"/v1/customers/([^/]+)"), self._delete_customer),
            ("POST", re.compile(r"/v1/checkout/sessions"), self._create_checkout_session),
            ("GET", re.compile(r"/v1/checkout/sessions/([^/]+)"), self._retrieve_session),
            ("POST", re.compile(r"/v1/billing_portal/sessions"), self._create_portal_session),
            ("GET", re.compile(r"/v1/subscriptions"), self._list_subscriptions),
            ("GET", re.compile(r"/v1/subscriptions/([^/]+)"), self._retrieve_subscription),
            ("GET", re.compile(r"/v1/invoices/([^/]+)"), self._retrieve_invoice),
        ]

        @app.api_route("/{path:path}", methods=["GET", "POST", "DELETE"])
        async def dispatch(path: str, request: Request) -> Response:
            method, full_path = request.method, "/" + path
            raw = (await request.body()).decode() if method == "POST" else request.url.query
            api_key = _api_key_of(request.headers.get("authorization"))
            idempotency_key = request.headers.get("idempotency-key")
            status, body, replayed = 200, {}, False
            try:
                params = objects.decode_form(raw)
            except ValueError as e:
                params, error = {}, StripeError(400, str(e))
                status, body = error.status, {"error": error.body}
            else:
                status, body, replayed = self._answer(
                    method, full_path, params, api_key, idempotency_key, routes
                )
            with self._lock:
                self.requests.append(
                    StripeRequest(
                        method,
                        full_path,
                        params,
                        api_key,
                        idempotency_key,
                        request.headers.get("stripe-version"),
                        status,
                        time.monotonic(),
                        dict(request.headers),
                    )
                )
            headers = {
                "Request-Id": new_id("req", 14),
                "Stripe-Version": request.headers.get("stripe-version") or stripe.api_version,
            }
            if replayed:
                headers["Idempotent-Replayed"] = "true"
            if status == 401:
                headers["WWW-Authenticate"] = 'Bearer realm="Stripe"'
            return JSONResponse(body, status_code=status, headers=headers)

        return app

    def _answer(
        self,
        method: str,
        path: str,
        params: dict[str, Any],
        api_key: str | None,
        idempotency_key: str | None,
        routes: list[tuple[str, re.Pattern[str], Callable[..., dict[str, Any]]]],
    ) -> tuple[int, dict[str, Any], bool]:
        if api_key is None:
            return 401, {"error": StripeError(401, _NO_KEY).body}, False
        if api_key != self.api_key:
            masked = api_key[:8] + "*" * 4 + api_key[-4:]
            message = f"Invalid API Key provided: {masked}"
            return 401, {"error": StripeError(401, message).body}, False
        if self.fail_status is not None:
            error = StripeError(self.fail_status, "Failing on purpose", error_type="api_error")
            return self.fail_status, {"error": error.body}, False
        if method == "POST" and idempotency_key:
            with self._lock:
                seen = self._idempotent.get(idempotency_key)
            if seen is not None:
                if (seen[0], seen[1]) != (path, params):
                    message = (
                        "Keys for idempotent requests can only be used with the same parameters "
                        f"they were first used with. Try using a key other than "
                        f"'{idempotency_key}' if you meant to execute a different request."
                    )
                    error = StripeError(400, message, error_type="idempotency_error")
                    return 400, {"error": error.body}, False
                return seen[2], copy.deepcopy(seen[3]), True
        for route_method, pattern, handler in routes:
            match = pattern.fullmatch(path)
            if route_method == method and match:
                try:
                    with self._lock:
                        status, body = 200, handler(params, *match.groups())
                except StripeError as e:
                    status, body = e.status, {"error": e.body}
                break
        else:
            message = (
                f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs "
                "or we can help at https://support.stripe.com/."
            )
            return 404, {"error": StripeError(404, message).body}, False
        if method == "POST" and idempotency_key and status < 500:
            with self._lock:
                self._idempotent[idempotency_key] = (path, params, status, copy.deepcopy(body))
        return status, body, False

    # -- endpoints (called under the lock) ----------------------------------------------------

    def _create_customer(self, params: dict[str, Any]) -> dict[str, Any]:
        _refuse_unknown(params, _CUSTOMER_PARAMS)
        metadata = _metadata(params.get("metadata"))
        made = self.create_customer(
            email=params.get("email"),
            name=params.get("name"),
            description=params.get("description"),
            phone=params.get("phone"),
            metadata=metadata,
        )
        return self._expand(made, params)

    def _retrieve_customer(self, params: dict[str, Any], customer_id: str) -> dict[str, Any]:
        _refuse_unknown(params, {"expand"})
        if customer_id not in self.customers:
            raise _missing("customer", customer_id)
        return self._expand(copy.deepcopy(self.customers[customer_id]), params)

    def _delete_customer(self, params: dict[str, Any], customer_id: str) -> dict[str, Any]:
        found = self.customers.get(customer_id)
        if found is None or found.get("deleted"):
            raise _missing("customer", customer_id)
        self.customers[customer_id] = {"id": customer_id, "object": "customer", "deleted": True}
        return copy.deepcopy(self.customers[customer_id])

    def _create_checkout_session(self, params: dict[str, Any]) -> dict[str, Any]:
        _refuse_unknown(params, _CHECKOUT_PARAMS)
        mode = params.get("mode")
        if mode is None:
            raise StripeError(
                400, "Missing required param: mode.", code="parameter_missing", param="mode"
            )
        if mode not in ("payment", "subscription", "setup"):
            raise StripeError(
                400,
                "Invalid mode: must be one of payment, setup, or subscription",
                code="parameter_invalid_string",
                param="mode",
            )
        if params.get("customer") and params.get("customer_email"):
            raise StripeError(
                400, "You may only specify one of these parameters: customer, customer_email."
            )
        customer_id = params.get("customer")
        if customer_id and (
            customer_id not in self.customers or self.customers[customer_id].get("deleted")
        ):
            raise _missing("customer", customer_id, param="customer", status=400)
        _metadata(params.get("metadata"))
        subscription_data = params.get("subscription_data") or {}
        if not isinstance(subscription_data, dict):
            raise StripeError(400, "Invalid object", param="subscription_data")
        _refuse_unknown(subscription_data, _SUBSCRIPTION_DATA_PARAMS, prefix="subscription_data")
        _metadata(subscription_data.get("metadata"), param="subscription_data[metadata]")
        line_items = params.get("line_items")
        if mode != "setup" and not line_items:
            raise StripeError(
                400, f"`line_items` is required in `{mode}` mode.", param="line_items"
            )
        if line_items is not None and not isinstance(line_items, list):
            raise StripeError(400, "Invalid array", param="line_items")
        amount, currency = 0, "brl"
        for i, item in enumerate(line_items or []):
            price_id = item.get("price") if isinstance(item, dict) else None
            if not price_id:
                raise StripeError(
                    400,
                    "Missing required param: line_items[0][price].",
                    code="parameter_missing",
                    param=f"line_items[{i}][price]",
                )
            the_price = self.prices.get(price_id)
            if the_price is None:
                raise _missing("price", price_id, param=f"line_items[{i}][price]", status=400)
            if mode == "subscription" and the_price["recurring"] is None:
                raise StripeError(
                    400,
                    "You must provide at least one recurring price in "
                    "`subscription` mode when using prices.",
                    param="line_items",
                )
            quantity = item.get("quantity", "1")
            if not str(quantity).isdigit():
                raise StripeError(
                    400, "Invalid integer: " + str(quantity), param=f"line_items[{i}][quantity]"
                )
            amount += the_price["unit_amount"] * int(quantity)
            currency = the_price["currency"]
        session = objects.checkout_session(
            params, created=self._now(), amount=amount, currency=currency
        )
        session["_line_items"] = copy.deepcopy(line_items or [])  # kept for complete_checkout
        session["_subscription_data"] = copy.deepcopy(subscription_data)
        self.checkout_sessions[session["id"]] = session
        return self._expand(_public(session), params)

    def _retrieve_session(self, params: dict[str, Any], session_id: str) -> dict[str, Any]:
        _refuse_unknown(params, {"expand"})
        if session_id not in self.checkout_sessions:
            raise _missing("checkout.session", session_id)
        return self._expand(_public(self.checkout_sessions[session_id]), params)

    def _create_portal_session(self, params: dict[str, Any]) -> dict[str, Any]:
        _refuse_unknown(params, _PORTAL_PARAMS)
        customer_id = params.get("customer")
        if not customer_id:
            raise StripeError(
                400, "Missing required param: customer.", code="parameter_missing", param="customer"
            )
        if customer_id not in self.customers or self.customers[customer_id].get("deleted"):
            raise _missing("customer", customer_id, param="customer", status=400)
        session = objects.portal_session(
            customer_id=customer_id,
            return_url=params.get("return_url"),
            created=self._now(),
            locale=params.get("locale"),
        )
        self.portal_sessions[session["id"]] = session
        return copy.deepcopy(session)

    def _list_subscriptions(self, params: dict[str, Any]) -> dict[str, Any]:
        _refuse_unknown(params, _LIST_PARAMS)
        wanted = params.get("status")
        found = [
            s
            for s in self.subscriptions.values()
            if params.get("customer") in (None, s["customer"])
            and _status_listed(s["status"], wanted)
        ]
        found.sort(key=lambda s: s["created"], reverse=True)
        limit = int(params.get("limit") or 10)
        data = [self._expand(copy.deepcopy(s), params, prefix="data.") for s in found[:limit]]
        return {
            "object": "list",
            "data": data,
            "has_more": len(found) > limit,
            "url": "/v1/subscriptions",
        }

    def _retrieve_subscription(self, params: dict[str, Any], sub_id: str) -> dict[str, Any]:
        _refuse_unknown(params, {"expand"})
        if sub_id not in self.subscriptions:
            raise _missing("subscription", sub_id)
        return self._expand(copy.deepcopy(self.subscriptions[sub_id]), params)

    def _retrieve_invoice(self, params: dict[str, Any], invoice_id: str) -> dict[str, Any]:
        _refuse_unknown(params, {"expand"})
        if invoice_id not in self.invoices:
            raise _missing("invoice", invoice_id)
        return self._expand(copy.deepcopy(self.invoices[invoice_id]), params)

    def _expand(
        self, obj: dict[str, Any], params: dict[str, Any], *, prefix: str = ""
    ) -> dict[str, Any]:
        """Apply `expand[]`: an id field becomes the object it names (customer, subscription,
        latest_invoice, invoice); a field already embedded may be named (items.data.price)."""
        stores = {
            "customer": self.customers,
            "subscription": self.subscriptions,
            "latest_invoice": self.invoices,
            "invoice": self.invoices,
        }
        paths = params.get("expand") or []
        for i, path in enumerate(paths if isinstance(paths, list) else [paths]):
            path = path.removeprefix(prefix) if prefix else path
            head = path.split(".", 1)[0]
            value = obj.get(head)
            if head == "line_items" and "_line_items" in self.checkout_sessions.get(
                obj.get("id", ""), {}
            ):
                obj["line_items"] = {"object": "list", "data": self._line_items(obj["id"])}
            elif isinstance(value, str) and head in stores and value in stores[head]:
                obj[head] = copy.deepcopy(stores[head][value])
            elif head in obj and (value is None or isinstance(value, dict | list)):
                pass  # null stays null; an embedded object is already there
            else:
                raise StripeError(
                    400, f"This property cannot be expanded ({path}).", param=f"expand[{i}]"
                )
        return obj

    def _line_items(self, session_id: str) -> list[dict[str, Any]]:
        items = []
        for item in self.checkout_sessions[session_id]["_line_items"]:
            the_price = self.prices[item["price"]]
            quantity = int(item.get("quantity", "1"))
            items.append(
                {
                    "id": new_id("li"),
                    "object": "item",
                    "amount_total": the_price["unit_amount"] * quantity,
                    "currency": the_price["currency"],
                    "price": copy.deepcopy(the_price),
                    "quantity": quantity,
                }
            )
        return items

    # -- the test's side: Stripe's own state changes ------------------------------------------

    def _now(self) -> int:
        return int(self.clock())

    def add_price(
        self,
        price_id: str | None = None,
        *,
        unit_amount: int = 9900,
        currency: str = "brl",
        interval: str | None = "month",
    ) -> str:
        """Register a price (recurring monthly unless `interval=None`); returns its id."""
        price_id = price_id or new_id("price")
        made = objects.price(
            price_id,
            created=self._now(),
            unit_amount=unit_amount,
            currency=currency,
            interval=interval,
        )
        with self._lock:
            self.prices[price_id] = made
        return price_id

    def create_customer(
        self, *, email: str | None = None, name: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        """A customer made as if through the Dashboard (no event)."""
        made = objects.customer(created=self._now(), email=email, name=name, **fields)
        with self._lock:
            self.customers[made["id"]] = made
        return copy.deepcopy(made)

    def create_subscription(
        self,
        customer_id: str,
        *,
        price_id: str = DEFAULT_PRICE,
        status: str = "active",
        metadata: dict[str, str] | None = None,
        trial_end: int | None = None,
    ) -> dict[str, Any]:
        """A subscription made as if through the Dashboard (no event; see `event`)."""
        _check_status(status)
        with self._lock:
            if customer_id not in self.customers:
                raise KeyError(f"no customer {customer_id}")
            sub = objects.subscription(
                customer_id=customer_id,
                the_price=self.prices[price_id],
                status=status,
                created=self._now(),
                metadata=metadata or {},
                trial_end=trial_end,
            )
            self.subscriptions[sub["id"]] = sub
            return copy.deepcopy(sub)

    def complete_checkout(
        self, session_id: str, *, status: str = "active", trial_days: int | None = None
    ) -> list[dict[str, Any]]:
        """The customer paid on the Checkout page. Makes the customer (unless the session named
        one), the subscription (with `subscription_data[metadata]`) and its first paid invoice,
        and returns the events Stripe sends, in its usual order: `customer.created` (if made),
        `customer.subscription.created`, `invoice.paid`, `checkout.session.completed`."""
        _check_status(status)
        with self._lock:
            session = self.checkout_sessions[session_id]
            if session["status"] != "open":
                raise ValueError(f"checkout session {session_id} is {session['status']}")
            events = []
            customer_id = session["customer"]
            if customer_id is None:
                made = self.create_customer(
                    email=session["customer_email"] or "cliente@example.com", name="Cliente"
                )
                customer_id = made["id"]
                events.append(self._event("customer.created", made))
            session_data = session["_subscription_data"]
            now = self._now()
            trial_end = now + trial_days * 24 * 3600 if trial_days else None
            if session_data.get("trial_period_days"):
                trial_end = now + int(session_data["trial_period_days"]) * 24 * 3600
            if trial_end is not None:
                status = "trialing"
            the_customer = self.customers[customer_id]
            session.update(
                status="complete",
                customer=customer_id,
                payment_status="no_payment_required" if trial_end else "paid",
                customer_details={
                    "address": None,
                    "email": the_customer.get("email"),
                    "name": the_customer.get("name"),
                    "phone": None,
                    "tax_exempt": "none",
                    "tax_ids": [],
                },
            )
            if session["mode"] == "subscription":
                sub = objects.subscription(
                    customer_id=customer_id,
                    the_price=self.prices[session["_line_items"][0]["price"]],
                    status=status,
                    created=now,
                    metadata=dict(session_data.get("metadata") or {}),
                    trial_end=trial_end,
                )
                self.subscriptions[sub["id"]] = sub
                bill = self._new_invoice(sub["id"], paid=True, reason="subscription_create")
                session.update(subscription=sub["id"], invoice=bill["id"])
                events.append(self._event("customer.subscription.created", sub))
                events.append(self._event("invoice.paid", bill))
            events.append(self._event("checkout.session.completed", _public(session)))
            return events

    def set_subscription(
        self,
        sub_id: str,
        *,
        event_type: str | None = None,
        current_period_end: int | None = None,
        **changes: Any,
    ) -> dict[str, Any]:
        """Change a subscription as Stripe would (`status`, `cancel_at_period_end`, `cancel_at`,
        `pause_collection` (e.g. `{"behavior": "void", "resumes_at": None}`), `metadata`, and the
        items' `current_period_end`) and return the event Stripe sends: `customer.subscription.
        deleted` when it becomes `canceled`, else `customer.subscription.updated`, with
        `data.previous_attributes` holding the old values."""
        unknown = set(changes) - _SET_FIELDS
        if unknown:
            raise TypeError(f"set_subscription cannot change {sorted(unknown)}")
        if "status" in changes:
            _check_status(changes["status"])
        with self._lock:
            sub = self.subscriptions[sub_id]
            previous = {k: copy.deepcopy(sub[k]) for k, v in changes.items() if sub[k] != v}
            sub.update(copy.deepcopy(changes))
            if current_period_end is not None:
                previous["items"] = copy.deepcopy(sub["items"])
                for item in sub["items"]["data"]:
                    item["current_period_end"] = current_period_end
            if changes.get("status") == "canceled" and sub["canceled_at"] is None:
                sub.update(canceled_at=self._now(), ended_at=self._now())
            if event_type is None:
                deleted = changes.get("status") == "canceled"
                event_type = f"customer.subscription.{'deleted' if deleted else 'updated'}"
            return self._event(event_type, sub, previous_attributes=previous)

    def pay_invoice(self, sub_id: str) -> list[dict[str, Any]]:
        """A payment succeeded: the subscription's open invoice (a retried payment) becomes
        paid, or a new paid renewal invoice is made; the subscription goes back to `active` if it
        was `past_due`/`unpaid`/`incomplete`. Returns `invoice.paid` and, if the status changed,
        `customer.subscription.updated`."""
        with self._lock:
            bill = self._open_invoice(sub_id)
            if bill is None:
                bill = self._new_invoice(sub_id, paid=True, reason="subscription_cycle")
            else:
                paid_at = self._now()
                bill.update(
                    status="paid",
                    amount_paid=bill["amount_due"],
                    amount_remaining=0,
                    next_payment_attempt=None,
                    auto_advance=False,
                )
                bill["status_transitions"]["paid_at"] = paid_at
            events = [self._event("invoice.paid", bill)]
            if self.subscriptions[sub_id]["status"] in ("past_due", "unpaid", "incomplete"):
                events.append(self.set_subscription(sub_id, status="active"))
            return events

    def fail_invoice(self, sub_id: str, *, status: str = "past_due") -> list[dict[str, Any]]:
        """A payment attempt failed: on the subscription's open invoice (its `attempt_count`
        goes up, as Stripe's retries do) or a new renewal invoice; the subscription moves to
        `status` (`past_due`, or `unpaid`/`canceled` once Stripe gives up). Returns
        `invoice.payment_failed` and the subscription's `updated`/`deleted` event if it changed."""
        _check_status(status)
        with self._lock:
            bill = self._open_invoice(sub_id)
            if bill is None:
                bill = self._new_invoice(sub_id, paid=False, reason="subscription_cycle")
            else:
                bill["attempt_count"] += 1
            events = [self._event("invoice.payment_failed", bill)]
            if self.subscriptions[sub_id]["status"] != status:
                events.append(self.set_subscription(sub_id, status=status))
            return events

    def _open_invoice(self, sub_id: str) -> dict[str, Any] | None:
        latest = self.invoices.get(self.subscriptions[sub_id]["latest_invoice"] or "")
        return latest if latest is not None and latest["status"] == "open" else None

    def _new_invoice(self, sub_id: str, *, paid: bool, reason: str) -> dict[str, Any]:
        sub = self.subscriptions[sub_id]
        bill = objects.invoice(
            sub,
            created=self._now(),
            paid=paid,
            billing_reason=reason,
            attempt_count=1,
        )
        self.invoices[bill["id"]] = bill
        sub["latest_invoice"] = bill["id"]
        return bill

    def event(self, event_type: str, object_id: str) -> dict[str, Any]:
        """An event about the current snapshot of a stored object (subscription, invoice,
        customer, checkout session), e.g. to redeliver a state Stripe already had."""
        with self._lock:
            for store in (
                self.subscriptions,
                self.invoices,
                self.customers,
                self.checkout_sessions,
            ):
                if object_id in store:
                    return self._event(event_type, _public(store[object_id]))
        raise KeyError(object_id)

    def _event(
        self,
        event_type: str,
        obj: dict[str, Any],
        *,
        previous_attributes: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        made = build_event(
            event_type,
            copy.deepcopy(_public(obj)),
            created=self._now(),
            previous_attributes=previous_attributes,
        )
        self.events.append(made)
        return copy.deepcopy(made)

    def sign(
        self, event: dict[str, Any], *, secret: str | None = None, timestamp: int | None = None
    ) -> SignedEvent:
        """The event's bytes and `Stripe-Signature` with `webhook_secret` (or another secret)."""
        return sign_event(event, secret or self.webhook_secret, timestamp=timestamp)

    async def deliver(
        self,
        url: str,
        event: dict[str, Any] | SignedEvent,
        *,
        secret: str | None = None,
        timestamp: int | None = None,
        signature: str | None = None,
    ) -> httpx.Response:
        """POST a signed event to a webhook endpoint as Stripe does (`stripe_events.deliver`)."""
        return await deliver(
            url, event, secret or self.webhook_secret, timestamp=timestamp, signature=signature
        )

    # -- inspection ---------------------------------------------------------------------------

    def subscription(self, sub_id: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self.subscriptions[sub_id])

    def requests_to(self, method: str, path: str) -> list[StripeRequest]:
        """The requests with this method whose path starts with `path` (`/v1/checkout/sessions`)."""
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path.startswith(path)]


_NO_KEY = (
    "You did not provide an API key. You need to provide your API key in the Authorization "
    "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See "
    "https://stripe.com/docs/api#authentication for details, or we can help at "
    "https://support.stripe.com/."
)


def _api_key_of(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value).decode().split(":", 1)[0] or None
        except (ValueError, UnicodeDecodeError):
            return None
    return None


def _public(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: copy.deepcopy(v) for k, v in obj.items() if not k.startswith("_")}


def _refuse_unknown(params: dict[str, Any], allowed: set[str], *, prefix: str = "") -> None:
    for name in params:
        if name not in allowed:
            shown = f"{prefix}[{name}]" if prefix else name
            raise StripeError(
                400, f"Received unknown parameter: {shown}", code="parameter_unknown", param=shown
            )


def _metadata(value: Any, *, param: str = "metadata") -> dict[str, str]:
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise StripeError(400, "Invalid object", code="parameter_invalid_empty", param=param)
    for key, item in value.items():
        if len(key) > 40 or not isinstance(item, str) or len(item) > 500:
            raise StripeError(
                400,
                "Metadata keys can be up to 40 characters and values up to 500 characters.",
                param=f"{param}[{key}]",
            )
    return {k: v for k, v in value.items() if v != ""}


def _status_listed(status: str, wanted: str | None) -> bool:
    """Stripe's list filter: a status, `all`, or by default everything but canceled."""
    if wanted == "all":
        return True
    return status == wanted if wanted else status != "canceled"


def _check_status(status: str) -> None:
    if status not in objects.SUBSCRIPTION_STATUSES:
        raise ValueError(f"not a subscription status: {status!r}")
