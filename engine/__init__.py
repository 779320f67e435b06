"""Conversa's engine. The folders are the layers (their import rules: `tests/test_layers.py`):

- `core/`     pure rules: no Ray, web framework, database driver or HTTP client
- `actors/`   the Ray shells (conversation, retriever, reply worker, embedder, supervisor, router)
- `services/` the flows those shells run (inbox, reply pipeline, recovery, knowledge ingestion)
- `adapters/` the outside world (Evolution, the LLM, embeddings, Chroma, embedded PostgreSQL)
- `db/`       the schema and the query modules
- `config.py` (the one `Settings`), `errors.py` (one root), `logs.py`, `wiring.py` (settings →
  the frozen values actors and services are built with)
"""
