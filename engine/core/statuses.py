"""The persisted vocabulary: statuses and kinds stored in PostgreSQL.

Naming rule (written once, here and in `engine/db/models.py`): the persisted domain names the
original system used stay in Portuguese (`Cliente`, `InstanciaWhatsApp`, `ClienteStatus.ATIVO`,
the statuses below); everything else is English. `instance_id` is the Evolution instance *name*
(the seed's field); `instancia_id` is the integer key of a row in `instancias_whatsapp`.
"""

from __future__ import annotations

from enum import StrEnum


class ClienteStatus(StrEnum):
    PENDENTE = "PENDENTE"  # created, not yet paying
    ATIVO = "ATIVO"  # served
    INADIMPLENTE = "INADIMPLENTE"  # payment failed (grace policy decided by billing)
    SUSPENSO = "SUSPENSO"  # stopped by an operator (Stripe never overrides it)
    CANCELADO = "CANCELADO"  # subscription ended
    PAUSADO = "PAUSADO"  # subscription paused (a trial ended without a payment method)
    EXCLUINDO = "EXCLUINDO"  # being deleted with everything it owns (resumable; never served)


class InstanciaStatus(StrEnum):
    PENDENTE = "PENDENTE"
    CONECTADA = "CONECTADA"
    DESCONECTADA = "DESCONECTADA"
    ERRO = "ERRO"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class Author(StrEnum):
    CUSTOMER = "customer"
    BOT = "bot"
    HUMAN = "human"  # typed on the business's phone (fromMe): a takeover signal


class MessageStatus(StrEnum):
    """Inbound: RECEBIDA → RESPONDIDA (its reply delivered) or IGNORADA. An inbound message whose
    reply is still owed, or was dead-lettered, stays RECEBIDA: it is not answered yet.

    Outbound (a reply's part): PENDENTE → ENVIANDO → ENVIADA, with retries in between
    (`engine.core.delivery`): PENDENTE again after a failure that sent nothing, INCERTA after one
    whose outcome is unknown (it waits for Evolution's echo, then is sent again), FALHOU when
    delivery gave up (dead-lettered: an operator can re-send it)."""

    RECEBIDA = "RECEBIDA"  # inbound, accepted, not answered yet
    RESPONDIDA = "RESPONDIDA"  # inbound, its turn's reply was delivered
    IGNORADA = "IGNORADA"  # inbound, not to be answered (see ignored_reason)
    PENDENTE = "PENDENTE"  # outbound, owed: to be sent at next_attempt_at
    ENVIANDO = "ENVIANDO"  # outbound, claimed by a sender until next_attempt_at; request in flight
    INCERTA = "INCERTA"  # outbound, outcome unknown: waits for the echo until next_attempt_at
    ENVIADA = "ENVIADA"  # outbound, accepted by Evolution (or typed by a human)
    REGISTRADA = "REGISTRADA"  # outbound, recorded only (no Evolution configured)
    FALHOU = "FALHOU"  # outbound, dead-lettered: refused, or still owed after every retry


# Outbound parts still to be delivered (the delivery loop's work).
OWED_STATUSES = frozenset({MessageStatus.PENDENTE, MessageStatus.ENVIANDO, MessageStatus.INCERTA})


class TurnStatus(StrEnum):
    """PROCESSANDO (under a lease) → ENVIANDO (reply recorded, parts owed) → RESPONDIDA, or
    FALHOU when a part was dead-lettered; ABANDONADA when its lease expired before a reply was
    recorded (a later turn took its messages over)."""

    PROCESSANDO = "PROCESSANDO"  # messages claimed, reply being produced by the lease's owner
    ENVIANDO = "ENVIANDO"  # reply recorded, parts being delivered
    RESPONDIDA = "RESPONDIDA"  # every part delivered
    FALHOU = "FALHOU"  # a part was dead-lettered (re-sendable by an operator)
    ABANDONADA = "ABANDONADA"  # its lease expired before a reply existed; a later turn took over


class GroupReplies(StrEnum):
    OFF = "off"  # never answer in groups (the default)
    MENTIONED = "mentioned"  # answer in a group only when the business number is mentioned


class DocumentStatus(StrEnum):
    PROCESSANDO = "PROCESSANDO"
    PRONTO = "PRONTO"
    ERRO = "ERRO"
