"""Bad posts get a clear 4xx with a reason, and write nothing."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator

import httpx
import pytest

from engine.core.auth import hash_secret
from serve_app.runtime import haproxy_runtime_dir
from tests.support import evolution_payloads as wa
from tests.support.tenants import MakeTenant

pytestmark = pytest.mark.integration


async def test_wrong_or_missing_secret_is_401_and_writes_nothing(
    make_tenant: MakeTenant, db_counts
) -> None:
    tenant = await make_tenant()
    payload = wa.text(tenant.instance, wa.new_chat(), "oi")
    before = await db_counts(tenant.id)
    wrong = await tenant.post(payload, secret="not-the-secret-of-this-instance")
    assert wrong.status_code == 401
    assert "secret" in wrong.json()["detail"]
    missing = await tenant.api.post("/webhooks/evolution", json=payload)
    assert missing.status_code == 401
    assert await db_counts(tenant.id) == before


async def test_secret_of_another_instance_is_refused(make_tenant: MakeTenant, db_counts) -> None:
    tenant, other = await make_tenant(), await make_tenant()
    before = await db_counts(tenant.id)
    response = await tenant.post(wa.text(tenant.instance, wa.new_chat(), "oi"), secret=other.secret)
    assert response.status_code == 401
    assert await db_counts(tenant.id) == before


async def test_bearer_authorization_header_is_accepted(make_tenant: MakeTenant) -> None:
    tenant = await make_tenant()
    response = await tenant.api.post(
        "/webhooks/evolution",
        json=wa.text(tenant.instance, wa.new_chat(), "oi"),
        headers={"Authorization": f"Bearer {tenant.secret}"},
    )
    assert response.status_code == 200
    assert response.json()["status"] == "accepted"


async def test_unknown_instance_and_wrong_secret_get_the_same_401(
    make_tenant: MakeTenant, db_counts
) -> None:
    """Nothing tells an attacker which instance names exist: one status, one body, for a post
    naming an instance that does not exist, a wrong secret, no secret, and another instance's
    secret; and none of them writes anything."""
    tenant, other = await make_tenant(), await make_tenant()
    before = await db_counts(tenant.id)
    unknown = wa.text(
        "no-such-instance", wa.new_chat(), "oi", sender="5599000000000@s.whatsapp.net"
    )
    answers = [
        await tenant.post(unknown, secret="a-secret-no-instance-has-0123456789"),
        await tenant.post(unknown),  # a real secret, for an instance the body does not name
        await tenant.post(wa.text(tenant.instance, wa.new_chat(), "oi"), secret="wrong-secret"),
        await tenant.api.post("/webhooks/evolution", json=wa.text(tenant.instance, "x@lid", "oi")),
        await tenant.post(wa.text(other.instance, wa.new_chat(), "oi")),
    ]
    assert {r.status_code for r in answers} == {401}
    assert len({r.content for r in answers}) == 1
    assert "no-such-instance" not in answers[0].text
    assert await db_counts(tenant.id) == before


@pytest.mark.parametrize(
    "secret_of",
    [
        pytest.param(str.upper, id="wrong-case"),
        pytest.param(lambda s: s + "0", id="one-char-longer"),
        pytest.param(lambda s: s[:-1], id="truncated"),
        pytest.param(lambda s: hash_secret(s), id="the-stored-hash-itself"),
    ],
)
async def test_only_the_exact_secret_authenticates(secret_of, make_tenant: MakeTenant) -> None:
    tenant = await make_tenant()
    response = await tenant.post(
        wa.text(tenant.instance, wa.new_chat(), "oi"), secret=secret_of(tenant.secret)
    )
    assert response.status_code == 401


async def test_two_instances_sharing_a_secret_are_told_apart_by_the_name_in_the_body(
    make_tenant: MakeTenant, api
) -> None:
    tenant = await make_tenant()
    second = f"{tenant.instance}-b"
    response = await api.post(
        f"/admin/clientes/{tenant.id}/instances",
        json={"instance_id": second, "webhook_secret": tenant.secret},
    )
    assert response.status_code == 201, response.text
    chat = wa.new_chat()
    for instance in (tenant.instance, second):
        response = await tenant.post(wa.text(instance, chat, f"oi via {instance}"))
        assert response.json()["status"] == "accepted"
    messages = await tenant.messages(chat)
    assert {m["text"] for m in messages if m["direction"] == "inbound"} == {
        f"oi via {tenant.instance}",
        f"oi via {second}",
    }


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (b"{not json", 400, "JSON"),
        (b"[]", 422, "object"),
        (b'{"instance": "x", "data": {}}', 422, "event"),
        (b'{"event": "messages.upsert", "data": {}}', 422, "instance"),
    ],
)
async def test_malformed_envelope_is_4xx_with_a_reason(
    body: bytes, status: int, reason: str, make_tenant: MakeTenant, db_counts
) -> None:
    tenant = await make_tenant()
    before = await db_counts(tenant.id)
    response = await tenant.api.post(
        "/webhooks/evolution",
        content=body,
        headers={"X-Conversa-Secret": tenant.secret, "Content-Type": "application/json"},
    )
    assert response.status_code == status
    assert reason in response.json()["detail"]
    assert await db_counts(tenant.id) == before


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda p: p["data"].pop("key"), "data.key"),
        (lambda p: p["data"]["key"].pop("id"), "key.id"),
        (lambda p: p["data"]["key"].update(remoteJid="not-a-jid"), "remoteJid"),
        (lambda p: p["data"].update(messageTimestamp="yesterday"), "messageTimestamp"),
        (lambda p: p["data"].update(messageTimestamp=1e300), "messageTimestamp"),
        (lambda p: p["data"].update(message="text"), "data.message"),
    ],
)
async def test_malformed_message_is_422_with_a_reason(
    mutate, reason: str, make_tenant: MakeTenant, db_counts
) -> None:
    tenant = await make_tenant()
    payload = wa.text(tenant.instance, wa.new_chat(), "oi")
    mutate(payload)
    before = await db_counts(tenant.id)
    response = await tenant.post(payload)
    assert response.status_code == 422
    assert reason in response.json()["detail"]
    assert await db_counts(tenant.id) == before


async def test_by_events_path_must_match_the_body(make_tenant: MakeTenant, db_counts) -> None:
    tenant = await make_tenant()
    payload = wa.text(tenant.instance, wa.new_chat(), "oi")
    before = await db_counts(tenant.id)
    mismatch = await tenant.post(payload, path="/webhooks/evolution/connection-update")
    assert mismatch.status_code == 422
    assert await db_counts(tenant.id) == before
    match = await tenant.post(payload, path="/webhooks/evolution/messages-upsert")
    assert match.status_code == 200 and match.json()["status"] == "accepted"


async def test_operator_api_needs_the_admin_token(make_tenant: MakeTenant) -> None:
    tenant = await make_tenant()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
        response = await tenant.api.get(f"/admin/clientes/{tenant.id}", headers=headers)
        # httpx merges client headers; override Authorization explicitly for the empty case
        if not headers:
            response = await tenant.api.get(
                f"/admin/clientes/{tenant.id}", headers={"Authorization": ""}
            )
        assert response.status_code == 401


# --------------------------------------------------------------------------- size and nesting


def _padded(tenant_instance: str, size: int) -> bytes:
    """A well-formed text message whose body is exactly `size` bytes."""
    payload = wa.text(tenant_instance, wa.new_chat(), "")
    bare = len(json.dumps(payload).encode())
    payload["data"]["message"]["conversation"] = "a" * (size - bare)
    body = json.dumps(payload).encode()
    assert len(body) == size
    return body


async def test_body_at_the_limit_is_accepted_and_one_byte_more_is_413(
    make_tenant: MakeTenant, settings, db_counts
) -> None:
    tenant = await make_tenant()
    limit = settings.webhook_max_body_bytes
    headers = {"X-Conversa-Secret": tenant.secret, "Content-Type": "application/json"}
    before = await db_counts(tenant.id)
    over = await tenant.api.post(
        "/webhooks/evolution", content=_padded(tenant.instance, limit + 1), headers=headers
    )
    assert over.status_code == 413
    assert "WEBHOOK_MAX_BODY_BYTES" in over.json()["detail"]
    assert await db_counts(tenant.id) == before
    at = await tenant.api.post(
        "/webhooks/evolution", content=_padded(tenant.instance, limit), headers=headers
    )
    assert at.status_code == 200 and at.json()["status"] == "accepted"


async def test_streamed_body_without_content_length_is_cut_at_the_limit(
    make_tenant: MakeTenant, settings, db_counts
) -> None:
    """Chunked transfer: no Content-Length to check, so the bytes are counted as they arrive;
    an over-long body is refused before it is parsed (it is not even valid JSON here)."""
    tenant = await make_tenant()
    limit = settings.webhook_max_body_bytes

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"event": "messages.upsert", "data": "'
        for _ in range(limit // 65536 + 2):
            yield b"a" * 65536

    before = await db_counts(tenant.id)
    response = await tenant.api.post(
        "/webhooks/evolution", content=chunks(), headers={"X-Conversa-Secret": tenant.secret}
    )
    assert response.status_code == 413
    assert await db_counts(tenant.id) == before


# These posts announce a body and send only part of it, then wait: an answer that comes back was
# given without reading (or waiting for) the rest. They go to a replica's own HTTP server, where
# the app runs: HAProxy in front passes the request on but holds an early answer until the client
# has sent the whole body (HAProxy's behaviour; the replica still never reads it).
ANNOUNCED = 512 * 1024
SENT = b"x" * (64 * 1024)


async def test_declared_oversize_is_413_before_the_body_is_read(
    make_tenant: MakeTenant, settings
) -> None:
    tenant = await make_tenant()
    replica = replica_url(settings)
    for secret in (tenant.secret, None):
        headers = {"Content-Length": str(settings.webhook_max_body_bytes * 64)}
        headers |= {"X-Conversa-Secret": secret} if secret else {}
        status, detail = await _raw_post(replica, headers=headers, body=SENT)
        assert status == 413 and "WEBHOOK_MAX_BODY_BYTES" in detail


async def test_post_without_a_valid_secret_is_refused_before_its_body_is_read(
    make_tenant: MakeTenant, settings
) -> None:
    """The secret is checked on the headers alone: an attacker cannot make Conversa read (or
    parse) a body, and cannot tell an unknown instance from a wrong secret."""
    await make_tenant()  # instances exist; a wrong secret still reaches none of them
    replica = replica_url(settings)
    for secret in ("wrong-secret-0123456789", None):
        headers = {"Content-Length": str(ANNOUNCED)}
        headers |= {"X-Conversa-Secret": secret} if secret else {}
        status, detail = await _raw_post(replica, headers=headers, body=SENT)
        assert status == 401 and "secret" in detail


async def test_a_body_is_read_only_once_the_secret_matched(
    make_tenant: MakeTenant, settings
) -> None:
    """The same request with the right secret waits for the rest of the body it announced."""
    tenant = await make_tenant()
    replica = replica_url(settings)
    with pytest.raises(TimeoutError):
        await _raw_post(
            replica,
            headers={"Content-Length": str(ANNOUNCED), "X-Conversa-Secret": tenant.secret},
            body=SENT,
            timeout_s=3.0,
        )


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"[" * 200_000, id="200k-brackets"),
        pytest.param(b'{"event": "messages.upsert", "data": ' + b"[" * 5_000, id="deep-data"),
        pytest.param(b'{"a":' * 60_000 + b"1" + b"}" * 60_000, id="valid-but-60k-deep"),
    ],
)
async def test_nesting_too_deep_is_400_with_a_reason(
    body: bytes, make_tenant: MakeTenant, db_counts
) -> None:
    tenant = await make_tenant()
    before = await db_counts(tenant.id)
    response = await tenant.api.post(
        "/webhooks/evolution",
        content=body,
        headers={"X-Conversa-Secret": tenant.secret, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["detail"]
    assert await db_counts(tenant.id) == before


def replica_url(settings) -> httpx.URL:  # type: ignore[no-untyped-def]
    """The HTTP server of one ingress replica of this test run: the first server HAProxy's
    configuration (written by Serve for this stack) forwards to, not its backup proxy."""
    [path] = haproxy_runtime_dir(settings).glob("**/haproxy.cfg")  # under the node's id
    config = path.read_text()
    servers = re.findall(r"^\s*server \S+ ([\d.]+):(\d+) check(?!.* backup)", config, re.M)
    assert servers, config
    host, port = servers[0]
    return httpx.URL(f"http://{host}:{port}")


async def _raw_post(
    url: httpx.URL, *, headers: dict[str, str], body: bytes, timeout_s: float = 20.0
) -> tuple[int, str]:
    """POST over a bare socket, sending the headers and `body` but not necessarily all the body
    the headers announce; returns the status and body of the answer (TimeoutError if none)."""
    reader, writer = await asyncio.open_connection(url.host, url.port)
    try:
        head = ["POST /webhooks/evolution HTTP/1.1", f"Host: {url.host}", "Connection: close"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout_s)
        status = int(status_line.split()[1])
        answer = await asyncio.wait_for(reader.read(), timeout_s)
        return status, answer.decode(errors="replace")
    finally:
        writer.close()
