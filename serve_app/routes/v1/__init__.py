"""The tenant API (`/v1`): what a business does with its own API key.

Every route is reached only with a cliente's key (`Authorization: Bearer cvk_…` or `X-API-Key`)
and only ever touches that cliente's rows: ids of another cliente's resources are 404, as if
they did not exist. Every error is `{"error": {"code", "message", "fields"?}}`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from serve_app.routes.v1 import account, contacts, conversations, instances, knowledge, reports
from serve_app.schemas import ErrorBody

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in {
        401: "no API key, or an unknown or revoked one",
        404: "no such resource for this cliente",
        422: "invalid parameters (see `fields`)",
        429: "over the API key's rate, or too many failed authentications (`Retry-After`)",
    }.items()
}

router = APIRouter(prefix="/v1", responses=ERRORS)
for module in (account, instances, knowledge, conversations, contacts, reports):
    router.include_router(module.router)
