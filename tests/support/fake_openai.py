"""A real HTTP server speaking OpenAI's `POST /v1/chat/completions` (non-streaming).

Its answer is built from what it was given, so tests can see grounding and memory: it quotes the
knowledge passages of the system prompt and the last user message. Its `usage` counts one token
per 4 characters (prompt: every message's content; completion: the answer), and each answer's
usage is kept in `usages` beside the question, so tests can add up what a cliente spent.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.support.http_server import ServerThread

KNOWLEDGE_HEADER = "Base de conhecimento:"


def passages_in(system_prompt: str) -> list[str]:
    """The numbered passages of a system prompt, each on one line (a passage may span several:
    its section title, table rows, paragraphs)."""
    _, _, knowledge = system_prompt.partition(KNOWLEDGE_HEADER)
    blocks = re.split(r"^\[\d+\] ", knowledge, flags=re.MULTILINE)[1:]
    return [" ".join(block.split()) for block in blocks]


@dataclass(frozen=True)
class Usage:
    question: str  # the last user message
    prompt_tokens: int
    completion_tokens: int


def count_tokens(text: str) -> int:
    return len(text) // 4 + 1


@dataclass
class FakeOpenAI:
    api_key: str = "sk-test"
    requests: list[dict[str, Any]] = field(default_factory=list)
    mode: str = "ok"  # ok | error | slow
    slow_s: float = 5.0
    paragraphs: int = 1  # >1: the answer comes in that many blank-line-separated paragraphs
    transcript: str = "Qual é o horário de funcionamento?"
    audio_received: list[bytes] = field(default_factory=list)
    usages: list[Usage] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ServerThread | None = None

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def completions(request: Request) -> JSONResponse:
            if request.headers.get("authorization") != f"Bearer {self.api_key}":
                return JSONResponse({"error": {"message": "bad key"}}, status_code=401)
            body = await request.json()
            with self._lock:
                self.requests.append(body)
            if self.mode == "error":
                return JSONResponse({"error": {"message": "overloaded"}}, status_code=503)
            if self.mode == "slow":
                await asyncio.sleep(self.slow_s)
            messages = body["messages"]
            system = messages[0]["content"] if messages[0]["role"] == "system" else ""
            question = messages[-1]["content"]
            cited = " | ".join(passages_in(system)) or "sem trechos"
            content = f"Segundo a base: {cited}. Você perguntou: {question}"
            extra = [f"Parágrafo {i} de {self.paragraphs}." for i in range(2, self.paragraphs + 1)]
            content = "\n\n".join([content, *extra])
            usage = Usage(
                question,
                sum(count_tokens(str(m.get("content") or "")) for m in messages),
                count_tokens(content),
            )
            with self._lock:
                self.usages.append(usage)
            return JSONResponse(
                {
                    "id": f"chatcmpl-{len(self.requests)}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", "fake"),
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "message": {"role": "assistant", "content": content},
                        }
                    ],
                    "usage": {
                        "prompt_tokens": usage.prompt_tokens,
                        "completion_tokens": usage.completion_tokens,
                        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
                    },
                }
            )

        @app.post("/v1/audio/transcriptions")
        async def transcriptions(request: Request) -> JSONResponse:
            if request.headers.get("authorization") != f"Bearer {self.api_key}":
                return JSONResponse({"error": {"message": "bad key"}}, status_code=401)
            body = await request.body()  # multipart: the model name and the audio file
            if b'name="file"' not in body or b'name="model"' not in body:
                error = {"error": {"message": "file and model are required"}}
                return JSONResponse(error, status_code=400)
            with self._lock:
                self.audio_received.append(body)
            return JSONResponse({"text": self.transcript})

        return app

    def start(self) -> FakeOpenAI:
        self._server = ServerThread(self.app()).start()
        return self

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"{self._server.url}/v1"

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def requests_about(self, text: str) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.requests if text in r["messages"][-1]["content"]]
