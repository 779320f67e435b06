"""Delivering owed reply parts through Evolution: right after a reply is recorded, and by a loop
in every reply worker that retries what is due (`engine.core.delivery` decides, PostgreSQL
remembers: `next_attempt_at` survives any restart).

Each send is claimed in its own short transaction before the HTTP request and recorded after it,
so no transaction is open while Evolution thinks. One circuit breaker per process guards the
Evolution base URL: while it is open nothing is claimed, so an outage costs one probe per
cooldown instead of one request per owed part.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.adapters import metrics
from engine.adapters.evolution import EvolutionClient
from engine.adapters.secrets import SecretBox
from engine.config import Settings
from engine.core.circuit import CircuitBreaker, CircuitState
from engine.core.delivery import (
    NextStep,
    RetryPolicy,
    SendOutcome,
    after_attempt,
    give_up_reason,
)
from engine.core.replies import send_timeout_s, typing_delay_ms
from engine.core.statuses import MessageStatus
from engine.db import deliveries as deliveries_db
from engine.db.deliveries import DuePart
from engine.db.turn_path import TurnStatements
from engine.errors import DatabaseUnavailable, SendFailed, SendOutcomeUnknown

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClaimedPart:
    """A new reply's first part, claimed for its first send by the transaction that recorded
    it; `api_key`: its instance's key, already opened; `only`: the reply has no other part."""

    part: DuePart
    api_key: str | None
    only: bool = False


LOOP_CONCURRENCY = 32  # conversations one process delivers at once
RECORD_RETRY_S = 1.0  # while PostgreSQL is away, how often an attempt's outcome is retried


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        backoff_base_s=settings.send_backoff_base_s,
        backoff_max_s=settings.send_backoff_max_s,
        max_attempts=settings.send_max_attempts,
        max_age_s=settings.send_retry_max_s,
        echo_window_s=settings.send_echo_window_s,
        max_unconfirmed=settings.send_max_unconfirmed,
    )


