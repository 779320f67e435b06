"""The Chroma store: it records the uuid of the cliente it was made for (another uuid never gets
it), and answers nearest-neighbour queries."""

from __future__ import annotations

import uuid
from pathlib import Path

from engine.adapters.chroma import OWNER_KEY, ChromaStore

VECTOR = [1.0, 0.0, 0.0]


def _open(tmp_path: Path, owner: str) -> ChromaStore:
    return ChromaStore.open("tenant_1", chroma_dir=str(tmp_path), chroma_url=None, owner=owner)


def test_a_new_cliente_with_the_same_id_never_inherits_the_old_vectors(tmp_path: Path) -> None:
    old, new = str(uuid.uuid4()), str(uuid.uuid4())
    store = _open(tmp_path, old)
    store.upsert([1, 2], [VECTOR, VECTOR], document_id=1, cliente_id=1)
    assert (store.count(), store.replaced) == (2, False)

    reopened = _open(tmp_path, old)
    assert (reopened.count(), reopened.replaced) == (2, False)

    inherited = _open(tmp_path, new)  # the database was reset: cliente 1 is someone else now
    assert (inherited.count(), inherited.replaced) == (0, True)
    assert inherited.nearest(VECTOR, 5) == []
    assert (tmp_path / "tenant_1" / OWNER_KEY).read_text() == new
    assert inherited.collection.metadata[OWNER_KEY] == new


def test_a_store_from_before_uuids_is_adopted(tmp_path: Path) -> None:
    owner = str(uuid.uuid4())
    store = _open(tmp_path, owner)
    store.upsert([1], [VECTOR], document_id=1, cliente_id=1)
    (tmp_path / "tenant_1" / OWNER_KEY).unlink()
    store.collection.modify(metadata={"legacy": "yes"})

    adopted = _open(tmp_path, owner)
    assert (adopted.count(), adopted.replaced) == (1, False)
    assert adopted.collection.metadata[OWNER_KEY] == owner


def test_drop_leaves_no_directory(tmp_path: Path) -> None:
    store = _open(tmp_path, str(uuid.uuid4()))
    store.upsert([1], [VECTOR], document_id=1, cliente_id=1)
    store.drop()
    assert not (tmp_path / "tenant_1").exists()
    store.drop()  # a resumed deletion: nothing left to drop is fine


def test_nearest_gives_every_stored_chunk_when_fewer_than_asked(tmp_path: Path) -> None:
    store = _open(tmp_path, str(uuid.uuid4()))
    assert store.nearest(VECTOR, 20) == []
    store.upsert([1, 2], [VECTOR, [0.0, 1.0, 0.0]], document_id=1, cliente_id=1)
    hits = store.nearest([1.0, 0.1, 0.0], 20)
    assert [chunk_id for chunk_id, _ in hits] == [1, 2]
    assert hits[0][1] > 0.99 and 0.05 < hits[1][1] < 0.15
