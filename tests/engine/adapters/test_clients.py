"""The Evolution and OpenAI-compatible clients against real HTTP servers speaking those APIs."""

from __future__ import annotations

import pytest

from engine.adapters.evolution import EvolutionClient
from engine.adapters.llm import ChatModel
from engine.config import Settings
from engine.core.prompt import OFFLINE_PREFIX, Passage
from engine.errors import SendFailed, SendOutcomeUnknown
from tests.support.fake_evolution import FakeEvolution
from tests.support.fake_openai import FakeOpenAI
from tests.support.http_server import free_port

PASSAGE = Passage("O produto X custa R$ 100 e é azul.", 1, 0, similarity=0.8)
PHONE = "5511987654321@s.whatsapp.net"


def _evolution(fake: FakeEvolution, *, timeout_s: float = 2.0) -> EvolutionClient:
    return EvolutionClient(base_url=fake.url, api_key=fake.api_key, timeout_s=timeout_s)


async def test_send_waits_out_the_typing_delay_without_timing_out(
    fake_evolution: FakeEvolution,
) -> None:
    client = _evolution(fake_evolution, timeout_s=0.3)
    sent = await client.send_text(instance="loja", number=PHONE, text="olá", delay_ms=600)
    await client.close()
    [record] = fake_evolution.sent_to(PHONE)[-1:]
    assert record.key_id == sent.wa_message_id and record.delay_ms == 600
    assert record.apikey == fake_evolution.api_key


async def test_instance_key_wins_over_the_global_key(fake_evolution: FakeEvolution) -> None:
    client = _evolution(fake_evolution)
    number = "5511900000001@s.whatsapp.net"
    await client.send_text(instance="loja", number=number, text="oi", api_key="instance-key")
    await client.close()
    assert fake_evolution.sent_to(number)[-1].apikey == "instance-key"


async def test_jid_refused_as_nonexistent_is_retried_as_a_plain_number(
    fake_evolution: FakeEvolution,
) -> None:
    client = _evolution(fake_evolution)
    fake_evolution.reject_jids = True
    try:
        await client.send_text(instance="loja", number=PHONE, text="pelo número")
    finally:
        fake_evolution.reject_jids = False
        await client.close()
    assert fake_evolution.sent_to("5511987654321")[-1].text == "pelo número"


async def test_unreachable_evolution_is_a_retryable_send_failure() -> None:
    client = EvolutionClient(base_url=f"http://127.0.0.1:{free_port()}", api_key="k", timeout_s=1)
    with pytest.raises(SendFailed) as failure:
        await client.send_text(instance="loja", number=PHONE, text="oi")
    await client.close()
    assert failure.value.retryable


async def test_refusal_is_a_send_failure_with_the_status(fake_evolution: FakeEvolution) -> None:
    client = _evolution(fake_evolution)
    fake_evolution.fail_status = 500
    try:
        with pytest.raises(SendFailed) as failure:
            await client.send_text(instance="loja", number=PHONE, text="oi")
    finally:
        fake_evolution.fail_status = None
        await client.close()
    assert (failure.value.status, failure.value.retryable) == (500, True)


@pytest.mark.parametrize(("status", "retryable"), [(429, True), (503, True), (401, False)])
async def test_only_a_refusal_worth_repeating_is_retryable(
    evolution_faults: FakeEvolution, status: int, retryable: bool
) -> None:
    client = _evolution(evolution_faults)
    chat = "5511900000001@s.whatsapp.net"
    evolution_faults.fail(status=status, number=chat)
    try:
        with pytest.raises(SendFailed) as failure:
            await client.send_text(instance="loja", number=chat, text="oi")
    finally:
        await client.close()
    assert not isinstance(failure.value, SendOutcomeUnknown)
    assert (failure.value.status, failure.value.retryable) == (status, retryable)


@pytest.mark.parametrize("fault", ["slow", "reset"])
async def test_a_send_whose_answer_is_lost_has_an_unknown_outcome_though_it_was_sent(
    evolution_faults: FakeEvolution, fault: str
) -> None:
    client = _evolution(evolution_faults, timeout_s=0.5)
    chat = f"551190000{len(fault)}02@s.whatsapp.net"  # one chat per case
    if fault == "slow":
        evolution_faults.slow(delay_s=1.5, number=chat)
    else:
        evolution_faults.reset_connection(number=chat)
    try:
        with pytest.raises(SendOutcomeUnknown, match="may have sent"):
            await client.send_text(instance="loja", number=chat, text="oi")
    finally:
        await client.close()
    assert len(evolution_faults.sent_to(chat)) == 1  # not retried blindly by the client


async def test_a_2xx_that_is_not_json_is_an_acceptance_without_a_key(
    evolution_faults: FakeEvolution,
) -> None:
    client = _evolution(evolution_faults)
    chat = "5511900000003@s.whatsapp.net"
    evolution_faults.answer_not_json(number=chat)
    try:
        sent = await client.send_text(instance="loja", number=chat, text="oi")
    finally:
        await client.close()
    assert sent.wa_message_id is None and len(evolution_faults.sent_to(chat)) == 1


async def test_voice_message_is_fetched_and_transcribed(
    fake_evolution: FakeEvolution, fake_llm: FakeOpenAI
) -> None:
    fake_evolution.media["AUDIO1"] = (b"OggS\x00fake-opus-bytes", "audio/ogg; codecs=opus")
    client = _evolution(fake_evolution)
    audio, mimetype = await client.media_base64(instance="loja", key_id="AUDIO1")
    await client.close()
    model = ChatModel(
        Settings(
            _env_file=None,
            openai_api_key=fake_llm.api_key,  # type: ignore[call-arg]
            openai_base_url=fake_llm.base_url,
            transcription_model="whisper-1",
        )
    )
    assert model.transcribes
    text = await model.transcribe(audio, mimetype=mimetype)
    await model.close()
    assert text == fake_llm.transcript
    assert b"fake-opus-bytes" in fake_llm.audio_received[-1]


async def test_without_a_key_the_offline_responder_answers_from_the_passages() -> None:
    model = ChatModel(Settings(_env_file=None))  # type: ignore[call-arg]
    reply = await model.reply(
        persona="Atendente.", passages=[PASSAGE], memory=[], user_text="preço?", log_context={}
    )
    assert reply.kind == "offline"
    assert reply.text.startswith(OFFLINE_PREFIX) and PASSAGE.text in reply.text
    assert not model.transcribes


@pytest.mark.parametrize("mode", ["error", "slow"])
async def test_model_error_or_timeout_gives_the_fallback(mode: str, fake_llm: FakeOpenAI) -> None:
    settings = Settings(
        _env_file=None,
        openai_api_key=fake_llm.api_key,  # type: ignore[call-arg]
        openai_base_url=fake_llm.base_url,
        llm_timeout_s=0.5,
    )
    model = ChatModel(settings)
    fake_llm.mode, fake_llm.slow_s = mode, 3.0
    try:
        reply = await model.reply(
            persona="Atendente.",
            passages=[PASSAGE],
            memory=[],
            user_text="oi",
            log_context={"cliente_id": 1},
        )
    finally:
        fake_llm.mode = "ok"
        await model.close()
    assert (reply.kind, reply.text) == ("fallback", settings.llm_fallback_message)
