"""The reply pipeline run by each `ReplyWorker` actor: a conversation's database, model and
Evolution I/O.

A turn is two calls: `begin_turn` claims the burst under a lease and decides what to do with it
(`engine.core.turn_policy`), the conversation actor retrieves passages, then `answer_turn`
produces the reply while renewing the lease, records it with one owed row per part (only if the
lease is still its own), and delivers the parts in order (typing shown in between). A part not
delivered then stays owed: the worker's delivery loop (`engine.services.delivery`) retries it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict, replace
from datetime import UTC, datetime
from typing import Any

from engine.adapters import metrics
from engine.adapters.evolution import EvolutionClient
from engine.adapters.llm import ChatModel, Reply
from engine.adapters.secrets import SecretBox
from engine.config import Settings
from engine.core.chat_limits import ChatActivity, ChatLimits, ChatVerdict, judge_chat
from engine.core.debounce import BurstMessage
from engine.core.prompt import Exchange, Passage
from engine.core.reasons import IgnoreReason
from engine.core.relevance import RelevancePolicy, hands_off
from engine.core.replies import split_reply
from engine.core.turn_policy import (
    ConversationState,
    TurnDecision,
    TurnKind,
    decide_turn,
    limit_turn,
)
from engine.core.turns import (
    ConversationContext,
    OutboundPart,
    ReplyKind,
    TurnPlan,
    TurnResult,
)
from engine.db import conversations as conversations_db
from engine.db.deliveries import DuePart
from engine.db.raw import RawPool
from engine.db.session import asyncpg_dsn, create_engine, session_factory
from engine.db.turn_path import TurnStatements
from engine.errors import SendFailed, TurnTakenOver
from engine.logs import configure_logging
from engine.services.delivery import ClaimedPart, Deliverer
from engine.services.handoff import HandoffNotice, HandoffNotifier
from engine.wiring import default_behaviour

log = logging.getLogger(__name__)

HANDOFF_REASON = "no_relevant_passage"
# Replies after which the chat waits for a human (flagged, the bot paused), and why.
NEEDS_HUMAN_REASONS = {
    ReplyKind.HANDOFF: HANDOFF_REASON,
    ReplyKind.TOO_MANY_MESSAGES: ChatVerdict.TOO_MANY_MESSAGES.value,
    ReplyKind.OVER_BUDGET: ChatVerdict.OVER_BUDGET.value,
}
PRESENCE_MS = 8000  # "typing…" shown while the model thinks (Evolution holds the call that long)


class ReplyPipeline:
    """Holds one process's PostgreSQL pool, chat model client and Evolution client."""

    def __init__(self, settings: Settings, *, owner: str = "reply_worker"):
        configure_logging(settings.log_level)
        assert settings.database_url, "the runtime resolves DATABASE_URL before starting workers"
        self._settings = settings
        self._owner = owner
        self._engine = create_engine(
            settings.database_url,
            pool_size=settings.db_pool_size,
            statement_timeout_s=settings.db_statement_timeout_s,
            connect_timeout_s=settings.db_connect_timeout_s,
        )
        self._sessions = session_factory(self._engine)
        self._turns = TurnStatements(
            RawPool(
                asyncpg_dsn(settings.database_url),
                pool_size=settings.db_pool_size,
                statement_timeout_s=settings.db_statement_timeout_s,
                connect_timeout_s=settings.db_connect_timeout_s,
            )
        )
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
        self.deliverer = Deliverer(self._sessions, self._turns, self._evolution, settings)
        self.answering: dict[int, str] = {}  # turn id → the burst whose reply is being produced
        self._background: set[asyncio.Task[Any]] = set()
        self._limits = ChatLimits(  # flood and budget: the cliente's behaviour, per turn
            max_messages=settings.chat_max_messages,
            window_s=settings.chat_window_s,
            loop_repeats=settings.loop_repeats,
            loop_fast_answers=settings.loop_fast_answers,
            min_human_gap_s=settings.loop_min_human_gap_s,
            daily_llm_tokens=settings.llm_daily_tokens,
        )
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
        """Claim the conversation's pending messages under a new lease and decide the turn;
        None = nothing to do now (no messages left, another turn's lease is live, or the burst
        is recorded without a reply).

        Every pending message is claimed, not only those an actor happens to hold, so a message
        whose hand-off to the actor was lost is still answered by the conversation's next turn.
        """
        leased_at_s = time.time()  # before the transaction whose now() starts the lease
        await self._transcribe_pending_audio(conversation_id)
        async with self._turns.transaction() as claiming:
            locked = await claiming.lock(conversation_id)
            if locked is None:
                return None
            context = ConversationContext(
                conversation_id=conversation_id,
                cliente_id=locked.cliente_id,
                chat_jid=locked.chat_jid,
                instance_id=locked.instance_id,
                instance_api_key=self._secrets.open_optional(locked.instance_api_key_encrypted),
                behaviour=self._defaults.overridden_by(locked.overrides),
            )
            limits = replace(
                self._limits,
                max_messages=context.behaviour.chat_max_messages,
                daily_llm_tokens=context.behaviour.llm_daily_tokens,
            )
            gathered = await claiming.gather(
                locked, window_s=limits.window_s, count_tokens=limits.daily_llm_tokens > 0
            )
            if not gathered.burst or gathered.live_lease:
                # Nothing left, or a live lease whose owner answers these (the deadline stays
                # for recovery).
                return None
            state = ConversationState(
                paused_until=locked.paused_until,
                session_started_at=locked.session_started_at,
                last_activity_at=gathered.last_activity_at,
                out_of_office_sent_at=locked.out_of_office_sent_at,
            )
            now = datetime.now(UTC)
            decision = decide_turn(
                gathered.burst,
                state,
                context.behaviour,
                cliente_status=locked.cliente_status,
                now=now,
            )
            if decision.kind is not TurnKind.SKIP:
                decision = self._within_limits(
                    context, decision, gathered.activity, limits, now=now
                )
            if decision.kind is TurnKind.SKIP:
                reason = decision.skip_reason
                loop = reason is IgnoreReason.LOOP_SUSPECTED
                await claiming.skip_burst(
                    locked,
                    gathered.burst,
                    reason=reason or "",
                    needs_human=ChatVerdict.LOOP.value if loop else None,
                )
                log.info(
                    "burst recorded without a reply",
                    extra={
                        **_log_context(context),
                        "reason": reason,
                        "messages": len(gathered.burst),
                    },
                )
                return None
            lease_owner = f"{self._owner}:{uuid.uuid4().hex[:16]}"
            turn_id = await claiming.start_turn(
                locked,
                gathered.burst,
                user_text=decision.user_text,
                new_session=decision.new_session,
                out_of_office=decision.kind is TurnKind.OUT_OF_OFFICE,
                lease_owner=lease_owner,
                # Until answer_turn renews it: the actor retrieves passages in between.
                lease_s=self._settings.turn_lease_s + self._settings.retriever_timeout_s,
            )
        return TurnPlan(turn_id, context, decision, lease_owner, leased_at_s=leased_at_s)

    def _within_limits(
        self,
        context: ConversationContext,
        decision: TurnDecision,
        activity: ChatActivity,
        limits: ChatLimits,
        *,
        now: datetime,
    ) -> TurnDecision:
        """The turn once the chat's limits are judged (engine.core.chat_limits): a loop is
        skipped, a flood or a spent budget gets its fixed reply (and the chat a human)."""
        calls_model = decision.kind is TurnKind.ANSWER
        verdict = judge_chat(activity, limits, now=now, calls_model=calls_model)
        if verdict is None:
            return decision
        extra = {**_log_context(context), "verdict": verdict.value}
        metrics.chat_limited(context.cliente_id, verdict.value)
        if verdict is ChatVerdict.OVER_BUDGET:
            # The operator's alert: one line per turn refused while the budget is spent.
            log.warning(
                "cliente over its daily LLM token budget: not calling the model",
                extra={
                    **extra,
                    "llm_tokens_today": activity.llm_tokens_today,
                    "llm_daily_tokens": limits.daily_llm_tokens,
                },
            )
        else:
            log.warning("chat over its limits: a human is called", extra=extra)
        return limit_turn(
            decision,
            verdict,
            too_many_messages_message=self._settings.too_many_messages_message,
            llm_budget_message=self._settings.llm_budget_message,
        )

    async def answer_turn(
        self, plan: TurnPlan, *, passages: list[Passage], memory: list[Exchange]
    ) -> TurnResult:
        """Produce the reply under the turn's lease, record it part by part (compare-and-set on
        the lease: a turn taken over meanwhile records and sends nothing), then deliver it."""
        context = plan.context
        log_context = {**_log_context(context), "turn_id": plan.turn_id}
        self.answering[plan.turn_id] = plan.user_text
        try:
            async with self._lease(plan):
                reply = await self._reply(plan, passages=passages, memory=memory, log=log_context)
                parts = await self._record(plan, reply, passages)
        except TurnTakenOver:
            parts = None
        finally:
            self.answering.pop(plan.turn_id, None)
        if parts is None:
            log.warning("turn taken over by recovery; its reply is discarded", extra=log_context)
            return TurnResult("", ReplyKind.FALLBACK, delivered=False, discarded=True)
        if reply.kind in NEEDS_HUMAN_REASONS:
            self._notify_handoff(plan, NEEDS_HUMAN_REASONS[reply.kind], log_context)
        delivered = not self.deliverer.enabled or await self.deliverer.deliver_conversation(
            context.conversation_id, claimed=_claimed_first(plan, parts)
        )
        log.info(
            "turn answered",
            extra={
                **log_context,
                "kind": plan.decision.kind.value,
                "reply_kind": reply.kind.value,
                "passages": len(passages),
                "parts": len(parts),
                "delivered": delivered,
            },
        )
        return TurnResult(reply.text, reply.kind, delivered)

    async def _record(
        self, plan: TurnPlan, reply: Reply, passages: list[Passage]
    ) -> list[OutboundPart] | None:
        """The reply and its parts (owed when Evolution is there, the first one claimed for its
        first send), in one statement; None if the lease was lost."""
        context = plan.context
        texts = (split_reply(reply.text) if self._settings.split_replies else []) or [reply.text]
        deliver = self.deliverer.enabled and bool(context.instance_id)
        return await self._turns.record_reply(
            turn_id=plan.turn_id,
            lease_owner=plan.lease_owner,
            conversation_id=context.conversation_id,
            cliente_id=context.cliente_id,
            instance_id=context.instance_id,
            reply_text=reply.text,
            reply_kind=reply.kind.value,
            sources=[asdict(p) for p in passages],
            parts=texts,
            deliver=deliver,
            claim_first_s=self.deliverer.first_claim_s(texts[0]) if deliver else None,
            close_session=plan.close_session,
            max_wait_s=context.behaviour.debounce.max_wait_s,
            prompt_tokens=reply.prompt_tokens,
            completion_tokens=reply.completion_tokens,
            needs_human=NEEDS_HUMAN_REASONS.get(reply.kind),
        )

    @contextlib.asynccontextmanager
    async def _lease(self, plan: TurnPlan) -> AsyncIterator[None]:
        """Hold the turn's lease while the body runs: renewed now (TurnTakenOver if it was taken
        over) and every third of TURN_LEASE_S. A renewal that cannot reach PostgreSQL is tried
        again; if the lease expires meanwhile, recording the reply fails its compare-and-set.

        The first renewal is skipped when begin_turn took the lease less than a third of
        TURN_LEASE_S ago (the usual case): that lease (TURN_LEASE_S + RETRIEVER_TIMEOUT_S) then
        outlasts the heartbeat's first renewal, and a round trip is spared on the reply's path."""
        lease_s = self._settings.turn_lease_s
        fresh = 0 < time.time() - plan.leased_at_s < lease_s / 3
        if not fresh and not await self._renew(plan, lease_s):
            raise TurnTakenOver(f"turn {plan.turn_id}'s lease is no longer {plan.lease_owner}'s")

        async def heartbeat() -> None:
            while True:
                await asyncio.sleep(lease_s / 3)
                try:
                    if not await self._renew(plan, lease_s):
                        return  # taken over: the compare-and-set of the record will refuse
                except Exception as e:
                    log.warning(
                        "lease renewal failed; retrying",
                        extra={"turn_id": plan.turn_id, "error": repr(e)},
                    )

        task = asyncio.get_running_loop().create_task(heartbeat())
        try:
            yield
        finally:
            task.cancel()

    async def _renew(self, plan: TurnPlan, lease_s: float) -> bool:
        async with self._sessions() as session:
            renewed = await conversations_db.renew_lease(
                session, plan.turn_id, lease_owner=plan.lease_owner, lease_s=lease_s
            )
            await session.commit()
        return renewed

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

    async def close(self) -> None:
        if self._evolution is not None:
            await self._evolution.close()
        await self._model.close()
        await self._turns.close()
        await self._engine.dispose()

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

    def _notify_handoff(self, plan: TurnPlan, reason: str, log_context: dict[str, Any]) -> None:
        """Tell the business (webhook, WhatsApp) off the reply's path; the flag is already set."""
        notice = HandoffNotice.of(plan.context, question=plan.user_text, reason=reason)
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


def _claimed_first(plan: TurnPlan, parts: list[OutboundPart]) -> ClaimedPart | None:
    """The reply's first part as the deliverer sends it, if recording the reply claimed it."""
    first = parts[0]  # a reply has at least one part
    if not first.claimed:
        return None
    context = plan.context
    part = DuePart(
        message_id=first.message_id,
        turn_id=plan.turn_id,
        conversation_id=context.conversation_id,
        cliente_id=context.cliente_id,
        chat_jid=context.chat_jid,
        instance_id=context.instance_id or "",
        instance_api_key_encrypted=None,  # given opened, below
        text=first.text,
        attempts=0,
        unconfirmed=0,
        owed_s=0.0,
    )
    return ClaimedPart(part, api_key=context.instance_api_key, only=len(parts) == 1)


def _log_context(context: ConversationContext) -> dict[str, Any]:
    return {"cliente_id": context.cliente_id, "chat": context.chat_jid}
