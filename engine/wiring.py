"""Settings → the small frozen configs actors are constructed with (actors never read Settings)."""

from __future__ import annotations

from engine.actors.conversation import ConversationConfig
from engine.actors.retriever import RetrieverConfig
from engine.config import Settings
from engine.core.naming import CONVERSATION_SLOT


def retriever_config(settings: Settings) -> RetrieverConfig:
    return RetrieverConfig(
        namespace=settings.ray_namespace,
        chroma_dir=None if settings.chroma_url else str(settings.chroma_dir.resolve()),
        chroma_url=settings.chroma_url,
        idle_ttl_s=settings.retriever_idle_ttl_s,
    )


def conversation_config(settings: Settings) -> ConversationConfig:
    return ConversationConfig(
        namespace=settings.ray_namespace,
        history_turns=settings.history_turns,
        top_k=settings.retrieval_top_k,
        reply_workers=settings.reply_workers,
        retriever=retriever_config(settings),
        idle_ttl_s=settings.idle_ttl_s,
        slot_resource=CONVERSATION_SLOT,
        log_level=settings.log_level,
    )
