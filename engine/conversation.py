"""`ConversationActor`: the one owner of a (cliente, chat) conversation.

Detached and named after the session id (`cliente_{id}_{chat}`), it owns the debounce timer, the
burst being collected and the conversation's memory. It answers one burst at a time (Ray runs an
async actor's calls concurrently, so turns are serialized by a lock here). Messages that arrive
while a reply is being produced start the next burst; they are answered by the next turn.

The process stays light on purpose (one per live chat): no database driver, no HTTP or model
client, no Chroma. Its I/O goes through the shared `ReplyWorker` actors and the cliente's
`TenantRetriever`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import zlib
from collections import deque
from dataclasses import dataclass
from typing import Any

import ray

from engine.debounce import DebouncePolicy, PendingMessage
from engine.errors import ConversationClosing
from engine.logs import configure_logging
from engine.naming import reply_worker_name
from engine.prompt import Turn
from engine.retriever import RetrieverConfig, retriever_handle

log = logging.getLogger(__name__)

RESTORE_ATTEMPTS = 3


@dataclass(frozen=True)
class ConversationConfig:
    namespace: str
    history_turns: int
    top_k: int
    reply_workers: int
    retriever: RetrieverConfig
    log_level: str = "INFO"


@ray.remote(num_cpus=0, max_restarts=0)
class ConversationActor:
    def __init__(
        self,
        *,
        cliente_id: int,
        conversation_id: int,
        session_id: str,
        chat_jid: str,
        policy: DebouncePolicy,
        config: ConversationConfig,
    ):
        configure_logging(config.log_level)
        self._cliente_id = cliente_id
        self._conversation_id = conversation_id
        self._session_id = session_id
        self._chat_jid = chat_jid
        self._policy = policy
        self._config = config
        self._loop = asyncio.get_running_loop()
        self._pending: dict[int, PendingMessage] = {}
        self._first_at = 0.0
        self._last_at = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._turn_lock = asyncio.Lock()
        self._turns: set[asyncio.Task[None]] = set()
        self._memory: deque[Turn] = deque(maxlen=config.history_turns)
        self._turns_answered = 0
        self._closing = False
        worker = zlib.crc32(session_id.encode()) % max(1, config.reply_workers)
        self._worker = ray.get_actor(reply_worker_name(worker), namespace=config.namespace)
        self._retriever: Any = None
        self._restored = self._loop.create_task(self._restore())

    @property
    def _log(self) -> dict[str, Any]:
        return {
            "cliente_id": self._cliente_id,
            "chat": self._chat_jid,
            "session_id": self._session_id,
        }

    async def _restore(self) -> None:
        """Memory and unanswered messages from PostgreSQL: the actor may be a re-creation."""
        for attempt in range(1, RESTORE_ATTEMPTS + 1):
            try:
                pending, memory = await self._worker.restore.remote(
                    self._conversation_id, self._config.history_turns
                )
                break
            except Exception:
                if attempt == RESTORE_ATTEMPTS:
                    # Keep serving: new messages are still answered, only without old memory.
                    log.exception("could not restore the conversation", extra=self._log)
                    return
                await asyncio.sleep(0.5 * attempt)
        self._memory.extend(memory)
        for message in pending:
            self._add(message)
        log.info(
            "conversation actor started",
            extra={**self._log, "restored_turns": len(memory), "restored_pending": len(pending)},
        )

    async def deliver(self, message: PendingMessage, policy: DebouncePolicy | None = None) -> int:
        """Add an accepted message to the current burst; returns the burst's size. Never waits
        for a reply being produced, so the webhook is acked fast even while the chat is busy."""
        if self._closing:
            raise ConversationClosing(self._session_id)
        await self._restored
        if policy is not None:
            self._policy = policy
        self._add(message)
        return len(self._pending)

    def _add(self, message: PendingMessage) -> None:
        now = self._loop.time()
        if message.message_id in self._pending:
            return
        if not self._pending:
            self._first_at = now
        self._pending[message.message_id] = message
        self._last_at = now
        if self._timer is not None:
            self._timer.cancel()
        deadline = self._policy.deadline(first_at=self._first_at, last_at=self._last_at)
        self._timer = self._loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        self._timer = None
        burst, self._pending = list(self._pending.values()), {}
        task = self._loop.create_task(self._answer(burst))
        self._turns.add(task)
        task.add_done_callback(self._turns.discard)

    async def _answer(self, burst: list[PendingMessage]) -> None:
        async with self._turn_lock:
            try:
                await self._run_turn(burst)
            except Exception:
                # The messages stay RECEBIDA in PostgreSQL; the next turn (or recovery) claims them.
                log.exception("turn failed", extra={**self._log, "messages": len(burst)})

    async def _run_turn(self, burst: list[PendingMessage]) -> None:
        start = await self._worker.begin_turn.remote(self._conversation_id)
        if start is None:
            return  # already answered by an earlier turn that claimed every pending message
        passages = await self._search(start.user_text)
        result = await self._worker.answer_turn.remote(
            start,
            conversation_id=self._conversation_id,
            passages=passages,
            memory=list(self._memory),
        )
        self._memory.append(Turn(start.user_text, result.reply_text))
        self._turns_answered += 1

    async def _search(self, query: str) -> list[Any]:
        for attempt in range(3):
            if self._retriever is None:
                self._retriever = retriever_handle(self._cliente_id, self._config.retriever)
            try:
                return await self._retriever.search.remote(query, self._config.top_k)
            except ray.exceptions.RayActorError:
                self._retriever = None  # reaped or crashed: get (or create) it again
                await asyncio.sleep(0.05 * (attempt + 1))
        log.warning("retriever unavailable; answering without passages", extra=self._log)
        return []

    async def status(self) -> dict[str, Any]:
        """What operators and tests can see of this conversation's live state."""
        await self._restored
        return {
            "session_id": self._session_id,
            "pid": os.getpid(),
            "pending": len(self._pending),
            "memory_turns": len(self._memory),
            "turns_answered": self._turns_answered,
            "busy": self._turn_lock.locked(),
        }
