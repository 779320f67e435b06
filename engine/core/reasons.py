"""Why a message is not answered: one enum, stored in `messages.ignored_reason`, returned in
the webhook's ack and given by the turn policy when a burst is recorded without a reply."""

from __future__ import annotations

from enum import StrEnum

from engine.core.statuses import ClienteStatus


class IgnoreReason(StrEnum):
    # what the message is (decided from the payload alone)
    STATUS_BROADCAST = "status_broadcast"
    GROUP = "group"  # a group message the cliente's group policy does not answer
    NEWSLETTER = "newsletter"
    BROADCAST = "broadcast"
    REACTION = "reaction"
    PROTOCOL = "protocol"  # revokes, ephemeral settings, pins, keep-in-chat
    EDITED = "edited"
    POLL_UPDATE = "poll_update"
    EMPTY = "empty"
    # the conversation's state
    PAUSED = "paused"  # a human (or an operator) is answering this chat
    OUT_OF_OFFICE = "out_of_office"  # closed, and the customer was already told so
    LOOP_SUSPECTED = "loop_suspected"  # the other side looks like a bot (engine.core.chat_limits)
    # the cliente's state: only ATIVO is served
    CLIENTE_PENDENTE = "cliente_pendente"
    CLIENTE_INADIMPLENTE = "cliente_inadimplente"
    CLIENTE_SUSPENSO = "cliente_suspenso"
    CLIENTE_CANCELADO = "cliente_cancelado"
    CLIENTE_PAUSADO = "cliente_pausado"
    CLIENTE_EXCLUINDO = "cliente_excluindo"

    @classmethod
    def for_status(cls, status: ClienteStatus) -> IgnoreReason:
        """The reason a cliente's messages are recorded unanswered (`status` is not ATIVO)."""
        if status is ClienteStatus.ATIVO:
            raise ValueError("an ATIVO cliente is served")
        return cls(f"cliente_{status.value.lower()}")
