"""Settings → the small frozen values actors and services are built with (they never read
Settings themselves): actor configs and the global default behaviour."""

from __future__ import annotations

from engine.actors.conversation import ConversationConfig
from engine.actors.retriever import RetrieverConfig
from engine.config import Settings
from engine.core.behaviour import Behaviour
from engine.core.debounce import DebouncePolicy
from engine.core.naming import CONVERSATION_SLOT


def default_behaviour(settings: Settings) -> Behaviour:
    """The behaviour of a cliente that overrides nothing."""
    return Behaviour(
        persona=settings.default_system_prompt,
        debounce=DebouncePolicy(settings.debounce_s, settings.max_wait_s),
        human_pause_s=settings.human_pause_s,
        session_expire_s=settings.session_expire_s,
        finish_keyword=settings.finish_keyword,
        finish_message=settings.finish_message,
        media_unsupported_message=settings.media_unsupported_message,
        out_of_office_message=settings.out_of_office_message,
        relevance_min_score=settings.relevance_min_score,
        dont_know_message=settings.dont_know_message,
        handoff_webhook_url=settings.handoff_webhook_url,
        handoff_whatsapp=settings.handoff_whatsapp,
        chat_max_messages=settings.chat_max_messages,
        llm_daily_tokens=settings.llm_daily_tokens,
    )


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
        actor_call_timeout_s=settings.actor_call_timeout_s,
        turn_timeout_s=settings.turn_timeout_s,
        retriever_timeout_s=settings.retriever_timeout_s,
        retrieval_query_max_tokens=settings.retrieval_query_max_tokens,
        search_ahead_s=settings.search_ahead_s,
    )
