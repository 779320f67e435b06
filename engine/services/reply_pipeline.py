"""The reply pipeline run by each `ReplyWorker` actor: a conversation's database, model and
Evolution I/O.

A turn is two calls: `begin_turn` claims the burst and decides what to do with it
(`engine.core.turn_policy`), the conversation actor retrieves passages, then `answer_turn`
produces the reply, records it with one row per part, and sends the parts (typing shown in
between).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from engine.adapters import metrics
from engine.adapters.evolution import EvolutionClient
from engine.adapters.llm import ChatModel, Reply
from engine.adapters.secrets import SecretBox
from engine.config import Settings
from engine.core.debounce import BurstMessage
from engine.core.prompt import Exchange, Passage
from engine.core.relevance import RelevancePolicy, hands_off
from engine.core.replies import split_reply, typing_delay_ms
from engine.core.statuses import MessageStatus
from engine.core.turn_policy import TurnKind, decide_turn
from engine.core.turns import ConversationContext, OutboundPart, ReplyKind, TurnPlan, TurnResult
from engine.db import conversations as conversations_db
from engine.db import handoff as handoff_db
from engine.db.session import create_engine, session_factory
from engine.errors import SendFailed
from engine.logs import configure_logging
from engine.services.handoff import HandoffNotice, HandoffNotifier
from engine.wiring import default_behaviour

log = logging.getLogger(__name__)

HANDOFF_REASON = "no_relevant_passage"
PRESENCE_MS = 8000  # "typing…" shown while the model thinks (Evolution holds the call that long)


class ReplyPipeline:
    """Holds one process's PostgreSQL pool, chat model client and Evolution client."""

    def __init__(self, settings: Settings):
        configure_logging(settings.log_level)
        assert settings.database_url, "the runtime resolves DATABASE_URL before starting workers"
        self._settings = settings
        self._engine = create_engine(settings.database_url, pool_size=settings.db_pool_size)
        self._sessions = session_factory(self._engine)
        self._model = ChatModel(settings)
        self._defaults = default_behaviour(settings)
        self._coverage_weight = settings.relevance_coverage_weight
        self._secrets = SecretBox(settings.secrets_key.get_secret_value())
        self._evolution: EvolutionClient | None = None
        if settings.evolution_url:
            key = (
                settings.evolution_api_key.get_secret_value()
                if settings.evolution_api_key
                else None
            )
            self._evolution = EvolutionClient(
                base_url=settings.evolution_url, api_key=key, timeout_s=settings.evolution_timeout_s
            )
        self._background: set[asyncio.Task[Any]] = set()
        self._handoff = HandoffNotifier(
            evolution=self._evolution, timeout_s=settings.handoff_timeout_s
        )

    async def restore(
        self, conversation_id: int, history_turns: int
    ) -> tuple[list[BurstMessage], list[Exchange]]:
        async with self._sessions() as session:
            pending = await conversations_db.load_pending(session, conversation_id)
            memory = await conversations_db.load_memory(session, conversation_id, history_turns)
        return pending, memory

    async def begin_turn(self, conversation_id: int) -> TurnPlan | None:
        """Claim the conversation's unanswered messages and decide the turn; None = nothing to
        send (no messages left, or the burst is recorded without a reply)."""
        await self._transcribe_pending_audio(conversation_id)
        async with self._sessions() as session:
            claim = await conversations_db.claim(session, conversation_id)
            if claim is None:
                await session.commit()
                return None
            context = ConversationContext(
                conversation_id=claim.conversation_id,
                cliente_id=claim.cliente_id,
                chat_jid=claim.chat_jid,
                instance_id=claim.instance_id,
                instance_api_key=self._secrets.open_optional(claim.instance_api_key_encrypted),
                behaviour=self._defaults.overridden_by(claim.overrides),
            )
            if claim.resumable is not None:
                await session.commit()
                return TurnPlan(claim.resumable.turn_id, context, None, claim.resumable)
            decision = decide_turn(
                claim.burst,
                claim.state,
                context.behaviour,
                cliente_status=claim.cliente_status,
                now=datetime.now(UTC),
            )
            if decision.kind is TurnKind.SKIP:
                reason = decision.skip_reason
                await conversations_db.skip_burst(session, claim, reason=reason or "")
                await session.commit()
                log.info(
                    "burst recorded without a reply",
                    extra={**_log_context(context), "reason": reason, "messages": len(claim.burst)},
                )
                return None
            turn_id = await conversations_db.start_turn(
                session,
                claim,
                user_text=decision.user_text,
                new_session=decision.new_session,
                out_of_office=decision.kind is TurnKind.OUT_OF_OFFICE,
            )
            await session.commit()
        return TurnPlan(turn_id, context, decision)

    async def answer_turn(
        self, plan: TurnPlan, *, passages: list[Passage], memory: list[Exchange]
    ) -> TurnResult:
        """Produce (or resume) the reply, record it part by part, send the parts in order."""
        context = plan.context
        log_context = {**_log_context(context), "turn_id": plan.turn_id}
        if plan.resumable is not None:
            reply = Reply(plan.resumable.reply_text, plan.resumable.reply_kind)
            parts = list(plan.resumable.unsent)
        else:
            assert plan.decision is not None, "a new turn carries its decision"
            reply = await self._reply(plan, passages=passages, memory=memory, log=log_context)
            texts = split_reply(reply.text) if self._settings.split_replies else [reply.text]
            async with self._sessions() as session:
                parts = await conversations_db.record_reply(
                    session,
                    turn_id=plan.turn_id,
                    context=context,
                    reply_text=reply.text,
                    reply_kind=reply.kind,
                    sources=[asdict(p) for p in passages],
                    parts=texts or [reply.text],
                    prompt_tokens=reply.prompt_tokens,
                    completion_tokens=reply.completion_tokens,
                )
                if reply.kind is ReplyKind.HANDOFF:
                    await handoff_db.flag_needs_human(
                        session, context.conversation_id, reason=HANDOFF_REASON
                    )
                await session.commit()
            if reply.kind is ReplyKind.HANDOFF:
                self._notify_handoff(plan, log_context)
        delivered = await self._send_parts(context, parts, log_context)
        async with self._sessions() as session:
            await conversations_db.complete_turn(
                session,
                turn_id=plan.turn_id,
                conversation_id=context.conversation_id,
                delivered=delivered,
                close_session=plan.close_session,
                max_wait_s=context.behaviour.debounce.max_wait_s,
            )
            await session.commit()
        log.info(
            "turn answered",
            extra={
                **log_context,
                "kind": plan.decision.kind.value if plan.decision else "resumed",
                "reply_kind": reply.kind.value,
                "passages": len(passages),
                "parts": len(parts),
                "delivered": delivered,
            },
        )
        return TurnResult(reply.text, reply.kind, delivered)

    async def _reply(
        self,
        plan: TurnPlan,
        *,
        passages: list[Passage],
        memory: list[Exchange],
        log: dict[str, Any],
    ) -> Reply:
        """The model's answer for an ANSWER turn; the fixed reply for the others."""
        decision = plan.decision
        assert decision is not None
        if decision.kind is not TurnKind.ANSWER:
            return Reply(decision.fixed_reply or "", ReplyKind.fixed(decision.kind))
        dont_know = self._dont_know(plan, passages, log)
        if dont_know is not None:
            return dont_know
        self._show_typing(plan.context, log)
        return await self._model.reply(
            persona=plan.context.behaviour.persona,
            passages=passages,
            memory=memory,
            user_text=decision.user_text,
            log_context=log,
        )

    async def _send_parts(
        self,
        context: ConversationContext,
        parts: list[OutboundPart],
        log_context: dict[str, Any],
    ) -> bool:
        """Send in order; stop at the first refusal (later parts would read out of context)."""
        settings = self._settings
        for index, part in enumerate(parts):
            if self._evolution is None or not context.instance_id:
                status, key_id, error = MessageStatus.REGISTRADA, None, None
            else:
                delay_ms = typing_delay_ms(
                    part.text,
                    ms_per_char=settings.typing_ms_per_char,
                    min_ms=settings.typing_min_ms,
                    max_ms=settings.typing_max_ms,
                )
                try:
                    sent = await self._evolution.send_text(
                        instance=context.instance_id,
                        number=context.chat_jid,
                        text=part.text,
                        api_key=context.instance_api_key,
                        delay_ms=delay_ms,
                    )
                    status, key_id, error = MessageStatus.ENVIADA, sent.wa_message_id, None
                    metrics.reply_part(context.cliente_id, "sent")
                except SendFailed as e:
                    log.error("send failed", extra={**log_context, "error": str(e), "part": index})
                    status, key_id, error = MessageStatus.FALHOU, None, str(e)
                    metrics.reply_part(context.cliente_id, "failed")
            async with self._sessions() as session:
                await conversations_db.mark_part(
                    session, part.message_id, status=status, wa_message_id=key_id, error=error
                )
                await session.commit()
            if status is MessageStatus.FALHOU:
                return False
        return True

    def _dont_know(
        self, plan: TurnPlan, passages: list[Passage], log_context: dict[str, Any]
    ) -> Reply | None:
        """The honest "I don't know" when nothing retrieved is relevant enough (the model is
        not asked: it would guess); None when the passages can answer."""
        behaviour = plan.context.behaviour
        policy = RelevancePolicy(behaviour.relevance_min_score, self._coverage_weight)
        if not hands_off(plan.user_text, passages, policy):
            return None
        log.info(
            "nothing relevant enough: handing off to a human",
            extra={**log_context, "best_score": policy.best_score(passages)},
        )
        return Reply(behaviour.dont_know_message, ReplyKind.HANDOFF)

    def _notify_handoff(self, plan: TurnPlan, log_context: dict[str, Any]) -> None:
        """Tell the business (webhook, WhatsApp) off the reply's path; the flag is already set."""
        notice = HandoffNotice.of(plan.context, question=plan.user_text, reason=HANDOFF_REASON)
        task = asyncio.get_running_loop().create_task(self._handoff.notify(plan.context, notice))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        log.info("chat needs a human", extra=log_context)

    def _show_typing(self, context: ConversationContext, log_context: dict[str, Any]) -> None:
        """Fire-and-forget "typing…" while the model works; its failure never matters."""
        if not (self._settings.typing_presence and self._evolution and context.instance_id):
            return
        evolution, instance = self._evolution, context.instance_id

        async def presence() -> None:
            try:
                await evolution.send_presence(
                    instance=instance,
                    number=context.chat_jid,
                    delay_ms=PRESENCE_MS,
                    api_key=context.instance_api_key,
                )
            except SendFailed as e:
                log.info("typing presence not shown", extra={**log_context, "error": str(e)})

        task = asyncio.get_running_loop().create_task(presence())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _transcribe_pending_audio(self, conversation_id: int) -> None:
        """Give voice messages their text before the burst is read (when transcription is on)."""
        if not self._model.transcribes or self._evolution is None:
            return
        async with self._sessions() as session:
            audios = await conversations_db.pending_audio(session, conversation_id)
        for message_id, instance, key_id in audios:
            try:
                audio, mimetype = await self._evolution.media_base64(
                    instance=instance, key_id=key_id
                )
                text = await self._model.transcribe(audio, mimetype=mimetype)
            except Exception as e:  # the message then counts as unreadable media
                log.warning(
                    "transcription failed", extra={"message_id": message_id, "error": repr(e)}
                )
                continue
            async with self._sessions() as session:
                await conversations_db.set_text(session, message_id, text)
                await session.commit()


def _log_context(context: ConversationContext) -> dict[str, Any]:
    return {"cliente_id": context.cliente_id, "chat": context.chat_jid}
