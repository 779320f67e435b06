"""LGPD requests about one contact of a cliente: export everything held about them, or erase it.

An erasure deletes the rows in one transaction, records who asked (never what was erased), then
tells the live conversation actors of the deleted conversations to drop their memory and leave:
a later message from the same person starts a clean conversation. Exports are audited too.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import ray
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.actors.calls import GONE
from engine.core.contacts import contact_jid, masked
from engine.db import clientes as clientes_db
from engine.db import privacy as privacy_db
from engine.errors import InvalidInput, NotFound

log = logging.getLogger(__name__)

OPERATOR = "operator"
FORGET_TIMEOUT_S = 10.0


def api_key_actor(api_key_id: int) -> str:
    """How the audit log names a business's program: by its key's id, never the key."""
    return f"api_key:{api_key_id}"


class ContactPrivacy:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, namespace: str, history_turns: int
    ):
        self._sessions = sessions
        self._namespace = namespace
        self._history_turns = history_turns

    async def export(self, cliente_id: int, contact: str, *, actor: str) -> dict[str, Any]:
        """Everything the cliente holds about `contact` (a phone number or a JID), as JSON."""
        jid = _parse(contact)
        async with self._sessions() as session:
            await clientes_db.get_cliente(session, cliente_id)
            jids = await privacy_db.contact_jids(session, cliente_id, jid)
            data = await privacy_db.export_contact(
                session, cliente_id, jids, history_turns=self._history_turns
            )
            if not data["conversations"] and not data["lid_pairs"]:
                raise NotFound(_nothing_held(cliente_id))
            await privacy_db.add_audit(
                session,
                actor=actor,
                action="contact.export",
                cliente_id=cliente_id,
                subject=masked(jids),
                detail={"conversations": len(data["conversations"])},
            )
            await session.commit()
        return {"cliente_id": cliente_id, "contact": jid, **data}

    async def erase(self, cliente_id: int, contact: str, *, actor: str) -> dict[str, int]:
        """Delete every row about `contact`, then make its live actors forget; returns counts."""
        jid = _parse(contact)
        async with self._sessions() as session:
            await clientes_db.get_cliente(session, cliente_id)
            jids = await privacy_db.contact_jids(session, cliente_id, jid)
            counts, session_ids = await privacy_db.erase_contact(session, cliente_id, jids)
            if not counts["conversations"] and not counts["lid_pairs"]:
                raise NotFound(_nothing_held(cliente_id))
            await privacy_db.add_audit(
                session,
                actor=actor,
                action="contact.erase",
                cliente_id=cliente_id,
                subject=masked(jids),
                detail=counts,
            )
            await session.commit()
        counts["actors_forgotten"] = await forget_actors(session_ids, namespace=self._namespace)
        log.info(
            "contact erased",
            extra={"cliente_id": cliente_id, "actor": actor, **counts},
        )
        return counts


async def forget_actors(session_ids: list[str], *, namespace: str) -> int:
    """Tell the live conversation actors named `session_ids` to drop their state and leave;
    returns how many there were."""

    async def forget(name: str) -> bool:
        try:
            handle = ray.get_actor(name, namespace=namespace)
        except ValueError:  # not live: nothing held in memory
            return False
        try:
            await asyncio.wait_for(handle.forget.remote(), FORGET_TIMEOUT_S)
        except GONE:
            return False
        except TimeoutError:
            # Stuck: kill it, memory and all (its rows are gone already).
            log.warning("actor did not forget in time; killed", extra={"session_id": name})
            ray.kill(handle, no_restart=True)
        log.info("actor told to forget", extra={"session_id": name})
        return True

    return sum(await asyncio.gather(*(forget(n) for n in session_ids)))


def _parse(contact: str) -> str:
    jid = contact_jid(contact)
    if jid is None:
        raise InvalidInput(
            "the contact must be a phone number (digits, optionally with + and punctuation) or a "
            "WhatsApp JID ending in @s.whatsapp.net or @lid"
        )
    return jid


def _nothing_held(cliente_id: int) -> str:
    return f"cliente {cliente_id} holds no data about this contact"
