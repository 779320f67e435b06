"""Creating a cliente and changing its settings (the operator API, `/v1/me`, the console)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from engine.core.billing import initial_status
from engine.core.business_hours import BusinessHours
from engine.core.statuses import ClienteStatus
from engine.db import clientes as clientes_db
from engine.db.models import Cliente
from engine.errors import Conflict, InvalidInput
from engine.services.billing import StatusChange


async def create_cliente(
    session: AsyncSession,
    fields: dict[str, Any],
    *,
    status: ClienteStatus | None,
    trial_days: int,
) -> Cliente:
    """A new cliente: the status an operator gave, else ATIVO for a configured trial, else
    PENDENTE (not served until it pays). Not committed."""
    fields = canonical(fields)
    check_wait(fields.get("debounce_s"), fields.get("max_wait_s"))
    _refuse_excluindo(status)
    chosen = initial_status(requested=status, trial_days=trial_days)
    trial_ends_at = None
    if status is None and trial_days > 0:
        trial_ends_at = datetime.now(UTC) + timedelta(days=trial_days)
    return await clientes_db.create_cliente(
        session, **fields, status=chosen, trial_ends_at=trial_ends_at
    )


async def update_cliente(
    session: AsyncSession, cliente_id: int, changes: dict[str, Any]
) -> tuple[Cliente, StatusChange | None]:
    """Change a cliente's name, behaviour or (operators only) status. A status set by hand ends
    a trial: the operator's word stands until Stripe says otherwise. Not committed."""
    changes = canonical(changes)
    # Columns that always hold a value: null is refused here, not by a NOT NULL violation (500).
    nulled = [name for name in ("nome", "status", "group_replies") if changes.get(name, "") is None]
    if nulled:
        raise InvalidInput(f"{', '.join(nulled)} cannot be null")
    current = await clientes_db.get_cliente(session, cliente_id)
    before = current.status
    if before is ClienteStatus.EXCLUINDO:
        raise Conflict(
            f"cliente {cliente_id} is being deleted; finish it with DELETE /admin/clientes/"
            f"{cliente_id}?confirm={cliente_id}"
        )
    _refuse_excluindo(changes.get("status"))
    check_wait(
        changes.get("debounce_s", current.debounce_s),
        changes.get("max_wait_s", current.max_wait_s),
    )
    if "status" in changes:
        changes["trial_ends_at"] = None
    cliente = await clientes_db.update_cliente(session, cliente_id, **changes)
    change = StatusChange(cliente_id, before, cliente.status) if before != cliente.status else None
    return cliente, change


def _refuse_excluindo(status: Any) -> None:
    if status == ClienteStatus.EXCLUINDO:
        raise InvalidInput("EXCLUINDO is set by deleting the cliente (DELETE /admin/clientes/{id})")


def canonical(fields: dict[str, Any]) -> dict[str, Any]:
    """Validate a business-hours schedule and store it in its canonical form."""
    if fields.get("business_hours") is not None:
        try:
            fields["business_hours"] = BusinessHours.parse(fields["business_hours"]).to_json()
        except ValueError as e:
            raise InvalidInput(f"business_hours: {e}") from e
    return fields


def check_wait(debounce_s: float | None, max_wait_s: float | None) -> None:
    if debounce_s is not None and max_wait_s is not None and max_wait_s < debounce_s:
        raise InvalidInput("max_wait_s must be >= debounce_s")
