"""The Evolution and OpenAI-compatible clients against real HTTP servers speaking those APIs."""

from __future__ import annotations

import pytest

from engine.adapters.evolution import EvolutionClient
from engine.adapters.llm import ChatModel
from engine.config import Settings
from engine.core.prompt import OFFLINE_PREFIX, Passage
from engine.errors import SendFailed
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
