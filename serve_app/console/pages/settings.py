"""Configurações: persona, debounce and max wait, the weekly business-hours editor, the fixed
messages and the group policy. Validated by the same model as PATCH /v1/me and saved by the same
service; an error is shown beside its field and nothing is saved."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from engine.core.business_hours import DAYS
from engine.core.console import weekly_from_text, weekly_to_text
from engine.db import clientes as clientes_db
from engine.errors import InvalidInput
from engine.services import clientes
from serve_app.console.i18n import translate
from serve_app.console.web import CsrfChecked, CurrentViewer, Viewer, render
from serve_app.schemas import MeUpdate

router = APIRouter(prefix="/configuracoes")

TEXTS = (
    "system_prompt",
    "out_of_office_message",
    "dont_know_message",
    "finish_message",
    "media_unsupported_message",
)
NUMBERS = ("debounce_s", "max_wait_s", "human_pause_s")
DEFAULT_TIMEZONE = "America/Sao_Paulo"


@router.get("")
async def page(request: Request, viewer: CurrentViewer) -> Response:
    async with request.app.state.ctx.sessions() as db:
        cliente = await clientes_db.get_cliente(db, viewer.cliente_id)
    values: dict[str, Any] = {name: getattr(cliente, name) for name in (*TEXTS, *NUMBERS)}
    values["group_replies"] = cliente.group_replies.value
    hours = cliente.business_hours or {}
    values["timezone"] = hours.get("timezone", DEFAULT_TIMEZONE)
    values.update({f"day_{d}": text for d, text in weekly_to_text(hours).items()})
    return await _form(request, viewer, values, errors={}, saved=False)


async def _form(
    request: Request, viewer: Viewer, values: dict[str, Any], *, errors: dict[str, str], saved: bool
) -> Response:
    return await render(
        request,
        "settings.html",
        viewer,
        status_code=422 if errors else 200,
        page="settings",
        values={k: "" if v is None else v for k, v in values.items()},
        errors=errors,
        saved=saved,
        days=DAYS,
        texts=TEXTS,
        numbers=NUMBERS,
    )


@router.post("", dependencies=[CsrfChecked])
async def save(request: Request, viewer: CurrentViewer) -> Response:
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf"}
    changes, errors = _changes(values, viewer.lang)
    if not errors:
        try:
            async with request.app.state.ctx.sessions() as db:
                await clientes.update_cliente(db, viewer.cliente_id, changes)
                await db.commit()
        except InvalidInput as e:  # the cross-field checks (max wait vs debounce, hours)
            field = "business_hours" if "business_hours" in str(e) else "max_wait_s"
            errors[field] = str(e)
    if errors:
        return await _form(request, viewer, values, errors=errors, saved=False)
    return await _form(request, viewer, values, errors={}, saved=True)


def _changes(values: dict[str, str], lang: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The PATCH /v1/me body the form says (an empty box = back to the default), validated by
    its model; errors keyed by the form's field names."""
    errors: dict[str, str] = {}
    raw: dict[str, Any] = {name: values.get(name, "").strip() or None for name in TEXTS + NUMBERS}
    raw["group_replies"] = values.get("group_replies") or "off"
    try:
        raw["business_hours"] = weekly_from_text(
            values.get("timezone", ""), {d: values.get(f"day_{d}", "") for d in DAYS}
        )
    except ValueError as e:
        errors["business_hours"] = str(e)
        raw["business_hours"] = None
    try:
        body = MeUpdate.model_validate(raw)
    except ValidationError as e:
        for error in e.errors():
            name = str(error["loc"][0]) if error["loc"] else "form"
            errors.setdefault(name, _message(error, lang))
        return {}, errors
    return body.model_dump(exclude={"nome"}), errors


# Pydantic's error types the form can meet, said in the page's language (else Pydantic's words).
ERROR_KEYS = {
    "float_parsing": "error.number",
    "float_type": "error.number",
    "greater_than_equal": "error.min",
    "greater_than": "error.min",
    "less_than_equal": "error.max",
    "string_too_long": "error.too_long",
    "enum": "error.choice",
}


def _message(error: Any, lang: str) -> str:
    key = ERROR_KEYS.get(error["type"])
    if key is None:
        return str(error["msg"])
    limit = next(iter((error.get("ctx") or {}).values()), "")
    return translate(lang, key).format(limit=limit)
