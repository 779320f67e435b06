"""The fake Evolution server: instance management and webhooks as the reference describes them
(../shared/reference/evolution-api.md §1, §3–§5), and each injectable fault."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from tests.support.evolution_faults import Fault
from tests.support.evolution_webhooks import path_suffix
from tests.support.fake_evolution import FakeEvolution
from tests.support.receiver import Receiver

PHONE = "5511987654321@s.whatsapp.net"
WUID = "5511912345678@s.whatsapp.net"
EVENTS = ["MESSAGES_UPSERT", "CONNECTION_UPDATE", "QRCODE_UPDATED", "SEND_MESSAGE"]


@pytest.fixture
def fake() -> Iterator[FakeEvolution]:
    server = FakeEvolution().start()
    yield server
    server.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
async def http(fake: FakeEvolution) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake.url, timeout=10) as client:
        yield client


def _global(fake: FakeEvolution) -> dict[str, str]:
    return {"apikey": fake.api_key}


async def _create(
    http: httpx.AsyncClient,
    fake: FakeEvolution,
    receiver: Receiver,
    name: str = "loja-centro",
    **extra: Any,
) -> dict[str, Any]:
    body = {
        "instanceName": name,
        "integration": "WHATSAPP-BAILEYS",
        "qrcode": True,
        "webhook": {
            "url": f"{receiver.url}/webhooks/evolution",
            "byEvents": False,
            "base64": False,
            "headers": {"x-conversa-secret": "s3cr3t"},
            "events": EVENTS,
        },
        **extra,
    }
    response = await http.post("/instance/create", json=body, headers=_global(fake))
    assert response.status_code == 201, response.text
    return response.json()


async def test_instance_lifecycle_create_qr_connect_event_delete(
    fake: FakeEvolution, receiver: Receiver, http: httpx.AsyncClient
) -> None:
    created = await _create(http, fake, receiver)
    token = created["hash"]
    assert created["instance"]["instanceName"] == "loja-centro"
    assert created["instance"]["status"] == "connecting"
    assert created["webhook"] == {
        "webhookUrl": f"{receiver.url}/webhooks/evolution",
        "webhookHeaders": {"x-conversa-secret": "s3cr3t"},
        "webhookByEvents": False,
        "webhookBase64": False,
    }
    qr = created["qrcode"]
    assert qr["code"].startswith("2@") and qr["count"] == 1 and qr["pairingCode"] is None
    png = base64.b64decode(qr["base64"].removeprefix("data:image/png;base64,"))
    assert png.startswith(b"\x89PNG\r\n\x1a\n")

    mine = {"apikey": token}
    found = (await http.get("/webhook/find/loja-centro", headers=mine)).json()
    assert (found["url"], found["headers"], found["events"], found["enabled"]) == (
        f"{receiver.url}/webhooks/evolution",
        {"x-conversa-secret": "s3cr3t"},
        EVENTS,
        True,
    )
    again = (
        await http.get("/instance/connect/loja-centro?number=5511912345678", headers=mine)
    ).json()
    assert again["count"] == 2 and again["code"] != qr["code"] and len(again["pairingCode"]) == 8
    state = await http.get("/instance/connectionState/loja-centro", headers=mine)
    assert state.json() == {"instance": {"instanceName": "loja-centro", "state": "connecting"}}

    [post] = await fake.emit_connection("loja-centro", state="open", wuid=WUID)

    assert post.status == 200
    [received] = receiver.posts("/webhooks/evolution")
    assert received.headers["x-conversa-secret"] == "s3cr3t"
    body = received.json()
    assert list(body) == [
        "event",
        "instance",
        "data",
        "destination",
        "date_time",
        "sender",
        "server_url",
        "apikey",
    ]
    assert body["event"] == "connection.update" and body["instance"] == "loja-centro"
    assert body["data"] == {
        "instance": "loja-centro",
        "wuid": WUID,
        "profileName": "Loja",
        "profilePictureUrl": None,
        "state": "open",
        "statusReason": 200,
    }
    assert body["destination"] == f"{receiver.url}/webhooks/evolution"
    assert body["date_time"].endswith("Z") and body["sender"] == WUID
    assert body["server_url"] == fake.url and body["apikey"] is None
    opened = await http.get("/instance/connect/loja-centro", headers=mine)
    assert opened.json() == {"instance": {"instanceName": "loja-centro", "state": "open"}}

    logout = await http.delete("/instance/logout/loja-centro", headers=mine)
    assert logout.json()["response"]["message"] == "Instance logged out"
    closed = await http.get("/instance/connectionState/loja-centro", headers=mine)
    assert closed.json()["instance"]["state"] == "close"
    deleted = await http.delete("/instance/delete/loja-centro", headers=_global(fake))
    assert deleted.json()["response"]["message"] == "Instance deleted"
    gone = await http.get("/instance/connectionState/loja-centro", headers=_global(fake))
    assert gone.status_code == 404
    assert gone.json()["response"]["message"] == ['The "loja-centro" instance does not exist']
    assert fake.deleted == ["loja-centro"]


async def test_create_needs_the_global_key_an_integration_and_a_free_name(
    fake: FakeEvolution, receiver: Receiver, http: httpx.AsyncClient
) -> None:
    created = await _create(http, fake, receiver)
    body = {"instanceName": "outra", "integration": "WHATSAPP-BAILEYS"}
    as_instance = await http.post(
        "/instance/create", json=body, headers={"apikey": created["hash"]}
    )
    assert as_instance.status_code == 401
    bad = await http.post(
        "/instance/create",
        json={"instanceName": "outra", "integration": "X"},
        headers=_global(fake),
    )
    assert bad.status_code == 400 and bad.json()["response"]["message"] == ["Invalid integration"]
    missing = await http.post(
        "/instance/create", json={"instanceName": "outra"}, headers=_global(fake)
    )
    assert missing.status_code == 400
    taken = await http.post(
        "/instance/create",
        json={"instanceName": "loja-centro", "integration": "WHATSAPP-BAILEYS"},
        headers=_global(fake),
    )
    assert taken.status_code == 403
    bad_hook = {"instanceName": "x", "integration": "EVOLUTION", "webhook": {"url": "ftp://x"}}
    refused = await http.post("/instance/create", json=bad_hook, headers=_global(fake))
    assert refused.status_code == 400
    assert set(fake.instances) == {"loja-centro"}
    plain = await http.post(
        "/instance/create",
        json={"instanceName": "sem-qr", "integration": "WHATSAPP-BAILEYS", "token": "my-token"},
        headers=_global(fake),
    )
    assert plain.json()["hash"] == "my-token" and "qrcode" not in plain.json()
    assert plain.json()["instance"]["status"] == "close"


async def test_instance_routes_take_their_own_token_or_the_global_key_only(
    fake: FakeEvolution, receiver: Receiver, http: httpx.AsyncClient
) -> None:
    one = await _create(http, fake, receiver, "um")
    two = await _create(http, fake, receiver, "dois")
    path = "/instance/connectionState/um"
    assert (await http.get(path, headers={"apikey": one["hash"]})).status_code == 200
    assert (await http.get(path, headers=_global(fake))).status_code == 200
    assert (await http.get(path, headers={"apikey": two["hash"]})).status_code == 401
    assert (await http.get(path)).status_code == 401
    send = {"number": PHONE, "text": "oi"}
    wrong = await http.post("/message/sendText/um", json=send, headers={"apikey": two["hash"]})
    assert wrong.status_code == 401 and fake.sent == []
    right = await http.post("/message/sendText/um", json=send, headers={"apikey": one["hash"]})
    assert right.status_code == 201
    # An instance Conversa registered by hand (unknown here) keeps taking any key, as before.
    legacy = await http.post("/message/sendText/feita-a-mao", json=send, headers={"apikey": "k"})
    assert legacy.status_code == 201


async def test_webhook_set_requires_the_nested_object_and_replaces_the_config(
    fake: FakeEvolution, receiver: Receiver, http: httpx.AsyncClient
) -> None:
    created = await _create(http, fake, receiver)
    mine = {"apikey": created["hash"]}
    flat = {"enabled": True, "url": f"{receiver.url}/new", "webhookByEvents": False}
    refused = await http.post("/webhook/set/loja-centro", json=flat, headers=mine)
    assert refused.status_code == 400
    assert refused.json()["response"]["message"] == ['instance requires property "webhook"']
    no_enabled = {"webhook": {"url": f"{receiver.url}/new"}}
    assert (
        await http.post("/webhook/set/loja-centro", json=no_enabled, headers=mine)
    ).status_code == 400
    nested = {
        "webhook": {
            "enabled": True,
            "url": f"{receiver.url}/new",
            "headers": {"x-conversa-secret": "rotated"},
            "byEvents": True,
            "events": ["CONNECTION_UPDATE"],
        }
    }
    stored = await http.post("/webhook/set/loja-centro", json=nested, headers=mine)
    assert stored.status_code == 201
    found = (await http.get("/webhook/find/loja-centro", headers=mine)).json()
    assert (found["url"], found["headers"], found["webhookByEvents"]) == (
        f"{receiver.url}/new",
        {"x-conversa-secret": "rotated"},
        True,
    )
    assert await fake.emit_qrcode("loja-centro") == []  # QRCODE_UPDATED no longer wanted
    await fake.emit_connection("loja-centro", state="connecting")
    [received] = receiver.posts()
    assert received.path == "/new/connection-update"  # byEvents suffix
    assert received.headers["x-conversa-secret"] == "rotated"
    assert received.json()["destination"] == f"{receiver.url}/new"  # without the suffix
    assert "sender" not in received.json()  # not connected yet


@pytest.mark.parametrize(
    ("event", "suffix"),
    [
        ("messages.upsert", "messages-upsert"),
        ("connection.update", "connection-update"),
        ("qrcode.updated", "qrcode-updated"),
        ("send.message", "send-message"),
        ("group-participants.update", "group-participants-update"),
    ],
)
def test_by_events_suffix_rule(event: str, suffix: str) -> None:
    assert path_suffix(event) == suffix


async def test_qrcode_updated_event_carries_the_code_connect_answers(
    fake: FakeEvolution, receiver: Receiver, http: httpx.AsyncClient
) -> None:
    created = await _create(http, fake, receiver)
    await fake.emit_qrcode("loja-centro")
    [received] = receiver.posts()
    data = received.json()["data"]["qrcode"]
    assert set(data) == {"instance", "pairingCode", "code", "base64"}
    assert data["base64"].startswith("data:image/png;base64,")
    now = fake.instances["loja-centro"].qrcode
    assert now is not None and now["code"] == data["code"]
    assert data["code"] != created["qrcode"]["code"]


async def test_send_message_event_follows_each_send_when_subscribed(
    fake: FakeEvolution, receiver: Receiver, http: httpx.AsyncClient
) -> None:
    created = await _create(http, fake, receiver)
    response = await http.post(
        "/message/sendText/loja-centro",
        json={"number": PHONE, "text": "Olá!"},
        headers={"apikey": created["hash"]},
    )
    [received] = await receiver.wait_for(1)
    body = received.json()
    assert body["event"] == "send.message"
    assert body["data"] == response.json()  # the same object as the answer
    assert body["data"]["key"]["fromMe"] is True and body["data"]["status"] == "PENDING"
    assert body["data"]["instanceId"] == created["instance"]["instanceId"]


async def test_no_send_message_event_without_send_message_in_events(
    fake: FakeEvolution, receiver: Receiver, http: httpx.AsyncClient
) -> None:
    fake.configure_webhook("feita-a-mao", url=receiver.url, events=["MESSAGES_UPSERT"])
    await http.post(
        "/message/sendText/feita-a-mao",
        json={"number": PHONE, "text": "x"},
        headers={"apikey": "any"},
    )
    await asyncio.sleep(0.3)
    assert receiver.posts() == [] and len(fake.sent) == 1


async def test_jwt_key_header_becomes_a_bearer_token(
    fake: FakeEvolution, receiver: Receiver
) -> None:
    fake.configure_webhook("loja", url=receiver.url, headers={"jwt_key": "jwt-secret", "x-a": "b"})
    await fake.emit_connection("loja", state="connecting")
    [received] = receiver.posts()
    assert "jwt_key" not in received.headers and received.headers["x-a"] == "b"
    token = received.headers["authorization"].removeprefix("Bearer ")
    header, claims, signature = token.split(".")
    expected = hmac.new(b"jwt-secret", f"{header}.{claims}".encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64decode(signature + "==") == expected
    decoded = json.loads(base64.urlsafe_b64decode(claims + "=="))
    assert decoded["exp"] - decoded["iat"] == 600 and decoded["app"] == "evolution"


async def test_webhook_posts_are_retried_except_on_final_statuses(
    fake: FakeEvolution, receiver: Receiver
) -> None:
    fake.webhook_max_attempts, fake.webhook_retry_delay_s = 3, 0.01
    fake.configure_webhook("loja", url=receiver.url)
    receiver.statuses = [503, 200]
    posts = await fake.emit_connection("loja", state="connecting")
    assert [p.status for p in posts] == [503, 200]
    receiver.statuses = [401]
    posts = await fake.emit_connection("loja", state="connecting")
    assert [p.status for p in posts] == [401]


# -- faults ------------------------------------------------------------------------------------


async def _send(http: httpx.AsyncClient, text: str, **kwargs: Any) -> httpx.Response:
    return await http.post(
        "/message/sendText/loja",
        json={"number": PHONE, "text": text},
        headers={"apikey": "k"},
        **kwargs,
    )


async def test_fail_for_n_calls_then_recovers(fake: FakeEvolution, http: httpx.AsyncClient) -> None:
    fake.fail(calls=2)
    statuses = [(await _send(http, f"m{i}")).status_code for i in range(3)]
    assert statuses == [500, 500, 201]
    assert [s.text for s in fake.sent] == ["m2"]
    assert [a.outcome for a in fake.attempts] == ["failed", "failed", "sent"]


async def test_fail_for_some_seconds_then_recovers(
    fake: FakeEvolution, http: httpx.AsyncClient
) -> None:
    fake.fail(status=503, for_s=0.5)
    assert (await _send(http, "during")).status_code == 503
    await asyncio.sleep(0.6)
    assert (await _send(http, "after")).status_code == 201
    assert [s.text for s in fake.sent] == ["after"]


async def test_a_fault_for_one_chat_leaves_the_other_chats_alone(
    fake: FakeEvolution, http: httpx.AsyncClient
) -> None:
    other = "5511900000000@s.whatsapp.net"
    fake.fail(number=PHONE, calls=1)
    elsewhere = await http.post(
        "/message/sendText/loja", json={"number": other, "text": "a"}, headers={"apikey": "k"}
    )
    assert elsewhere.status_code == 201  # not counted against the fault's one call
    assert (await _send(http, "b")).status_code == 500
    assert (await _send(http, "c")).status_code == 201
    assert [s.text for s in fake.sent] == ["a", "c"]


async def test_fail_on_an_instance_route_changes_nothing(
    fake: FakeEvolution, receiver: Receiver, http: httpx.AsyncClient
) -> None:
    await _create(http, fake, receiver)
    fake.fail("delete", calls=1)
    first = await http.delete("/instance/delete/loja-centro", headers=_global(fake))
    assert first.status_code == 500 and "loja-centro" in fake.instances
    second = await http.delete("/instance/delete/loja-centro", headers=_global(fake))
    assert second.status_code == 200 and "loja-centro" not in fake.instances


async def test_slow_answer_times_out_but_the_message_was_sent_once(
    fake: FakeEvolution, http: httpx.AsyncClient
) -> None:
    fake.slow(delay_s=1.0, calls=1)
    with pytest.raises(httpx.ReadTimeout):
        await _send(http, "devagar", timeout=0.3)
    [sent] = fake.sent
    assert sent.text == "devagar" and sent.key_id.startswith("3EB0")
    assert (await _send(http, "rápido", timeout=0.9)).status_code == 201


async def test_echo_arrives_before_the_answer_with_the_same_key(
    fake: FakeEvolution, receiver: Receiver, http: httpx.AsyncClient
) -> None:
    fake.echo_before_reply(
        url=f"{receiver.url}/webhooks/evolution", headers={"x-conversa-secret": "s"}, calls=1
    )
    response = await _send(http, "eco")
    answered_at = time.monotonic()
    [echo] = receiver.posts()  # already there when sendText answered
    assert echo.at < answered_at
    body = echo.json()
    assert body["event"] == "messages.upsert" and echo.headers["x-conversa-secret"] == "s"
    assert body["data"]["key"] == response.json()["key"]
    assert body["data"]["key"]["fromMe"] is True
    assert body["data"]["message"] == {"conversation": "eco"}
    assert len(fake.sent_with_key(response.json()["key"]["id"])) == 1


async def test_echo_goes_to_the_instance_webhook_by_default(
    fake: FakeEvolution, receiver: Receiver, http: httpx.AsyncClient
) -> None:
    fake.configure_webhook(
        "loja", url=receiver.url, headers={"x-conversa-secret": "t"}, events=["MESSAGES_UPSERT"]
    )
    fake.echo_before_reply(event="send.message")
    response = await _send(http, "eco 2")
    [echo] = receiver.posts()
    assert echo.json()["event"] == "send.message"
    assert echo.json()["data"] == response.json()


async def test_reset_after_the_request_was_read_still_delivers(
    fake: FakeEvolution, http: httpx.AsyncClient
) -> None:
    fake.reset_connection(calls=1)
    with pytest.raises(httpx.ReadError):  # ECONNRESET: the connection was reset
        await _send(http, "perdida a resposta")
    assert [s.text for s in fake.sent] == ["perdida a resposta"]
    assert [a.outcome for a in fake.attempts] == ["reset"]
    assert (await _send(http, "depois")).status_code == 201


async def test_a_2xx_that_is_not_json_still_delivers(
    fake: FakeEvolution, http: httpx.AsyncClient
) -> None:
    fake.answer_not_json(calls=1)
    response = await _send(http, "html")
    assert response.status_code == 201
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert [s.text for s in fake.sent] == ["html"]


async def test_faults_are_cleared_and_unknown_endpoints_refused(
    fake: FakeEvolution, http: httpx.AsyncClient
) -> None:
    fake.fail()
    assert (await _send(http, "a")).status_code == 500
    fake.clear_faults()
    assert (await _send(http, "b")).status_code == 201
    with pytest.raises(ValueError, match="unknown endpoint"):
        fake.fail("sendTxt")
    with pytest.raises(ValueError, match="sendText fault"):
        fake.faults.set("connect", Fault("echo_first"), calls=1, for_s=None)
