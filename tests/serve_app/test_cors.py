"""CORS: only the origins in CORS_ALLOWED_ORIGINS get CORS headers; none configured, none sent."""

from __future__ import annotations

import pytest

from engine.config import Settings
from tests.support.inprocess_app import replica

pytestmark = pytest.mark.integration

PANEL = "https://painel.example.com"
PREFLIGHT = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "x-api-key"}


async def test_an_allowed_origin_gets_cors_headers_and_another_does_not(
    settings: Settings, own_database_url: str
) -> None:
    allowed = settings.model_copy(
        update={
            "database_url": own_database_url,
            "cors_allowed_origins": f"{PANEL}/, https://outro.example.com",
        }
    )
    async with replica(allowed) as http:
        preflight = await http.options("/v1/me", headers={"Origin": PANEL, **PREFLIGHT})
        simple = await http.get("/healthz", headers={"Origin": PANEL})
        stranger = await http.options(
            "/v1/me", headers={"Origin": "https://evil.example", **PREFLIGHT}
        )
        stranger_get = await http.get("/healthz", headers={"Origin": "https://evil.example"})

    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == PANEL
    assert "x-api-key" in preflight.headers["access-control-allow-headers"].lower()
    assert simple.headers["access-control-allow-origin"] == PANEL
    assert stranger.status_code == 400
    assert "access-control-allow-origin" not in stranger.headers
    assert "access-control-allow-origin" not in stranger_get.headers


async def test_no_origins_configured_means_no_cors_headers_at_all(
    settings: Settings, own_database_url: str
) -> None:
    assert settings.cors_allowed_origins == ""
    plain = settings.model_copy(update={"database_url": own_database_url})
    async with replica(plain) as http:
        preflight = await http.options("/v1/me", headers={"Origin": PANEL, **PREFLIGHT})
        simple = await http.get("/healthz", headers={"Origin": PANEL})

    assert not any(h.startswith("access-control-") for h in preflight.headers)
    assert not any(h.startswith("access-control-") for h in simple.headers)
    assert preflight.status_code == 405  # no route answers OPTIONS
