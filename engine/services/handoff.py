"""Telling the business that a chat needs a human: a JSON POST to its hand-off webhook and/or a
WhatsApp message to its operator's number through its own Evolution instance.

Best effort and off the reply's path: the chat is already flagged in PostgreSQL (and listed by
the operator API), so a notice that fails is logged, not retried.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from engine.adapters.evolution import EvolutionClient
from engine.core.turns import ConversationContext

log = logging.getLogger(__name__)

EVENT = "conversation.needs_human"


@dataclass(frozen=True)
class HandoffNotice:
    cliente_id: int
    conversation_id: int
    chat_jid: str
    question: str
    reason: str
    at: str

    @classmethod
    def of(cls, context: ConversationContext, *, question: str, reason: str) -> HandoffNotice:
        return cls(
            cliente_id=context.cliente_id,
            conversation_id=context.conversation_id,
            chat_jid=context.chat_jid,
            question=question,
            reason=reason,
            at=datetime.now(UTC).isoformat(),
        )

    def whatsapp_text(self) -> str:
        phone = self.chat_jid.split("@")[0]
        return (
            f"🙋 Um cliente precisa de atendimento humano (conversa {self.conversation_id}, "
            f"WhatsApp {phone}).\nPergunta: {self.question[:500]}"
        )


class HandoffNotifier:
    def __init__(self, *, evolution: EvolutionClient | None, timeout_s: float):
        self._evolution = evolution
        self._timeout_s = timeout_s

    async def notify(self, context: ConversationContext, notice: HandoffNotice) -> None:
        behaviour = context.behaviour
        log_context: dict[str, Any] = {
            "cliente_id": context.cliente_id,
            "chat": context.chat_jid,
            "conversation_id": context.conversation_id,
        }
        if behaviour.handoff_webhook_url:
            await self._post(behaviour.handoff_webhook_url, notice, log_context)
        if behaviour.handoff_whatsapp:
            await self._whatsapp(context, behaviour.handoff_whatsapp, notice, log_context)

    async def _post(self, url: str, notice: HandoffNotice, log_context: dict[str, Any]) -> None:
        try:
            async with httpx.AsyncClient(timeout=self._timeout_s) as client:
                response = await client.post(url, json={"event": EVENT, **asdict(notice)})
                response.raise_for_status()
            log.info("hand-off webhook sent", extra=log_context)
        except httpx.HTTPError as e:
            log.warning(
                "hand-off webhook failed; the chat is still listed as needing a human",
                extra={**log_context, "error": f"{type(e).__name__}: {e}"},
            )

    async def _whatsapp(
        self,
        context: ConversationContext,
        number: str,
        notice: HandoffNotice,
        log_context: dict[str, Any],
    ) -> None:
        if self._evolution is None or not context.instance_id:
            log.warning("hand-off WhatsApp notice needs EVOLUTION_URL", extra=log_context)
            return
        try:
            await self._evolution.send_text(
                instance=context.instance_id,
                number=number,
                text=notice.whatsapp_text(),
                api_key=context.instance_api_key,
            )
            log.info("hand-off WhatsApp notice sent", extra=log_context)
        except Exception as e:  # SendFailed and transport errors alike: best effort
            log.warning(
                "hand-off WhatsApp notice failed; the chat is still listed as needing a human",
                extra={**log_context, "error": f"{type(e).__name__}: {e}"},
            )
