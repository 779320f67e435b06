"""Secrets that actors need, kept out of their constructors' arguments.

An actor's arguments are pickled into its creation task, stored by Ray's control store and
copied for every actor made from them (every conversation actor, once per chat). So Settings
travel to actors *withheld*: each secret replaced by a marker. The process that starts Conversa
publishes the real values once in Ray's internal key-value store (GCS, namespace `conversa`),
and only an actor that truly needs them (reply workers, the supervisor, retrievers, the ingress)
reads them back when it starts. Conversation actors need none and get none.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

if TYPE_CHECKING:
    from engine.config import Settings

KV_NAMESPACE = "conversa"
WITHHELD = "<withheld: published in the Ray cluster's key-value store>"
# Settings that grant access to something: never in an actor's arguments.
SECRET_FIELDS = (
    "database_url",  # carries the PostgreSQL password
    "admin_token",
    "secrets_key",
    "openai_api_key",
    "evolution_api_key",
    "stripe_api_key",
    "stripe_webhook_secret",
)


class SecretsUnavailable(RuntimeError):
    """Raised in an actor when the secrets it needs were never published on this cluster."""


def _key(namespace: str) -> str:
    return f"secrets:{namespace}"


def _plain(value: Any) -> str | None:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return value if isinstance(value, str) else None


def publish(settings: Settings) -> None:
    """Put the secrets of `settings` in the cluster's key-value store (idempotent)."""
    from ray.experimental import internal_kv

    values = {name: _plain(getattr(settings, name)) for name in SECRET_FIELDS}
    internal_kv._internal_kv_put(
        _key(settings.ray_namespace), json.dumps(values), overwrite=True, namespace=KV_NAMESPACE
    )


def withheld(settings: Settings) -> Settings:
    """`settings` with every secret that is set replaced by a marker: safe to pass to actors."""
    update: dict[str, Any] = {}
    for name in SECRET_FIELDS:
        value = getattr(settings, name)
        if value is not None:
            update[name] = SecretStr(WITHHELD) if isinstance(value, SecretStr) else WITHHELD
    return settings.model_copy(update=update)


def database_url(namespace: str) -> str:
    """The database URL, read from the key-value store (for actors given no Settings)."""
    url = _published(namespace).get("database_url")
    if not url:
        raise SecretsUnavailable("no DATABASE_URL was published for this Ray namespace")
    return str(url)


def restored(settings: Settings) -> Settings:
    """`settings` (withheld) with the published secrets put back, in the actor that needs them."""
    withheld_names = [n for n in SECRET_FIELDS if _plain(getattr(settings, n)) == WITHHELD]
    if not withheld_names:
        return settings
    values = _published(settings.ray_namespace)
    update: dict[str, Any] = {}
    for name in withheld_names:
        value = values.get(name)
        if value is None:
            raise SecretsUnavailable(f"{name.upper()} was not published for this Ray namespace")
        update[name] = SecretStr(value) if isinstance(getattr(settings, name), SecretStr) else value
    return settings.model_copy(update=update)


def _published(namespace: str) -> dict[str, Any]:
    from ray.experimental import internal_kv

    raw = internal_kv._internal_kv_get(_key(namespace), namespace=KV_NAMESPACE)
    if raw is None:
        raise SecretsUnavailable(
            "Conversa's secrets were not published on this Ray cluster: start it with "
            "`conversa run` or the Serve config's app builder"
        )
    values: dict[str, Any] = json.loads(raw)
    return values