class Deliverer:
    """Sends one process's share of the owed parts (every reply worker has one)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        statements: TurnStatements,
        evolution: EvolutionClient | None,
        settings: Settings,
    ):
        self._sessions = sessions
        self._statements = statements  # raw asyncpg: a delivered part is recorded in one statement
        self._evolution = evolution
        self._settings = settings
        self._policy = retry_policy(settings)
        self._breaker = CircuitBreaker(
            settings.evolution_breaker_failures, settings.evolution_breaker_cooldown_s
        )
        self._secrets = SecretBox(settings.secrets_key.get_secret_value())
        self._random = random.Random()
        self._in_hand: set[int] = set()  # conversations this process is delivering now

    @property
    def enabled(self) -> bool:
        return self._evolution is not None

    def breaker_state(self) -> CircuitState:
        return self._breaker.state(time.monotonic())

    def first_claim_s(self, text: str) -> float | None:
        """How long a new reply's first part (`text`) is claimed by the transaction that
        records it, so that it goes out without a claim of its own; None: it is not (no
        Evolution, or the circuit is not closed: sends wait for the breaker as usual)."""
        if self._evolution is None or self.breaker_state() is not CircuitState.CLOSED:
            return None
        return self._claim_s(self._typing_ms(text))

    async def deliver_conversation(
        self, conversation_id: int, *, claimed: ClaimedPart | None = None
    ) -> bool:
        """Send the conversation's due parts in order, starting with `claimed` (a part claimed
        by the transaction that recorded it); stop at the first that is not delivered (it stays
        owed). True when every due part was delivered.

        Once `claimed` is out, losing PostgreSQL while looking for the rest does not fail the
        caller's turn: its reply is delivered and recorded, and whatever else is owed stays owed
        for the delivery loop."""
        if self._evolution is None:
            return False
        if claimed is not None:
            # Sent even while the loop holds this chat: the claim found no earlier part owed, and
            # later ones are not due before this one is delivered.
            first = await self._attempt(claimed.part, 1, api_key=claimed.api_key)
            if first is not SendOutcome.DELIVERED:
                return False
        if conversation_id in self._in_hand:
            return claimed is not None  # the loop sends the rest
        self._in_hand.add(conversation_id)
        try:
            while True:
                outcome = await self._send_next(conversation_id)
                if outcome is None:
                    return True
                if outcome is not SendOutcome.DELIVERED:
                    return False
        except DatabaseUnavailable as e:
            if claimed is None:
                raise
            log.warning(
                "reply's first part delivered; the rest is left to the delivery loop",
                extra={**self._context(claimed.part), "error": str(e)[:300]},
            )
            return claimed.only
        finally:
            self._in_hand.discard(conversation_id)

    async def run(self) -> None:
        """The loop: every DELIVERY_POLL_S, start delivering each conversation whose next part is
        due (each on its own: a slow send in one chat never holds up another's)."""
        failing = False
        tasks: set[asyncio.Task[None]] = set()
        while True:
            await asyncio.sleep(self._settings.delivery_poll_s)
            room = LOOP_CONCURRENCY - len(self._in_hand)
            if self._evolution is None or room <= 0:
                continue
            if self.breaker_state() is CircuitState.OPEN:
                continue
            try:
                async with self._sessions() as session:
                    due = await deliveries_db.due_conversations(
                        session, limit=room, excluding=self._in_hand
                    )
                failing = False
            except Exception as e:
                if not failing:  # once per streak: a PostgreSQL restart would fill the log
                    log.warning("delivery pass failed; retrying", extra={"error": repr(e)})
                failing = True
                continue
            for conversation_id in due:
                task = asyncio.get_running_loop().create_task(self._deliver_logged(conversation_id))
                tasks.add(task)
                task.add_done_callback(tasks.discard)

    async def _deliver_logged(self, conversation_id: int) -> None:
        try:
            await self.deliver_conversation(conversation_id)
        except DatabaseUnavailable as e:
            log.warning(
                "delivery interrupted: PostgreSQL unavailable",
                extra={"conversation_id": conversation_id, "error": str(e)},
            )
        except Exception:
            log.exception("delivery failed", extra={"conversation_id": conversation_id})

    async def _send_next(self, conversation_id: int) -> SendOutcome | None:
        """Claim, send and record the conversation's next due part; None if none is due. A part
        held back by the open circuit counts as RETRYABLE (nothing sent), one given up now as
        REFUSED."""
        async with self._sessions() as session:
            part = await deliveries_db.next_due_part(session, conversation_id)
            if part is None:
                return None
            reason = give_up_reason(
                attempts=part.attempts,
                unconfirmed=part.unconfirmed,
                owed_s=part.owed_s,
                policy=self._policy,
            )
            if reason is not None:
                await deliveries_db.dead_letter(session, part, reason=reason)
                await session.commit()
                metrics.reply_part(part.cliente_id, "failed")
                self._log_dead(part, reason)
                return SendOutcome.REFUSED
            if not self._breaker.allow(time.monotonic()):
                return SendOutcome.RETRYABLE  # rolled back: still due when the circuit allows
            attempt = await deliveries_db.claim_part(
                session, part, claim_s=self._claim_s(self._typing_ms(part.text))
            )
            await session.commit()
        api_key = self._secrets.open_optional(part.instance_api_key_encrypted)
        return await self._attempt(part, attempt, api_key=api_key)

    async def _attempt(self, part: DuePart, attempt: int, *, api_key: str | None) -> SendOutcome:
        """Send a claimed part and record the outcome."""
        delay_ms = self._typing_ms(part.text)
        outcome, key, error = await self._send(part, delay_ms, api_key)
        if outcome in (SendOutcome.DELIVERED, SendOutcome.REFUSED):
            self._breaker.record_success()  # Evolution answered: it is up
        else:
            self._breaker.record_failure(time.monotonic())
        step = after_attempt(
            outcome,
            attempts=attempt,
            owed_s=part.owed_s,
            policy=self._policy,
            jitter=self._random.random(),
            error=error,
        )
        await self._record(part, attempt, step, key, error, patience_s=self._claim_s(delay_ms))
        return outcome

    async def _send(
        self, part: DuePart, delay_ms: int, api_key: str | None
    ) -> tuple[SendOutcome, str | None, str | None]:
        assert self._evolution is not None
        try:
            sent = await self._evolution.send_text(
                instance=part.instance_id,
                number=part.chat_jid,
                text=part.text,
                api_key=api_key,
                delay_ms=delay_ms,
            )
        except SendOutcomeUnknown as e:
            return SendOutcome.UNKNOWN, None, str(e)
        except SendFailed as e:
            return (SendOutcome.RETRYABLE if e.retryable else SendOutcome.REFUSED), None, str(e)
        except Exception as e:  # after the request may have gone out: only the echo can tell
            log.exception("unexpected error sending a part", extra=self._context(part))
            return SendOutcome.UNKNOWN, None, repr(e)
        return SendOutcome.DELIVERED, sent.wa_message_id, None

    async def _record(
        self,
        part: DuePart,
        attempt: int,
        step: NextStep,
        key: str | None,
        error: str | None,
        *,
        patience_s: float,
    ) -> None:
        """Record the attempt's outcome; while PostgreSQL is away, keep trying for as long as the
        claim lasts: a delivered part that is not recorded as such would be sent again."""
        deadline = time.monotonic() + patience_s
        while True:
            try:
                if step.status is MessageStatus.ENVIADA:  # the common case: one statement
                    await self._statements.record_sent(
                        part.message_id, part.turn_id, wa_message_id=key
                    )
                    applied = True
                else:
                    async with self._sessions() as session:
                        applied = await self._apply(session, part, attempt, step, error)
                        await session.commit()
                break
            except DatabaseUnavailable:
                if time.monotonic() >= deadline:
                    raise
                await asyncio.sleep(RECORD_RETRY_S)
        context = {**self._context(part), "attempt": attempt, "status": step.status.value}
        if not applied:  # its echo confirmed it meanwhile (or a newer attempt owns it)
            log.info("attempt's outcome superseded", extra={**context, "error": error})
        elif step.status is MessageStatus.ENVIADA:
            metrics.reply_part(part.cliente_id, "sent")
            log.info("part delivered", extra=context)
        elif step.status is MessageStatus.FALHOU:
            metrics.reply_part(part.cliente_id, "failed")
            self._log_dead(part, step.reason or "")
        else:
            metrics.reply_part(part.cliente_id, "retried")
            log.warning(
                "part not delivered; will retry",
                extra={**context, "retry_in_s": round(step.retry_in_s or 0, 1), "error": error},
            )

    @staticmethod
    async def _apply(
        session: AsyncSession,
        part: DuePart,
        attempt: int,
        step: NextStep,
        error: str | None,
    ) -> bool:
        """Record a failed attempt; False if the part moved on meanwhile (compare-and-set
        refused)."""
        if step.status is MessageStatus.FALHOU:
            return await deliveries_db.dead_letter(
                session, part, reason=step.reason or error or "", attempt=attempt
            )
        return await deliveries_db.record_retry(
            session,
            part,
            attempt=attempt,
            status=step.status,
            retry_in_s=step.retry_in_s or 0.0,
            error=error or "",
        )

    def _typing_ms(self, text: str) -> int:
        s = self._settings
        return typing_delay_ms(
            text, ms_per_char=s.typing_ms_per_char, min_ms=s.typing_min_ms, max_ms=s.typing_max_ms
        )

    def _claim_s(self, delay_ms: int) -> float:
        """A send's claim: the send's own time limit, then the echo's window to confirm it."""
        send_s = send_timeout_s(delay_ms, base_timeout_s=self._settings.evolution_timeout_s)
        return send_s + self._policy.echo_window_s

    def _log_dead(self, part: DuePart, reason: str) -> None:
        log.error(
            "reply part dead-lettered (FALHOU); re-send it with `conversa resend` once fixed",
            extra={**self._context(part), "reason": reason},
        )

    @staticmethod
    def _context(part: DuePart) -> dict[str, Any]:
        return {
            "cliente_id": part.cliente_id,
            "chat": part.chat_jid,
            "turn_id": part.turn_id,
            "message_id": part.message_id,
        }
