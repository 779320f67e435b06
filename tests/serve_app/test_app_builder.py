"""What the Serve config's builder refuses before it deploys anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import Settings


def test_settings_from_args_refuses_unknown_names_and_a_missing_database_url(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from serve_app.deployment import settings_from_args

    monkeypatch.chdir(tmp_path)  # no developer's .env
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("INGRESS_REPLICAS", "3")
    with pytest.raises(ValueError, match="idle_ttl"):
        settings_from_args({"idle_ttl": 5, "database_url": "postgresql://h/db"})
    with pytest.raises(ValueError, match="DATABASE_URL"):
        settings_from_args({})
    settings = settings_from_args({"database_url": "postgresql://h/db", "idle_ttl_s": 5})
    assert (settings.idle_ttl_s, settings.ingress_replicas) == (5, 3)


@pytest.mark.parametrize(
    ("nodes", "chroma_url", "refused"),
    [(1, None, False), (2, None, True), (2, "http://chroma:8000", False), (5, None, True)],
)
def test_more_than_one_node_needs_a_chroma_server(
    nodes: int, chroma_url: str | None, refused: bool
) -> None:
    from serve_app.deployment import refuse_local_knowledge_on_many_nodes

    settings = Settings(chroma_url=chroma_url)
    if refused:
        with pytest.raises(ValueError, match="CHROMA_URL"):
            refuse_local_knowledge_on_many_nodes(settings, node_count=nodes)
    else:
        refuse_local_knowledge_on_many_nodes(settings, node_count=nodes)
