"""WhatsApp instances a business connects itself: provisioned on Evolution, token sealed at rest.

Connecting a number is one call (`provision`): Conversa names the instance, generates its
webhook secret, creates it on Evolution with the webhook pointing at Conversa (the secret in its
headers), and keeps the instance token sealed with SECRETS_KEY. The QR code to scan comes back
at once and is refreshed by `qrcode.updated`; `connection.update` then moves the instance to
CONECTADA with its number (both handled by the inbox). Reconnect, state, logout, delete and
secret rotation go through Evolution too.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.adapters.evolution_instances import EvolutionInstances
from engine.adapters.qr import qr_png
from engine.adapters.secrets import SecretBox
from engine.config import Settings
from engine.core.auth import new_secret
from engine.core.statuses import InstanciaStatus
from engine.db import clientes as clientes_db
from engine.db import instances as instances_db
from engine.db.models import InstanciaWhatsApp
from engine.errors import Conflict, NotConfigured, UpstreamRefused

log = logging.getLogger(__name__)

_STATES = {"open": InstanciaStatus.CONECTADA, "close": InstanciaStatus.DESCONECTADA}


@dataclass(frozen=True)
class QrView:
    instancia_id: int
    status: InstanciaStatus
    code: str | None
    pairing_code: str | None


class Instances:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings):
        self._sessions = sessions
        self._secrets = SecretBox(settings.secrets_key.get_secret_value())
        self._webhook_url = f"{settings.base_url}/webhooks/evolution"
        self._evolution: EvolutionInstances | None = None
        if settings.evolution_url:
            key = settings.evolution_api_key
            self._evolution = EvolutionInstances(
                base_url=settings.evolution_url,
                global_key=key.get_secret_value() if key else None,
                timeout_s=settings.evolution_timeout_s,
            )

    # --- by hand (operators) -------------------------------------------------------------

    async def register(
        self,
        cliente_id: int,
        *,
        instance_id: str,
        numero: str | None,
        webhook_secret: str,
        api_key: str | None,
    ) -> InstanciaWhatsApp:
        """An instance made on Evolution by someone else, registered with its secret."""
        async with self._sessions() as session:
            instancia = await clientes_db.register_instance(
                session,
                cliente_id,
                instance_id=instance_id,
                numero=numero,
                webhook_secret=webhook_secret,
                api_key_encrypted=None if api_key is None else self._secrets.seal(api_key),
            )
            await session.commit()
        return instancia

    # --- provisioned by Conversa ---------------------------------------------------------

    async def provision(
        self, cliente_id: int, *, name: str | None = None, number: str | None = None
    ) -> InstanciaWhatsApp:
        """Create an instance on Evolution for the cliente, its webhook aimed at Conversa."""
        evolution = self._require_evolution()
        name = name or f"conversa-{cliente_id}-{secrets.token_hex(4)}"
        secret = new_secret()
        # The row first (committed): webhooks Evolution posts while creating it are recognised.
        async with self._sessions() as session:
            instancia = await clientes_db.register_instance(
                session,
                cliente_id,
                instance_id=name,
                numero=None,
                webhook_secret=secret,
                api_key_encrypted=None,
                provisioned=True,
            )
            await session.commit()
        try:
            created = await evolution.create(
                name, webhook_url=self._webhook_url, secret=secret, number=number
            )
        except Exception:
            async with self._sessions() as session:
                await instances_db.delete_instance(session, instancia.id)
                await session.commit()
            raise
        async with self._sessions() as session:
            await instances_db.set_token(
                session,
                instancia.id,
                api_key_encrypted=self._secrets.seal(created.token),
                qr_code=created.qr.code if created.qr else None,
                pairing_code=created.qr.pairing_code if created.qr else None,
            )
            await session.commit()
        log.info("instance provisioned", extra={"cliente_id": cliente_id, "instance": name})
        return await self.get(cliente_id, instancia.id)

    async def get(self, cliente_id: int, instancia_id: int) -> InstanciaWhatsApp:
        async with self._sessions() as session:
            return await instances_db.get_instance(session, cliente_id, instancia_id)

    async def list(self, cliente_id: int) -> list[InstanciaWhatsApp]:
        async with self._sessions() as session:
            await clientes_db.get_cliente(session, cliente_id)
            return await clientes_db.list_instances(session, cliente_id)

    async def qr(self, cliente_id: int, instancia_id: int) -> QrView:
        """The QR code to scan (and the pairing code); asks Evolution for one if none is kept.
        Conflict once the instance is connected: there is nothing to scan."""
        instancia = await self.get(cliente_id, instancia_id)
        if instancia.status is InstanciaStatus.CONECTADA:
            raise Conflict(f"instance {instancia_id} is connected: there is no QR code to scan")
        if instancia.qr_code is None:
            instancia = await self.reconnect(cliente_id, instancia_id)
        if instancia.qr_code is None:
            raise Conflict(f"Evolution has no QR code for instance {instancia_id} yet; try again")
        return QrView(instancia.id, instancia.status, instancia.qr_code, instancia.pairing_code)

    async def qr_png(self, cliente_id: int, instancia_id: int) -> bytes:
        view = await self.qr(cliente_id, instancia_id)
        assert view.code is not None
        return qr_png(view.code)

    async def reconnect(
        self, cliente_id: int, instancia_id: int, *, number: str | None = None
    ) -> InstanciaWhatsApp:
        """Ask Evolution to connect again: a new QR code, unless the phone is already there."""
        instancia = await self.get(cliente_id, instancia_id)
        connect = await self._require_evolution().connect(
            instancia.instance_id, token=self._token(instancia), number=number
        )
        async with self._sessions() as session:
            if connect.state == "open":
                await clientes_db.set_instance_state(
                    session, instancia.id, status=InstanciaStatus.CONECTADA, clear_qr=True
                )
            elif connect.qr is not None:
                await clientes_db.set_instance_state(
                    session,
                    instancia.id,
                    status=InstanciaStatus.PENDENTE,
                    qr_code=connect.qr.code,
                    pairing_code=connect.qr.pairing_code,
                )
            await session.commit()
        return await self.get(cliente_id, instancia_id)

    async def refresh_state(self, cliente_id: int, instancia_id: int) -> InstanciaWhatsApp:
        """Ask Evolution for the connection state and record it (open / close)."""
        instancia = await self.get(cliente_id, instancia_id)
        state = await self._require_evolution().connection_state(
            instancia.instance_id, token=self._token(instancia)
        )
        status = _STATES.get(state)
        if status is not None and status is not instancia.status:
            async with self._sessions() as session:
                await clientes_db.set_instance_state(
                    session,
                    instancia.id,
                    status=status,
                    clear_qr=status is InstanciaStatus.CONECTADA,
                )
                await session.commit()
        return await self.get(cliente_id, instancia_id)

    async def logout(self, cliente_id: int, instancia_id: int) -> InstanciaWhatsApp:
        """Disconnect the phone (the instance stays, ready for a new QR code)."""
        instancia = await self.get(cliente_id, instancia_id)
        await self._require_evolution().logout(instancia.instance_id, token=self._token(instancia))
        async with self._sessions() as session:
            await clientes_db.set_instance_state(
                session, instancia.id, status=InstanciaStatus.DESCONECTADA, clear_qr=True
            )
            await session.commit()
        return await self.get(cliente_id, instancia_id)

    async def delete(self, cliente_id: int, instancia_id: int) -> None:
        """Delete the instance on Evolution (if it is there) and in Conversa. Its conversations
        and their history stay."""
        instancia = await self.get(cliente_id, instancia_id)
        if self._evolution is not None:
            try:
                await self._evolution.delete(instancia.instance_id, token=self._token(instancia))
            except UpstreamRefused as e:  # not (or no longer) on Evolution: forget it here too
                log.warning(
                    "Evolution refused the delete; removing the instance from Conversa",
                    extra={
                        "cliente_id": cliente_id,
                        "instance": instancia.instance_id,
                        "error": str(e),
                    },
                )
        async with self._sessions() as session:
            await instances_db.delete_instance(session, instancia.id)
            await session.commit()
        log.info(
            "instance deleted",
            extra={"cliente_id": cliente_id, "instance": instancia.instance_id},
        )

    async def rotate_secret(self, cliente_id: int, instancia_id: int) -> InstanciaWhatsApp:
        """A new webhook secret, in Conversa and on Evolution together. The old one is accepted
        for a short overlap (posts already on their way, Evolution's retries); if Evolution
        cannot be told, the old one is put back and nothing changed."""
        evolution = self._require_evolution()
        instancia = await self.get(cliente_id, instancia_id)
        secret = new_secret()
        async with self._sessions() as session:
            old = await instances_db.rotate_secret(session, instancia.id, secret)
            await session.commit()
        try:
            await evolution.set_webhook(
                instancia.instance_id,
                token=self._token(instancia),
                url=self._webhook_url,
                secret=secret,
            )
        except Exception:
            async with self._sessions() as session:
                await instances_db.restore_secret(session, instancia.id, old)
                await session.commit()
            raise
        log.info(
            "webhook secret rotated",
            extra={"cliente_id": cliente_id, "instance": instancia.instance_id},
        )
        return await self.get(cliente_id, instancia_id)

    def _token(self, instancia: InstanciaWhatsApp) -> str | None:
        return self._secrets.open_optional(instancia.api_key_encrypted)

    def _require_evolution(self) -> EvolutionInstances:
        if self._evolution is None:
            raise NotConfigured("Evolution is not configured: set EVOLUTION_URL")
        return self._evolution

    async def close(self) -> None:
        if self._evolution is not None:
            await self._evolution.close()
