"""Replies from an OpenAI-compatible chat model, an offline responder, or a polite fallback."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from engine.adapters import metrics
from engine.config import Settings
from engine.core.prompt import Exchange, Passage, build_chat_messages, offline_reply
from engine.core.prompt_budget import PromptBudget, fit_prompt
from engine.core.turns import ReplyKind

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reply:
    text: str
    kind: ReplyKind
    prompt_tokens: int | None = None  # what the model call cost, as the model reported it
    completion_tokens: int | None = None


class ChatModel:
    """Answers one turn. Never raises: a model failure becomes the configured fallback message."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self._budget = PromptBudget(
            user_tokens=settings.prompt_user_max_tokens,
            memory_tokens=settings.prompt_memory_max_tokens,
            passages_tokens=settings.prompt_passages_max_tokens,
        )
        self._client: Any = None
        if settings.llm_enabled:
            from openai import AsyncOpenAI  # only processes that talk to the model pay for it

            assert settings.openai_api_key is not None
            self._client = AsyncOpenAI(
                api_key=settings.openai_api_key.get_secret_value(),
                base_url=settings.openai_base_url,
                timeout=settings.llm_timeout_s,
                max_retries=1,
            )

    async def reply(
        self,
        *,
        persona: str,
        passages: Sequence[Passage],
        memory: Sequence[Exchange],
        user_text: str,
        log_context: dict[str, Any],
    ) -> Reply:
        if self._client is None:
            return Reply(offline_reply(user_text, passages), ReplyKind.OFFLINE)
        user_text, memory, passages = fit_prompt(
            user_text=user_text, memory=memory, passages=passages, budget=self._budget
        )
        messages = build_chat_messages(
            persona=persona,
            passages=passages,
            memory=memory,
            user_text=user_text,
        )
        cliente_id = log_context.get("cliente_id")
        started = time.monotonic()
        try:
            completion = await self._client.chat.completions.create(
                model=self._settings.openai_model,
                messages=messages,
                max_tokens=self._settings.llm_max_tokens,
                temperature=self._settings.llm_temperature,
            )
            metrics.llm_call(cliente_id, seconds=time.monotonic() - started, usage=completion.usage)
            text = (completion.choices[0].message.content or "").strip()
            if not text:
                raise ValueError("the model returned an empty reply")
            usage = completion.usage
            if usage is None:
                return Reply(text, ReplyKind.LLM)
            return Reply(text, ReplyKind.LLM, usage.prompt_tokens, usage.completion_tokens)
        except Exception as e:  # timeouts, HTTP errors, malformed responses: all answered politely
            metrics.llm_fallback(cliente_id)
            log.warning(
                "chat model failed; sending the fallback message",
                extra={**log_context, "error": f"{type(e).__name__}: {e}"},
            )
            return Reply(self._settings.llm_fallback_message, ReplyKind.FALLBACK)

    @property
    def transcribes(self) -> bool:
        return self._client is not None and bool(self._settings.transcription_model)

    async def transcribe(self, audio: bytes, *, mimetype: str) -> str:
        """Speech to text through the OpenAI-compatible `/audio/transcriptions` endpoint."""
        assert self.transcribes, "check .transcribes first"
        extension = mimetype.split("/")[-1].split(";")[0].strip() or "ogg"
        result = await self._client.audio.transcriptions.create(
            model=self._settings.transcription_model,
            file=(f"audio.{extension}", audio, mimetype.split(";")[0]),
        )
        return (getattr(result, "text", None) or str(result)).strip()

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
