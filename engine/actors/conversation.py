"""`ConversationActor`: the one owner of a (cliente, chat) conversation.

Detached and named after the session id (`cliente_{id}_{chat}`), it owns the debounce timer, the
burst being collected and the conversation's memory. It answers one burst at a time (Ray runs an
async actor's calls concurrently, so turns are serialized by a lock here). Messages that arrive
while a reply is being produced start the next burst; they are answered by the next turn.

It leaves by itself after `idle_ttl_s` without work, or when the supervisor evicts it to make room
(least recently used first). Leaving is a handshake, as in Akka's graceful passivation: once it
starts, `deliver` refuses with `ActorClosing` and the caller retries on a new incarnation,
which restores memory and unanswered messages from PostgreSQL. An actor with a burst pending or a
turn running never leaves.

The process stays light on purpose (one per live chat): no database driver, no HTTP or model
client, no Chroma. Its I/O goes through the shared `ReplyWorker` actors and the cliente's
`TenantRetriever`, every call with a time limit: a hung worker or retriever never holds the
chat. A turn whose worker timed out or died is left to recovery (its lease expires) and the next
turn goes to another worker; a search that fails or times out is answered without passages.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import zlib
from collections import deque
from dataclasses import dataclass
from typing import Any

import ray

from engine.actors.calls import GONE, call_with_timeout
from engine.actors.retriever import RetrieverClient, RetrieverConfig
from engine.adapters import metrics
from engine.core.debounce import BurstMessage, DebouncePolicy, merge_burst, search_ahead_at
from engine.core.naming import SUPERVISOR_NAME, reply_worker_name
from engine.core.prompt import Exchange
from engine.core.prompt_budget import retrieval_query

# Imported with the actor, inside the customer's typing window, not on the first reply's path:
# unpickling the first TurnPlan would otherwise import these (behaviour, zoneinfo: ~20 ms here).
from engine.core.turns import TurnPlan, TurnResult
from engine.errors import ActorClosing, DatabaseUnavailable
from engine.logs import configure_logging

log = logging.getLogger(__name__)

RESTORE_ATTEMPTS = 3

# A search of the cliente's knowledge under way, with the query it is for.
Search = tuple[str, asyncio.Task[list[Any]]]


@dataclass(frozen=True)
class ConversationConfig:
    namespace: str
    history_turns: int
    top_k: int
    reply_workers: int
    retriever: RetrieverConfig
    idle_ttl_s: float = 300.0
    slot_resource: str | None = None  # per-node cap: each live actor holds one unit
    log_level: str = "INFO"
    actor_call_timeout_s: float = 30.0  # restore
    turn_timeout_s: float = 120.0  # begin_turn, answer_turn
    retriever_timeout_s: float = 10.0  # search
    retrieval_query_max_tokens: int = 200  # what of a burst is embedded and searched
    search_ahead_s: float = 0.3  # a burst's passages are searched this long before it is due


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
        self._started_s = {"constructed": time.time()}
        configure_logging(config.log_level)
        self._cliente_id = cliente_id
        self._conversation_id = conversation_id
        self._session_id = session_id
        self._chat_jid = chat_jid
        self._policy = policy
        self._config = config
        self._loop = asyncio.get_running_loop()
        self._pending: dict[int, BurstMessage] = {}
        self._first_at = 0.0
        self._last_at = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._idle_timer: asyncio.TimerHandle | None = None
        # The pending burst's passages, searched shortly before it is due: (query, search).
        self._search_timer: asyncio.TimerHandle | None = None
        self._searched_ahead: Search | None = None
        self._turn_lock = asyncio.Lock()
        self._turns: set[asyncio.Task[None]] = set()
        self._memory: deque[Exchange] = deque(maxlen=config.history_turns)
        self._turns_answered = 0
        self._searches = 0  # of the cliente's knowledge, ahead of a burst or by its turn
        self._closing = False
        self._leave_when_done = False  # the cliente stopped being served: leave after the turn
        self._workers = [
            ray.get_actor(reply_worker_name(i), namespace=config.namespace)
            for i in range(max(1, config.reply_workers))
        ]
        self._worker_index = zlib.crc32(session_id.encode()) % len(self._workers)
        self._retriever = RetrieverClient(cliente_id, config.retriever)
        self._supervisor = _supervisor(config.namespace)
        runtime = ray.get_runtime_context()
        self._report("register", runtime.current_actor, runtime.get_node_id())
        self._restored = self._loop.create_task(self._restore())
        self._retriever_up = self._loop.create_task(self._start_retriever())  # held: not GC'd
        self._touch()

    @property
    def _log(self) -> dict[str, Any]:
        return {
            "cliente_id": self._cliente_id,
            "chat": self._chat_jid,
            "session_id": self._session_id,
        }

    @property
    def _worker(self) -> Any:
        return self._workers[self._worker_index]

    def _next_worker(self) -> None:
        """After a worker timed out or died: the next call goes to another one."""
        self._worker_index = (self._worker_index + 1) % len(self._workers)

    async def _restore(self) -> None:
        """Memory and unanswered messages from PostgreSQL: the actor may be a re-creation.
        Each attempt gets a share of ACTOR_CALL_TIMEOUT_S, so that a hung worker is left for
        another one before the hand-off waiting on the restore gives up."""
        for attempt in range(1, RESTORE_ATTEMPTS + 1):
            try:
                pending, memory = await call_with_timeout(
                    self._worker.restore,
                    self._conversation_id,
                    self._config.history_turns,
                    timeout_s=self._config.actor_call_timeout_s / (RESTORE_ATTEMPTS + 1),
                )
                break
            except Exception as e:
                self._next_worker()
                log.warning(
                    "restore attempt failed; trying another reply worker",
                    extra={**self._log, "attempt": attempt, "error": repr(e)},
                )
                if attempt == RESTORE_ATTEMPTS:
                    # Keep serving: new messages are still answered, only without old memory.
                    log.exception("could not restore the conversation", extra=self._log)
                    return
                await asyncio.sleep(0.5 * attempt)
        self._memory.extend(memory)
        for message in pending:
            self._add(message)
        self._started_s["restored"] = time.time()
        log.info(
            "conversation actor started",
            extra={**self._log, "restored_turns": len(memory), "restored_pending": len(pending)},
        )
        if not self._busy(exclude_restore=True):
            self._report("idle")

    async def _start_retriever(self) -> None:
        """Find (or start) the cliente's retriever and wait for it to be up while the customer
        is still typing: the first turn's search then pays neither the lookup nor a cold start."""
        try:
            await self._retriever.ready(self._config.actor_call_timeout_s)
        except Exception as e:  # the first search tries again, and answers without passages
            log.warning(
                "retriever not up at the actor's start",
                extra={**self._log, "error": f"{type(e).__name__}: {e}"},
            )

    # --- messages in ----------------------------------------------------------------------

    async def deliver(
        self,
        message: BurstMessage,
        policy: DebouncePolicy | None,
        conversation_id: int,
    ) -> int:
        """Add an accepted message to the current burst; returns the burst's size. Never waits
        for a reply being produced, so the webhook is acked fast even while the chat is busy.

        A delivery for another conversation under this actor's name (the database was reset or
        restored, or the contact was erased and wrote again) is refused and the actor leaves:
        what it holds belongs to a conversation that no longer exists, and the caller retries
        on a new actor built for the delivery's conversation."""
        if self._closing:
            raise ActorClosing(self._session_id)
        if conversation_id != self._conversation_id:
            log.warning(
                "delivery for another conversation under this name; leaving",
                extra={**self._log, "conversation_id": self._conversation_id},
            )
            self._forget_all()
            self._begin_leaving("stale")
            raise ActorClosing(self._session_id)
        # Shielded: a caller that gives up (its timeout cancels this call) must not cancel the
        # restore every later message waits for.
        await asyncio.shield(self._restored)
        if self._closing:  # began leaving while this call waited for the restore
            raise ActorClosing(self._session_id)
        if policy is not None:
            self._policy = policy
        self._add(message)
        return len(self._pending)

    def _add(self, message: BurstMessage) -> None:
        now = self._loop.time()
        if message.message_id in self._pending:
            return
        arrived = self._policy.arrived_at(
            now=now, accepted_at_s=message.accepted_at_s, wall_now_s=time.time()
        )
        if not self._pending:
            self._first_at = self._last_at = arrived
            self._report("busy")
        else:
            self._last_at = max(self._last_at, arrived)
        self._pending[message.message_id] = message
        if self._timer is not None:
            self._timer.cancel()
        deadline = self._policy.deadline(first_at=self._first_at, last_at=self._last_at)
        if self._leave_when_done:  # no waiting: the turn records it (or answers, if re-activated)
            deadline = now
        self._timer = self._loop.call_at(deadline, self._fire)
        self._drop_search_ahead()  # it was for the burst without this message
        search_at = search_ahead_at(deadline, now=now, ahead_s=self._config.search_ahead_s)
        if search_at is not None:
            self._search_timer = self._loop.call_at(search_at, self._search_ahead)
        self._touch()

    def _search_ahead(self) -> None:
        """Search for the burst as it stands shortly before it is due: the turn then finds its
        passages ready (unless the burst it claims reads otherwise)."""
        self._search_timer = None
        query = self._query(merge_burst(self._pending.values()))
        if query:
            self._searched_ahead = (query, self._loop.create_task(self._search(query)))

    def _drop_search_ahead(self) -> None:
        if self._search_timer is not None:
            self._search_timer.cancel()
            self._search_timer = None
        if self._searched_ahead is not None:
            self._searched_ahead[1].cancel()
            self._searched_ahead = None

    def _fire(self) -> None:
        self._timer = None
        burst, self._pending = list(self._pending.values()), {}
        ahead, self._searched_ahead = self._searched_ahead, None
        self._drop_search_ahead()  # one not started yet (stop_serving): the turn searches
        waited_s = self._loop.time() - self._first_at
        metrics.burst_fired(self._cliente_id, size=len(burst), waited_s=waited_s)
        task = self._loop.create_task(self._answer(burst, last_at=self._last_at, ahead=ahead))
        self._turns.add(task)
        task.add_done_callback(self._turn_done)

    def _turn_done(self, task: asyncio.Task[None]) -> None:
        self._turns.discard(task)
        self._touch()
        if not self._busy():
            if self._leave_when_done and not self._closing:
                self._begin_leaving("cliente_not_served")
                return
            self._report("idle")

    # --- turns ----------------------------------------------------------------------------

    async def _answer(
        self,
        burst: list[BurstMessage],
        *,
        last_at: float,
        ahead: Search | None,
    ) -> None:
        async with self._turn_lock:
            try:
                await self._run_turn(burst, last_at=last_at, ahead=ahead)
            except (TimeoutError, ray.exceptions.RayActorError) as e:
                # The messages stay unanswered in PostgreSQL with their deadline; the turn's
                # lease expires and recovery re-activates them. Not on this worker again.
                self._next_worker()
                log.warning(
                    "reply worker timed out or died; recovery will answer this burst",
                    extra={**self._log, "messages": len(burst), "error": type(e).__name__},
                )
            except DatabaseUnavailable as e:
                log.warning(
                    "PostgreSQL unavailable; recovery will answer this burst",
                    extra={**self._log, "messages": len(burst), "error": str(e)[:300]},
                )
            except Exception:
                # The messages stay RECEBIDA in PostgreSQL; the next turn (or recovery) claims them.
                log.exception("turn failed", extra={**self._log, "messages": len(burst)})

    async def _run_turn(
        self,
        burst: list[BurstMessage],
        *,
        last_at: float,
        ahead: Search | None,
    ) -> None:
        """Answer what is pending: claim it under a lease, search, have the reply produced.
        `last_at`: when the burst's last message arrived (loop time), for the reply latency;
        `ahead`: the search started shortly before the burst was due, with its query.

        The search for the burst as this actor holds it was started ahead or runs while the
        worker claims the burst (neither needs the other), so its time hides behind the
        customer's typing or the claim's. The claimed burst is what counts: its passages are
        searched again if it reads otherwise (a message whose hand-off was lost, a voice note
        transcribed meanwhile)."""
        timeout_s = self._config.turn_timeout_s
        held_query = self._query(merge_burst(burst))
        if ahead is not None and ahead[0] != held_query:
            ahead[1].cancel()  # for another burst (`_add` drops it on each message already)
            ahead = None
        if ahead is None and held_query:
            ahead = (held_query, self._loop.create_task(self._search(held_query)))
        early_search = ahead[1] if ahead is not None else None
        try:
            plan: TurnPlan | None = await call_with_timeout(
                self._worker.begin_turn, self._conversation_id, timeout_s=timeout_s
            )
            if plan is None:
                return
            if plan.new_session:
                self._memory.clear()
            passages: list[Any] = []
            if plan.needs_passages:
                query = self._query(plan.user_text)
                if early_search is not None and query == held_query:
                    passages = await early_search
                else:
                    passages = await self._search(query)
        finally:
            if early_search is not None:
                early_search.cancel()  # not needed (or done): its result is dropped
        result: TurnResult = await call_with_timeout(
            self._worker.answer_turn,
            plan,
            passages=passages,
            memory=list(self._memory),
            timeout_s=timeout_s,
        )
        if result.discarded:
            return
        if result.delivered:
            metrics.reply_delivered(self._cliente_id, after_s=self._loop.time() - last_at)
        if plan.close_session:
            self._memory.clear()
        elif result.is_memory:
            self._memory.append(Exchange(plan.user_text, result.reply_text))
        self._turns_answered += 1

    def _query(self, user_text: str) -> str:
        return retrieval_query(user_text, self._config.retrieval_query_max_tokens)

    async def _search(self, query: str) -> list[Any]:
        """The cliente's passages for `query`; none when the retriever is gone, fails, does not
        start within ACTOR_CALL_TIMEOUT_S or searches for longer than RETRIEVER_TIMEOUT_S (a
        reply without passages beats no reply)."""
        self._searches += 1
        try:
            with metrics.retrieval_timer(self._cliente_id):
                return await self._retriever.call(
                    "search",
                    query,
                    self._config.top_k,
                    timeout_s=self._config.retriever_timeout_s,
                    start_timeout_s=self._config.actor_call_timeout_s,
                )
        except GONE:
            log.warning("retriever unavailable; answering without passages", extra=self._log)
        except Exception as e:
            log.warning(
                "retriever failed; answering without passages",
                extra={**self._log, "error": f"{type(e).__name__}: {e}"},
            )
        return []

    # --- leaving --------------------------------------------------------------------------

    def _busy(self, *, exclude_restore: bool = False) -> bool:
        return (
            bool(self._pending)
            or bool(self._turns)
            or self._turn_lock.locked()
            or (not exclude_restore and not self._restored.done())
        )

    def _touch(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        self._idle_timer = self._loop.call_later(self._config.idle_ttl_s, self._idle_expired)

    def _idle_expired(self) -> None:
        self._idle_timer = None
        if self._busy():
            self._touch()
        else:
            self._begin_leaving("idle")

    async def stop_serving(self) -> None:
        """The cliente is no longer served (unpaid, cancelled, suspended): answer nothing more
        and leave. A burst waiting for its timer is turned now, so its messages are recorded
        unanswered with the reason (the turn re-reads the cliente's status); a reply already
        being sent is finished (its parts cannot be unsent); then the actor leaves."""
        await self._restored
        if self._closing:
            return
        self._leave_when_done = True
        if self._timer is not None:
            self._timer.cancel()
            self._fire()
        elif not self._busy():
            self._begin_leaving("cliente_not_served")
        log.info("cliente no longer served; leaving", extra=self._log)

    async def forget(self) -> None:
        """The contact was erased (LGPD): drop the memory and the burst held here and leave at
        once, busy or not; a later message starts a clean conversation in a new actor."""
        if self._closing:
            return
        self._forget_all()
        self._begin_leaving("erased")

    def _forget_all(self) -> None:
        self._memory.clear()
        self._pending.clear()
        self._drop_search_ahead()
        for task in self._turns:
            task.cancel()

    async def passivate(self) -> bool:
        """Leave if idle (the supervisor's eviction); False if there is work in hand.

        The caller may see the actor gone (`RayActorError`) instead of True: the exit can win
        the race with this call's answer, and both mean it left."""
        if self._closing or self._busy():
            return False
        self._begin_leaving("evicted")
        return True

    def _begin_leaving(self, reason: str) -> None:
        self._closing = True  # from here on, deliver refuses: callers retry on a new actor
        for timer in (self._timer, self._idle_timer):
            if timer is not None:
                timer.cancel()
        self._drop_search_ahead()
        self._loop.create_task(self._leave(reason))

    async def _leave(self, reason: str) -> None:
        if self._supervisor is not None:
            try:
                await asyncio.wait_for(
                    self._supervisor.deregister.remote(self._session_id, reason), 2
                )
            except Exception:  # the supervisor also learns it from a failed eviction
                pass
        log.info("conversation actor leaving", extra={**self._log, "reason": reason})
        ray.actor.exit_actor()

    def _report(self, what: str, *args: Any) -> None:
        """Tell the supervisor (fire-and-forget) about registration and busy/idle changes."""
        if self._supervisor is not None:
            getattr(self._supervisor, what).remote(self._session_id, *args)

    async def status(self) -> dict[str, Any]:
        """What operators and tests can see of this conversation's live state."""
        await asyncio.shield(self._restored)
        return {
            "session_id": self._session_id,
            "pid": os.getpid(),
            "node_id": ray.get_runtime_context().get_node_id(),
            "pending": len(self._pending),
            "memory_turns": len(self._memory),
            "turns_answered": self._turns_answered,
            "busy": self._busy(),
            "searches": self._searches,
            "closing": self._closing,
            # Epoch s of the steps of this actor's start (constructor entered, restored from
            # PostgreSQL), for bench/conversation_actors.py.
            "started_s": dict(self._started_s),
        }


def _supervisor(namespace: str) -> Any:
    try:
        return ray.get_actor(SUPERVISOR_NAME, namespace=namespace)
    except ValueError:
        return None
