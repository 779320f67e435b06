"""Deleting a cliente and everything it owns, in steps that can be run again after a failure.

1. The cliente becomes EXCLUINDO (never served again; Stripe cannot bring it back) and its API
   keys are deleted, in one transaction: from here on nothing of it is reachable by its
   programs, and a deletion interrupted later is resumed by asking again.
2. Its live conversation actors drop their memory and leave.
3. Its WhatsApp instances are deleted on Evolution and in Conversa (Evolution unreachable stops
   here with a 502; ask again).
4. Its retriever deletes its documents, chunks, Chroma collection and directory, and leaves.
5. Its rows go (every table is keyed by the cliente, with cascades) with the idempotency keys of
   its instances, and an audit record says who deleted it and how much, in one transaction.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.actors.retriever import RetrieverClient, RetrieverConfig
from engine.db import clientes as clientes_db
from engine.db import privacy as privacy_db
from engine.services.instances import Instances
from engine.services.privacy import forget_actors

log = logging.getLogger(__name__)

DROP_TIMEOUT_S = 120.0


class ClienteDeletion:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        instances: Instances,
        retriever: RetrieverConfig,
        namespace: str,
    ):
        self._sessions = sessions
        self._instances = instances
        self._retriever = retriever
        self._namespace = namespace

    async def delete(self, cliente_id: int, *, actor: str) -> dict[str, Any]:
        """Run (or resume) every step; returns what was deleted. NotFound once it is done."""
        async with self._sessions() as session:
            cliente = await clientes_db.get_cliente(session, cliente_id)
            resumed = cliente.status.value == "EXCLUINDO"
            await privacy_db.begin_cliente_deletion(session, cliente_id)
            session_ids = await privacy_db.session_ids(session, cliente_id)
            instances = await privacy_db.instances(session, cliente_id)
            await session.commit()
        log.info("deleting cliente", extra={"cliente_id": cliente_id, "resumed": resumed})

        forgotten = await forget_actors(session_ids, namespace=self._namespace)
        for instancia_id, _ in instances:
            await self._instances.delete(cliente_id, instancia_id)
        documents = await RetrieverClient(cliente_id, self._retriever).call(
            "drop", timeout_s=DROP_TIMEOUT_S
        )

        async with self._sessions() as session:
            counts = await privacy_db.delete_cliente_rows(
                session, cliente_id, [name for _, name in instances]
            )
            counts |= {
                "instances": len(instances),
                "documents": documents,
                "actors_forgotten": forgotten,
            }
            await privacy_db.add_audit(
                session,
                actor=actor,
                action="cliente.delete",
                cliente_id=cliente_id,
                subject=None,
                detail={**counts, "resumed": resumed},
            )
            await session.commit()
        log.info("cliente deleted", extra={"cliente_id": cliente_id, **counts})
        return {"cliente_id": cliente_id, "resumed": resumed, **counts}
