"""The system Conversa replaces, rebuilt only to be measured beside it (issue 13).

The seed (MINI-FASE 2) was one FastAPI process: a webhook that finds the cliente by instance,
checks it, and buffers the message in an in-process dict of asyncio tasks keyed by
`cliente_{id}_{chat}` (`message_buffer.buffer_message`: each message cancels and restarts the
chat's task, a trailing debounce); when the task fires, a LangChain chain retrieves from the
cliente's own Chroma collection (`tenant_{id}`), asks the model with the chat's memory, and the
answer goes out through Evolution. This file is that design with Conversa's persistence and
Conversa's outside world, so that the comparison measures the architecture and nothing else:

* the same PostgreSQL schema, migrated by Conversa's Alembic scripts, and the same rows: per
  accepted webhook `processed_webhooks` (dedupe on `evolution:{instance}` + `key.id`), the
  `conversations` upsert and the inbound `messages` row, committed before the 2xx; per answered
  burst a `turns` row, the outbound reply in `messages`, the inbound rows marked RESPONDIDA;
* the same pool size per process (`--db-pool-size`, Conversa's `DB_POOL_SIZE` default), driver
  (SQLAlchemy's async engine over asyncpg) and JSON log line per webhook;
* per-cliente Chroma collections in this process (`chromadb.PersistentClient`, one directory per
  cliente), chunked and embedded like Conversa's (`engine.core.chunking`, `EMBEDDING_MODEL=hash`);
* the same OpenAI-compatible model (the `openai` client) and Evolution `sendText`.

What it does not have is what Conversa adds: no durable deadline (`answer_due_at`) or
recovery, no per-chat turn lock, no human takeover, sessions, media or business hours, no cap on
the debounce window, no reply split into parts, nothing survives a restart (timers and memory
are in this one process), and it cannot use more than one process. Those are Conversa's point;
the cost of them is what the benchmark shows. No artificial delays anywhere.

Serve it (the benchmark does this, see bench/compare.py):

    .venv/bin/python bench/baseline.py --database-url postgresql://… --port P \
        --evolution-url http://… --evolution-api-key K --openai-base-url http://…/v1 \
        --openai-api-key K --chroma-dir DIR [--debounce-s 0.5] [--db-pool-size 8] [--nice 15]

Clientes and instances are rows written straight to the database (`create_tenants`); knowledge
is posted to `POST /admin/clientes/{id}/documents` (raw text), like `criar_vectorstore_cliente`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import logging
import os
import sys
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

log = logging.getLogger("baseline")

SECRET_HEADER = "x-conversa-secret"
GROUNDING = (
    "Responda apenas com base nos trechos da base de conhecimento abaixo. "
    "Se a resposta não estiver neles, diga que não tem essa informação e ofereça ajuda humana."
)
DEFAULT_PERSONA = "Você é o atendente virtual desta empresa no WhatsApp. Seja cordial e breve."
FALLBACK = "Desculpe, não consegui responder agora. Pode repetir sua mensagem em instantes?"

# --------------------------------------------------------------------------- SQL (same rows)

ROUTE = text(
    "SELECT i.id AS instancia_id, i.instance_id, i.cliente_id, c.status, "
    "i.webhook_secret_sha256, c.debounce_s, c.system_prompt "
    "FROM instancias_whatsapp i JOIN clientes c ON c.id = i.cliente_id "
    "WHERE i.instance_id = :instance"
)
CLAIM = text(
    "INSERT INTO processed_webhooks (source, key, outcome) VALUES (:source, :key, :outcome) "
    "ON CONFLICT DO NOTHING RETURNING key"
)
UPSERT_CONVERSATION = text(
    "INSERT INTO conversations (cliente_id, instancia_id, chat_jid, session_id, push_name) "
    "VALUES (:cliente_id, :instancia_id, :chat_jid, :session_id, :push_name) "
    "ON CONFLICT (cliente_id, chat_jid) DO UPDATE SET instancia_id = EXCLUDED.instancia_id, "
    "push_name = COALESCE(EXCLUDED.push_name, conversations.push_name), last_message_at = now() "
    "RETURNING id"
)
INSERT_INBOUND = text(
    "INSERT INTO messages (conversation_id, cliente_id, direction, author, status, instance_id, "
    "wa_message_id, message_type, text, wa_timestamp) VALUES (:conversation_id, :cliente_id, "
    "'inbound', 'customer', 'RECEBIDA', :instance_id, :wa_message_id, :message_type, :text, "
    ":wa_timestamp) ON CONFLICT DO NOTHING RETURNING id"
)
START_TURN = text(
    "INSERT INTO turns (conversation_id, cliente_id, status, user_text) "
    "VALUES (:conversation_id, :cliente_id, 'PROCESSANDO', :user_text) RETURNING id"
)
CLAIM_MESSAGES = text("UPDATE messages SET turn_id = :turn_id WHERE id = ANY(:ids)")
INSERT_OUTBOUND = text(
    "INSERT INTO messages (conversation_id, cliente_id, turn_id, direction, author, status, "
    "instance_id, wa_message_id, text) VALUES (:conversation_id, :cliente_id, :turn_id, "
    "'outbound', 'bot', :status, :instance_id, :wa_message_id, :text)"
)
FINISH_TURN = text(
    "UPDATE turns SET status = :status, reply_text = :reply_text, reply_kind = :reply_kind, "
    "sources = CAST(:sources AS JSONB), answered_at = now() WHERE id = :turn_id"
)
ANSWERED = text(
    "UPDATE messages SET status = 'RESPONDIDA' WHERE turn_id = :turn_id "
    "AND direction = 'inbound' AND status = 'RECEBIDA'"
)


async def find_route(db: Any, instance: str) -> Any:
    return (await db.execute(ROUTE, {"instance": instance})).first()


async def claim_key(db: Any, source: str, key: str, outcome: str) -> bool:
    """Dedupe: False if (source, key) was already processed."""
    claim = {"source": source, "key": key, "outcome": outcome}
    return (await db.execute(CLAIM, claim)).first() is not None


async def upsert_conversation(
    db: Any, route: Any, chat_jid: str, session: str, data: dict[str, Any]
) -> int:
    values = {
        "cliente_id": route.cliente_id,
        "instancia_id": route.instancia_id,
        "chat_jid": chat_jid,
        "session_id": session,
        "push_name": data.get("pushName"),
    }
    return (await db.execute(UPSERT_CONVERSATION, values)).scalar_one()


async def insert_message(
    db: Any, route: Any, conversation_id: int, key_id: str, body: str, timestamp: int,
    message_type: str | None,
) -> int | None:  # fmt: skip
    values = {"conversation_id": conversation_id, "cliente_id": route.cliente_id,
              "instance_id": route.instance_id, "wa_message_id": key_id,
              "message_type": message_type, "text": body, "wa_timestamp": timestamp}  # fmt: skip
    return (await db.execute(INSERT_INBOUND, values)).scalar_one_or_none()


# --------------------------------------------------------------------------- knowledge


class KnowledgeStore:
    """`tenant_{id}` collections, one PersistentClient directory per cliente, in this process."""

    def __init__(self, chroma_dir: Path, *, chunk_size: int = 800, chunk_overlap: int = 120):
        from engine.adapters.embeddings import HashEmbeddings
        from engine.core.chunking import chunk_text

        self._dir = chroma_dir
        self._chunk = lambda t: chunk_text(t, size=chunk_size, overlap=chunk_overlap)
        self._embedder = HashEmbeddings()
        self._collections: dict[int, Any] = {}
        self._counts: dict[int, int] = {}

    def _collection(self, cliente_id: int) -> Any:
        if cliente_id not in self._collections:
            import chromadb
            from chromadb.config import Settings as ChromaSettings

            name = f"tenant_{int(cliente_id)}"
            path = self._dir / name
            path.mkdir(parents=True, exist_ok=True)
            client = chromadb.PersistentClient(
                path=str(path), settings=ChromaSettings(anonymized_telemetry=False)
            )
            self._collections[cliente_id] = client.get_or_create_collection(
                name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
            )
            self._counts[cliente_id] = self._collections[cliente_id].count()
        return self._collections[cliente_id]

    def add_document(self, cliente_id: int, title: str, content: str) -> int:
        chunks = self._chunk(content)
        if not chunks:
            return 0
        digest = hashlib.sha256(content.encode()).hexdigest()[:12]
        self._collection(cliente_id).upsert(
            ids=[f"{digest}-chunk{i}" for i in range(len(chunks))],
            documents=chunks,
            embeddings=self._embedder.embed(chunks),  # type: ignore[arg-type]
            metadatas=[{"title": title, "chunk": i} for i in range(len(chunks))],
        )
        self._counts[cliente_id] = self._collection(cliente_id).count()
        return len(chunks)

    def search(self, cliente_id: int, query: str, k: int) -> list[dict[str, Any]]:
        collection = self._collection(cliente_id)
        count = self._counts.get(cliente_id, 0)
        if not query.strip() or k <= 0 or count == 0:
            return []
        result = collection.query(
            query_embeddings=self._embedder.embed([query]),  # type: ignore[arg-type]
            n_results=min(k, count),
            include=["documents", "metadatas", "distances"],
        )
        return [
            {"text": t, "chunk_index": int((m or {}).get("chunk", 0)), "distance": float(d)}
            for t, m, d in zip(
                result["documents"][0], result["metadatas"][0], result["distances"][0], strict=True
            )
        ]


# --------------------------------------------------------------------------- the buffer


@dataclass
class Buffered:
    message_id: int
    text: str
    timestamp: int


@dataclass
class Chat:
    """One chat's burst being collected (`message_buffer`'s dict entry)."""

    cliente_id: int
    conversation_id: int
    chat_jid: str
    instance_id: str
    persona: str | None
    messages: list[Buffered] = field(default_factory=list)
    task: asyncio.Task[None] | None = None


class MessageBuffer:
    """Trailing debounce in an in-process dict of asyncio tasks, keyed by `cliente_{id}_{chat}`.

    Each message cancels the chat's sleeping task and starts a new one; a task that wakes takes
    its chat out of the dict and answers. A message arriving while that answer is produced
    starts a new entry (answered by the next task), like the seed's buffer.
    """

    def __init__(self, *, debounce_s: float, answer: Any):
        self._debounce_s = debounce_s
        self._answer = answer
        self._chats: dict[str, Chat] = {}
        self._running: set[asyncio.Task[None]] = set()

    def add(self, key: str, chat: Chat, message: Buffered, *, debounce_s: float | None) -> None:
        current = self._chats.setdefault(key, chat)
        current.messages.append(message)
        if current.task is not None:
            current.task.cancel()
        wait_s = self._debounce_s if debounce_s is None else debounce_s
        current.task = asyncio.get_running_loop().create_task(self._later(key, current, wait_s))

    async def _later(self, key: str, chat: Chat, wait_s: float) -> None:
        await asyncio.sleep(wait_s)
        if self._chats.get(key) is chat:
            del self._chats[key]
        task = asyncio.current_task()
        assert task is not None
        self._running.add(task)  # no longer cancellable by a new message
        chat.task = None
        try:
            await self._answer(key, chat)
        except Exception:
            log.exception(
                json.dumps(
                    {"msg": "turn failed", "cliente_id": chat.cliente_id, "chat": chat.chat_jid}
                )
            )
        finally:
            self._running.discard(task)


# --------------------------------------------------------------------------- the app


@dataclass(frozen=True)
class Config:
    database_url: str
    evolution_url: str
    evolution_api_key: str
    openai_base_url: str
    openai_api_key: str
    chroma_dir: Path
    debounce_s: float = 0.5
    db_pool_size: int = 8
    history_turns: int = 10
    top_k: int = 4
    model: str = "gpt-4o-mini"


def async_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+asyncpg://", 1)


class Baseline:
    def __init__(self, config: Config):
        from openai import AsyncOpenAI

        self.config = config
        # The same pool as Conversa's engine.db.session.create_engine: fixed, no pre-ping.
        self.engine: AsyncEngine = create_async_engine(
            async_url(config.database_url),
            pool_size=config.db_pool_size,
            max_overflow=0,
            pool_recycle=1800,
        )
        self.knowledge = KnowledgeStore(config.chroma_dir)
        self.model = AsyncOpenAI(
            api_key=config.openai_api_key,
            base_url=config.openai_base_url,
            timeout=30,
            max_retries=1,
        )
        self.evolution = httpx.AsyncClient(base_url=config.evolution_url, timeout=15)
        self.buffer = MessageBuffer(debounce_s=config.debounce_s, answer=self.answer)
        self.memory: dict[str, deque[tuple[str, str]]] = {}

    async def webhook(self, request: Request) -> JSONResponse:
        try:
            payload = json.loads(await request.body())
        except ValueError:
            return JSONResponse({"detail": "body is not valid JSON"}, status_code=400)
        if not isinstance(payload, dict) or not isinstance(payload.get("instance"), str):
            return JSONResponse({"detail": "`instance` is required"}, status_code=422)
        secret = request.headers.get(SECRET_HEADER)
        async with self.engine.begin() as db:  # one transaction, committed before the answer
            route = await find_route(db, payload["instance"])
            if route is None:
                return JSONResponse({"detail": "unknown instance"}, status_code=404)
            given = hashlib.sha256((secret or "").encode()).hexdigest()
            if not secret or not hmac.compare_digest(given, route.webhook_secret_sha256):
                return JSONResponse({"detail": "wrong webhook secret"}, status_code=401)
            status, detail, buffered = await self._message(db, route, payload)
        if buffered is not None:
            self.buffer.add(*buffered, debounce_s=route.debounce_s)
        log.info(json.dumps({"msg": "webhook", "cliente_id": route.cliente_id,
                             "outcome": status, "detail": detail}))  # fmt: skip
        return JSONResponse({"status": status, "detail": detail})

    async def _message(self, db: Any, route: Any, payload: dict[str, Any]) -> tuple[str, Any, Any]:
        """(status, detail, what to buffer once committed)."""
        if payload.get("event") != "messages.upsert":
            return "ignored", f"event:{payload.get('event')}", None
        data = payload.get("data")
        key = data.get("key") if isinstance(data, dict) else None
        if not isinstance(data, dict) or not isinstance(key, dict) or not key.get("id"):
            return "ignored", "no key.id", None
        chat_jid = str(key.get("remoteJid") or "")
        message = data.get("message") or {}
        body = message.get("conversation") or (message.get("extendedTextMessage") or {}).get("text")
        if key.get("fromMe") or not chat_jid.endswith("@s.whatsapp.net") or not body:
            reason: str | None = "from_me" if key.get("fromMe") else "not_a_private_text"
        elif route.status != "ATIVO":
            reason = f"cliente_{route.status.lower()}"
        else:
            reason = None
        outcome = "accepted" if reason is None else f"ignored:{reason}"
        if not await claim_key(db, f"evolution:{route.instance_id}", str(key["id"]), outcome):
            return "duplicate", key["id"], None
        if reason is not None:
            return "ignored", reason, None
        session = f"cliente_{route.cliente_id}_{chat_jid}"
        conversation_id = await upsert_conversation(db, route, chat_jid, session, data)
        timestamp = int(data.get("messageTimestamp") or 0)
        message_id = await insert_message(
            db, route, conversation_id, str(key["id"]), body, timestamp, data.get("messageType")
        )
        if message_id is None:
            return "duplicate", key["id"], None
        chat = Chat(route.cliente_id, conversation_id, chat_jid, route.instance_id,
                    route.system_prompt)  # fmt: skip
        return "accepted", None, (session, chat, Buffered(message_id, body, timestamp))

    async def answer(self, session: str, chat: Chat) -> None:
        """One burst: record the turn, retrieve, ask the model, send, record the reply."""
        burst = sorted(chat.messages, key=lambda m: (m.timestamp, m.message_id))
        user_text = "\n".join(m.text for m in burst)
        keys = {"conversation_id": chat.conversation_id, "cliente_id": chat.cliente_id}
        async with self.engine.begin() as db:
            turn_id = (await db.execute(START_TURN, {**keys, "user_text": user_text})).scalar_one()
            await db.execute(
                CLAIM_MESSAGES, {"turn_id": turn_id, "ids": [m.message_id for m in burst]}
            )
        passages = await asyncio.to_thread(
            self.knowledge.search, chat.cliente_id, user_text, self.config.top_k
        )
        memory = self.memory.setdefault(session, deque(maxlen=self.config.history_turns))
        reply, kind = await self._ask(chat.persona, passages, list(memory), user_text)
        status, wa_id = "ENVIADA", None
        try:
            response = await self.evolution.post(
                f"/message/sendText/{chat.instance_id}",
                json={"number": chat.chat_jid, "text": reply},
                headers={"apikey": self.config.evolution_api_key},
            )
            response.raise_for_status()
            wa_id = response.json().get("key", {}).get("id")
        except httpx.HTTPError as e:
            status = "FALHOU"
            log.error(
                json.dumps(
                    {
                        "msg": "send failed",
                        "cliente_id": chat.cliente_id,
                        "chat": chat.chat_jid,
                        "error": repr(e),
                    }
                )
            )
        async with self.engine.begin() as db:
            await db.execute(
                INSERT_OUTBOUND,
                {
                    **keys,
                    "turn_id": turn_id,
                    "status": status,
                    "instance_id": chat.instance_id,
                    "wa_message_id": wa_id,
                    "text": reply,
                },
            )
            await db.execute(
                FINISH_TURN,
                {
                    "turn_id": turn_id,
                    "status": "RESPONDIDA" if status == "ENVIADA" else "FALHOU",
                    "reply_text": reply,
                    "reply_kind": kind,
                    "sources": json.dumps(passages),
                },
            )
            await db.execute(ANSWERED, {"turn_id": turn_id})
        memory.append((user_text, reply))

    async def _ask(
        self,
        persona: str | None,
        passages: list[dict[str, Any]],
        memory: list[tuple[str, str]],
        user_text: str,
    ) -> tuple[str, str]:
        knowledge = [f"[{i}] {p['text']}" for i, p in enumerate(passages, start=1)]
        system = "\n".join(
            [
                persona or DEFAULT_PERSONA,
                "",
                GROUNDING,
                "",
                "Base de conhecimento:",
                *(knowledge or ["(Nenhum trecho relevante.)"]),
            ]
        )
        messages: list[dict[str, str]] = [{"role": "system", "content": system}]
        for asked, answered in memory:
            messages += [
                {"role": "user", "content": asked},
                {"role": "assistant", "content": answered},
            ]
        messages.append({"role": "user", "content": user_text})
        try:
            completion = await self.model.chat.completions.create(
                model=self.config.model,
                messages=messages,  # type: ignore[arg-type]
                max_tokens=400,
                temperature=0.2,
            )
            return (completion.choices[0].message.content or "").strip() or FALLBACK, "llm"
        except Exception as e:
            log.warning(json.dumps({"msg": "model failed", "error": repr(e)}))
            return FALLBACK, "fallback"

    async def add_document(self, cliente_id: int, request: Request) -> JSONResponse:
        content = (await request.body()).decode()
        title = request.query_params.get("title", "doc")
        chunks = await asyncio.to_thread(self.knowledge.add_document, cliente_id, title, content)
        return JSONResponse({"cliente_id": cliente_id, "chunks": chunks})


def build_app(config: Config) -> FastAPI:
    app = FastAPI(title="baseline (seed design)")
    baseline = Baseline(config)

    @app.post("/webhooks/evolution")
    async def webhook(request: Request) -> JSONResponse:
        return await baseline.webhook(request)

    @app.post("/admin/clientes/{cliente_id}/documents")
    async def documents(cliente_id: int, request: Request) -> JSONResponse:
        return await baseline.add_document(cliente_id, request)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


# --------------------------------------------------------------------------- set-up helpers


async def create_tenants(
    database_url: str, tenants: list[tuple[str, str, str]], *, debounce_s: float, max_wait_s: float
) -> list[int]:
    """(nome, instance, webhook secret) → cliente ids; rows written straight to the database,
    with the secret stored as Conversa stores it (its SHA-256)."""
    import asyncpg

    connection = await asyncpg.connect(database_url)
    try:
        ids = []
        for nome, instance, secret in tenants:
            cliente_id = await connection.fetchval(
                "INSERT INTO clientes (nome, status, debounce_s, max_wait_s) "
                "VALUES ($1, 'ATIVO', $2, $3) RETURNING id",
                nome,
                debounce_s,
                max_wait_s,
            )
            await connection.execute(
                "INSERT INTO instancias_whatsapp (cliente_id, instance_id, status, "
                "webhook_secret_sha256) VALUES ($1, $2, 'PENDENTE', $3)",
                cliente_id,
                instance,
                hashlib.sha256(secret.encode()).hexdigest(),
            )
            ids.append(cliente_id)
        return ids
    finally:
        await connection.close()


async def set_debounce(database_url: str, *, debounce_s: float, max_wait_s: float) -> None:
    """Every cliente's window (read by the webhook with the route, so it applies at once)."""
    import asyncpg

    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(
            "UPDATE clientes SET debounce_s = $1, max_wait_s = $2", debounce_s, max_wait_s
        )
    finally:
        await connection.close()


# --------------------------------------------------------------------------- main


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--database-url", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--evolution-url", required=True)
    p.add_argument("--evolution-api-key", required=True)
    p.add_argument("--openai-base-url", required=True)
    p.add_argument("--openai-api-key", required=True)
    p.add_argument("--chroma-dir", type=Path, required=True)
    p.add_argument("--debounce-s", type=float, default=0.5)
    p.add_argument("--db-pool-size", type=int, default=8)
    p.add_argument("--nice", type=int, default=0, help="increment to this process's nice")
    args = p.parse_args()
    if args.nice:
        os.nice(args.nice)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    import uvicorn

    config = Config(
        database_url=args.database_url,
        evolution_url=args.evolution_url,
        evolution_api_key=args.evolution_api_key,
        openai_base_url=args.openai_base_url,
        openai_api_key=args.openai_api_key,
        chroma_dir=args.chroma_dir,
        debounce_s=args.debounce_s,
        db_pool_size=args.db_pool_size,
    )
    uvicorn.run(
        build_app(config), host=args.host, port=args.port, log_level="warning", access_log=False
    )


if __name__ == "__main__":
    main()
