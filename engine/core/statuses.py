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
    RECEBIDA = "RECEBIDA"  # inbound, accepted, waiting for its turn
    RESPONDIDA = "RESPONDIDA"  # inbound, answered by a turn
    IGNORADA = "IGNORADA"  # inbound, not to be answered (see ignored_reason)
    ENVIANDO = "ENVIANDO"  # outbound, recorded before the send; not yet confirmed by Evolution
    ENVIADA = "ENVIADA"  # outbound, accepted by Evolution (or typed by a human)
    REGISTRADA = "REGISTRADA"  # outbound, recorded only (no Evolution configured)
    FALHOU = "FALHOU"  # outbound, Evolution refused or was unreachable


class TurnStatus(StrEnum):
    PROCESSANDO = "PROCESSANDO"  # messages claimed, reply being produced
    ENVIANDO = "ENVIANDO"  # reply recorded, parts being sent (recovery resends only unsent parts)
    RESPONDIDA = "RESPONDIDA"
    FALHOU = "FALHOU"  # Evolution refused the reply
    ABANDONADA = "ABANDONADA"  # its producer died before a reply existed; a later turn took over


class GroupReplies(StrEnum):
    OFF = "off"  # never answer in groups (the default)
    MENTIONED = "mentioned"  # answer in a group only when the business number is mentioned


class DocumentStatus(StrEnum):
    PROCESSANDO = "PROCESSANDO"
    PRONTO = "PRONTO"
    ERRO = "ERRO"
