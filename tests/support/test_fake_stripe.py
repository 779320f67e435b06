"""The real `stripe` library (16.x) talks to the fake Stripe server as to api.stripe.com."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import stripe

from tests.support.fake_stripe import DEFAULT_PRICE, FakeStripe
from tests.support.stripe_objects import decode_form


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    server = FakeStripe().start()
    yield server
    server.stop()


def _checkout_params(customer_id: str | None = None) -> dict[str, object]:
    params: dict[str, object] = {
        "mode": "subscription",
        "line_items": [{"price": DEFAULT_PRICE, "quantity": 1}],
        "client_reference_id": "42",
        "metadata": {"cliente_id": "42"},
        "subscription_data": {"metadata": {"cliente_id": "42"}},
        "success_url": "https://conversa.example/billing/ok",
        "cancel_url": "https://conversa.example/billing/cancelled",
    }
    if customer_id:
        params["customer"] = customer_id
    return params


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("email=a%40b.c", {"email": "a@b.c"}),
        ("metadata[cliente_id]=7&metadata[plano]=", {"metadata": {"cliente_id": "7", "plano": ""}}),
        (
            "line_items[0][price]=price_1&line_items[0][quantity]=2&line_items[1][price]=p2",
            {"line_items": [{"price": "price_1", "quantity": "2"}, {"price": "p2"}]},
        ),
        (
            "expand%5B0%5D=customer&expand%5B1%5D=items.data.price",
            {"expand": ["customer", "items.data.price"]},
        ),
        ("expand[]=customer&expand[]=latest_invoice", {"expand": ["customer", "latest_invoice"]}),
        ("a[b][c][0][d]=x", {"a": {"b": {"c": [{"d": "x"}]}}}),
        ("", {}),
    ],
)
def test_form_bodies_decode_into_stripe_params(body: str, expected: dict[str, object]) -> None:
    assert decode_form(body) == expected


def test_a_malformed_parameter_name_is_refused() -> None:
    with pytest.raises(ValueError, match="Invalid parameter name"):
        decode_form("a]b[=1")


def test_customer_is_created_and_retrieved_through_the_library(fake: FakeStripe) -> None:
    client = fake.client()
    made = client.v1.customers.create(
        params={"email": "loja@example.com", "name": "Loja", "metadata": {"cliente_id": "42"}}
    )
    assert isinstance(made, stripe.Customer)
    assert made.id.startswith("cus_")
    again = client.v1.customers.retrieve(made.id)
    assert again.metadata is not None
    assert (again.email, again.name, again.metadata["cliente_id"]) == (
        "loja@example.com",
        "Loja",
        "42",
    )
    [post] = fake.requests_to("POST", "/v1/customers")
    assert post.params == {
        "email": "loja@example.com",
        "name": "Loja",
        "metadata": {"cliente_id": "42"},
    }
    assert post.api_key == fake.api_key
    assert post.idempotency_key  # the library sends one on every POST
    assert post.stripe_version == stripe.api_version


def test_checkout_session_in_subscription_mode_then_completed(fake: FakeStripe) -> None:
    client = fake.client()
    customer = client.v1.customers.create(params={"email": "loja@example.com"})
    session = client.v1.checkout.sessions.create(params=_checkout_params(customer.id))  # type: ignore[arg-type]
    assert isinstance(session, stripe.checkout.Session)
    assert session.id.startswith("cs_test_")
    assert session.url and session.url.startswith("https://checkout.stripe.com/")
    assert (session.mode, session.customer, session.subscription) == (
        "subscription",
        customer.id,
        None,
    )
    assert session.metadata is not None
    assert (session.client_reference_id, session.metadata["cliente_id"]) == ("42", "42")
    [post] = fake.requests_to("POST", "/v1/checkout/sessions")
    assert post.params["line_items"] == [{"price": DEFAULT_PRICE, "quantity": "1"}]

    events = fake.complete_checkout(session.id)

    assert [e["type"] for e in events] == [
        "customer.subscription.created",
        "invoice.paid",
        "checkout.session.completed",
    ]
    completed = client.v1.checkout.sessions.retrieve(session.id)
    assert completed.status == "complete" and completed.subscription
    sub = client.v1.subscriptions.retrieve(completed.subscription)  # type: ignore[arg-type]
    assert isinstance(sub, stripe.Subscription)
    assert (sub.status, sub.customer, sub.cancel_at_period_end) == ("active", customer.id, False)
    assert sub.pause_collection is None
    assert sub.metadata["cliente_id"] == "42"  # from subscription_data[metadata]
    [item] = sub["items"].data  # `sub.items` is the dict method: index it
    assert item.price.id == DEFAULT_PRICE
    assert item.current_period_end > item.current_period_start  # period lives on the item
    assert "current_period_end" not in sub  # not on the subscription in this API version


def test_checkout_without_a_customer_makes_one_when_paid(fake: FakeStripe) -> None:
    client = fake.client()
    params = _checkout_params()
    params["customer_email"] = "nova@example.com"
    session = client.v1.checkout.sessions.create(params=params)  # type: ignore[arg-type]
    assert session.customer is None
    events = fake.complete_checkout(session.id)
    assert events[0]["type"] == "customer.created"
    done = events[-1]["data"]["object"]
    assert done["customer"] == events[0]["data"]["object"]["id"]
    assert done["customer_details"]["email"] == "nova@example.com"


def test_subscription_state_set_by_the_test_is_what_the_library_reads(fake: FakeStripe) -> None:
    client = fake.client()
    customer = fake.create_customer(email="loja@example.com")
    sub = fake.create_subscription(customer["id"], metadata={"cliente_id": "42"})

    event = fake.set_subscription(sub["id"], status="past_due")

    assert event["type"] == "customer.subscription.updated"
    assert event["data"]["previous_attributes"] == {"status": "active"}
    assert client.v1.subscriptions.retrieve(sub["id"]).status == "past_due"
    paused = fake.set_subscription(
        sub["id"], pause_collection={"behavior": "void", "resumes_at": None}
    )
    assert paused["data"]["object"]["pause_collection"]["behavior"] == "void"
    assert client.v1.subscriptions.retrieve(sub["id"]).pause_collection.behavior == "void"  # type: ignore[union-attr]
    cancelled = fake.set_subscription(sub["id"], status="canceled")
    assert cancelled["type"] == "customer.subscription.deleted"
    assert cancelled["data"]["object"]["ended_at"] is not None


def test_failed_and_paid_invoices_move_the_subscription_like_stripe(fake: FakeStripe) -> None:
    customer = fake.create_customer()
    sub = fake.create_subscription(customer["id"])
    failed = fake.fail_invoice(sub["id"])
    assert [e["type"] for e in failed] == [
        "invoice.payment_failed",
        "customer.subscription.updated",
    ]
    invoice = failed[0]["data"]["object"]
    assert invoice["parent"]["subscription_details"]["subscription"] == sub["id"]
    assert invoice["status"] == "open"
    assert fake.subscription(sub["id"])["status"] == "past_due"
    [retried] = fake.fail_invoice(sub["id"])  # Stripe retries the same invoice
    assert retried["data"]["object"]["id"] == invoice["id"]
    assert retried["data"]["object"]["attempt_count"] == 2
    paid = fake.pay_invoice(sub["id"])
    assert [e["type"] for e in paid] == ["invoice.paid", "customer.subscription.updated"]
    assert paid[0]["data"]["object"]["id"] == invoice["id"]
    assert fake.subscription(sub["id"])["status"] == "active"
    retrieved = fake.client().v1.invoices.retrieve(paid[0]["data"]["object"]["id"])
    assert retrieved.status == "paid"


def test_billing_portal_session_returns_a_url(fake: FakeStripe) -> None:
    customer = fake.create_customer()
    portal = fake.client().v1.billing_portal.sessions.create(
        params={"customer": customer["id"], "return_url": "https://conversa.example/conta"}
    )
    assert portal.url.startswith("https://billing.stripe.com/")
    assert (portal.customer, portal.return_url) == (
        customer["id"],
        "https://conversa.example/conta",
    )


def test_expand_replaces_ids_with_objects(fake: FakeStripe) -> None:
    customer = fake.create_customer(email="x@example.com")
    sub = fake.create_subscription(customer["id"])
    fake.pay_invoice(sub["id"])
    got = fake.client().v1.subscriptions.retrieve(
        sub["id"], params={"expand": ["customer", "latest_invoice", "items.data.price"]}
    )
    assert isinstance(got.customer, stripe.Customer) and got.customer.email == "x@example.com"
    assert isinstance(got.latest_invoice, stripe.Invoice)
    with pytest.raises(stripe.InvalidRequestError, match="cannot be expanded"):
        fake.client().v1.subscriptions.retrieve(sub["id"], params={"expand": ["status"]})


def test_wrong_key_is_an_authentication_error(fake: FakeStripe) -> None:
    client = stripe.StripeClient("sk_test_not_the_key_9999", base_addresses={"api": fake.url})
    with pytest.raises(stripe.AuthenticationError) as caught:
        client.v1.customers.create(params={"email": "a@example.com"})
    assert caught.value.http_status == 401
    assert caught.value.user_message == "Invalid API Key provided: sk_test_****9999"
    assert fake.customers == {}


def test_missing_key_is_a_401_in_stripes_error_shape(fake: FakeStripe) -> None:
    response = httpx.post(f"{fake.url}/v1/customers", data={"email": "a@example.com"})
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith("You did not provide an API key.")
    with_basic = httpx.get(f"{fake.url}/v1/subscriptions", auth=(fake.api_key, ""))
    assert with_basic.status_code == 200  # curl -u sk_test_…: works as with Stripe


def test_unknown_ids_are_404_resource_missing(fake: FakeStripe) -> None:
    client = fake.client()
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.subscriptions.retrieve("sub_doesnotexist")
    error = caught.value
    assert (error.http_status, error.code, error.param) == (404, "resource_missing", "id")
    assert error.user_message == "No such subscription: 'sub_doesnotexist'"
    raw = httpx.get(f"{fake.url}/v1/customers/cus_nope", auth=(fake.api_key, ""))
    assert raw.status_code == 404
    assert raw.json()["error"]["type"] == "invalid_request_error"


def test_bad_params_are_400_with_the_param_named(fake: FakeStripe) -> None:
    client = fake.client()
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.customers.create(params={"emial": "typo@example.com"})  # type: ignore[arg-type]
    assert (caught.value.http_status, caught.value.param) == (400, "emial")
    params = _checkout_params()
    params["line_items"] = [{"price": "price_unknown"}]
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.checkout.sessions.create(params=params)  # type: ignore[arg-type]
    assert caught.value.param == "line_items[0][price]"
    assert fake.checkout_sessions == {}


async def test_async_methods_work_through_httpx(fake: FakeStripe) -> None:
    client = fake.client()
    customer = client.v1.customers.create(params={"email": "a@example.com"})
    session = await client.v1.checkout.sessions.create_async(
        params=_checkout_params(customer.id)  # type: ignore[arg-type]
    )
    fake.complete_checkout(session.id)
    done = await client.v1.checkout.sessions.retrieve_async(session.id)
    sub = await client.v1.subscriptions.retrieve_async(done.subscription)  # type: ignore[arg-type]
    assert sub.status == "active"


async def test_an_httpx_only_client_is_async_only(fake: FakeStripe) -> None:
    client = fake.client(http_client=stripe.HTTPXClient())
    customer = await client.v1.customers.create_async(params={"email": "a@example.com"})
    assert customer.email == "a@example.com"
    assert '"httplib": "httpx"' in fake.requests[-1].headers["x-stripe-client-user-agent"]
    with pytest.raises(RuntimeError, match="allow_sync_methods=False"):
        client.v1.customers.retrieve(customer.id)


def test_module_level_api_base_works_too(fake: FakeStripe, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stripe, "api_key", fake.api_key)
    monkeypatch.setattr(stripe, "api_base", fake.url)
    customer = stripe.Customer.create(email="module@example.com")
    assert stripe.Customer.retrieve(customer.id).email == "module@example.com"


def test_stripe_down_then_retries_reuse_the_idempotency_key(fake: FakeStripe) -> None:
    fake.fail_status = 500
    with pytest.raises(stripe.APIError) as caught:
        fake.client().v1.customers.create(params={"email": "a@example.com"})
    assert caught.value.http_status == 500
    assert len(fake.requests_to("POST", "/v1/customers")) == 1  # StripeClient: 0 retries by default
    fake.requests.clear()
    with pytest.raises(stripe.APIError):
        fake.client(max_network_retries=2).v1.customers.create(params={"email": "a@example.com"})
    attempts = fake.requests_to("POST", "/v1/customers")
    assert len(attempts) == 3
    assert len({a.idempotency_key for a in attempts}) == 1
    assert fake.customers == {}


def test_a_replayed_idempotency_key_returns_the_first_answer(fake: FakeStripe) -> None:
    headers = {"Idempotency-Key": "same-key"}
    auth = (fake.api_key, "")
    first = httpx.post(
        f"{fake.url}/v1/customers", data={"email": "a@x.com"}, headers=headers, auth=auth
    )
    again = httpx.post(
        f"{fake.url}/v1/customers", data={"email": "a@x.com"}, headers=headers, auth=auth
    )
    assert first.json()["id"] == again.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(fake.customers) == 1
    other = httpx.post(
        f"{fake.url}/v1/customers", data={"email": "b@x.com"}, headers=headers, auth=auth
    )
    assert other.status_code == 400
    assert other.json()["error"]["type"] == "idempotency_error"
