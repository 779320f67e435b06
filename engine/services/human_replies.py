"""A person at the business answers a chat from the console (or `/v1`): the text goes out
through the chat's own Evolution instance, is recorded as the human's, and pauses the bot in that
chat exactly like a takeover typed on the phone (`human_pause_s`).

Sent first, recorded after: a send Evolution refused records nothing and pauses nothing, so the
person sees the error and may try again. Evolution's echo of the send (a `fromMe` upsert with the
same key id) is then a duplicate of the recorded row and is not stored twice.
"""

from __future__ import annotations

import logging
import uuid

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.adapters.evolution import EvolutionClient
from engine.adapters.secrets import SecretBox
from engine.core.behaviour import Behaviour
from engine.core.statuses import Author, Direction, MessageStatus
from engine.db import clientes as clientes_db
from engine.db import conversations as conversations_db
from engine.db import inbox as inbox_db
from engine.db import instances as instances_db
from engine.db.models import Message
from engine.errors import (
    Conflict,
    InvalidInput,
    NotConfigured,
    SendFailed,
    UpstreamRefused,
    UpstreamUnavailable,
)

log = logging.getLogger(__name__)

MAX_TEXT_CHARS = 4096  # WhatsApp's own limit for one text message


class HumanReplies:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        evolution: EvolutionClient | None,
        secrets: SecretBox,
        defaults: Behaviour,
    ):
        self._sessions = sessions
        self._evolution = evolution
        self._secrets = secrets
        self._defaults = defaults

    async def send(self, cliente_id: int, conversation_id: int, text: str) -> Message:
        """Send `text` to the chat's customer as the business's human; returns the recorded
        message. NotFound for another cliente's chat; 409 when the chat has no instance."""
        text = text.strip()
        if not text or len(text) > MAX_TEXT_CHARS:
            raise InvalidInput(f"text must have 1 to {MAX_TEXT_CHARS} characters")
        async with self._sessions() as session:
            conversation = await conversations_db.get_conversation(
                session, cliente_id, conversation_id
            )
            if conversation.instancia_id is None:
                raise Conflict("this chat's WhatsApp instance was deleted: nothing to send through")
            instancia = await instances_db.get_instance(
                session, cliente_id, conversation.instancia_id
            )
            cliente = await clientes_db.get_cliente(session, cliente_id)
            pause_s = self._defaults.overridden_by(clientes_db.overrides_of(cliente)).human_pause_s
            chat_jid, instance_name = conversation.chat_jid, instancia.instance_id
            token = self._secrets.open_optional(instancia.api_key_encrypted)
        if self._evolution is None:
            raise NotConfigured("Evolution is not configured (EVOLUTION_URL): nothing can be sent")
        context = {"cliente_id": cliente_id, "chat": chat_jid, "conversation_id": conversation_id}
        try:
            sent = await self._evolution.send_text(
                instance=instance_name, number=chat_jid, text=text, api_key=token
            )
        except SendFailed as e:
            log.warning("human send failed", extra={**context, "error": str(e)})
            if e.retryable:
                raise UpstreamUnavailable(f"Evolution could not send it now: {e}") from e
            raise UpstreamRefused(f"Evolution refused the message: {e}") from e
        async with self._sessions() as session:
            message_id = await inbox_db.insert_message(
                session,
                conversation_id=conversation_id,
                cliente_id=cliente_id,
                instance_id=instance_name,
                direction=Direction.OUTBOUND,
                author=Author.HUMAN,
                status=MessageStatus.ENVIADA,
                wa_message_id=sent.wa_message_id or f"console-{uuid.uuid4().hex}",
                text=text,
                message_type="conversation",
                wa_timestamp=None,
            )
            await inbox_db.pause(session, conversation_id, seconds=pause_s, by="human")
            await session.commit()
            log.info("human replied from the console; bot paused", extra=context)
            found = await session.get(Message, message_id) if message_id is not None else None
        if found is None:  # Evolution's echo was recorded first: it is the same message
            async with self._sessions() as session:
                rows = await conversations_db.list_messages(session, cliente_id, conversation_id)
            found = next(m for m in reversed(rows) if m.wa_message_id == sent.wa_message_id)
        return found

    async def close(self) -> None:
        if self._evolution is not None:
            await self._evolution.close()
