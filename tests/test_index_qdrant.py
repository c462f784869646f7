"""The Qdrant stores, in qdrant-client's embedded local mode: the same hits and scores as
the local faiss and BM25 stores, chosen by configuration alone, and reopened from disk."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import HashEmbedder
from reasonrag.config import RetrievalConfig, Settings, load_settings
from reasonrag.errors import ConfigError, IndexDamagedError
from reasonrag.index import Index
from reasonrag.index.store import QDRANT_FILE
from reasonrag.ingest.records import Document

pytest.importorskip("qdrant_client", reason="the Qdrant store needs qdrant-client")

QUERIES = [
    "Where was Oda Farrant born?",
    "smoked eel barges",
    "Tessaly Mill barley brewers",
    "the of and",  # stopwords only: no lexical match anywhere
]
EXTRA = Document(
    id="lighthouse.md",
    title="Kestrel Light",
    text="The Kestrel lighthouse stands on Varrow Point, lit in 1867.",
    source="lighthouse.md",
)


def _qdrant(settings: Settings, tmp_path: Path, **retrieval: object) -> Settings:
    cfg = settings.retrieval.model_copy(
        update={"store": "qdrant", "qdrant_path": tmp_path / "qdrant", **retrieval}
    )
    return settings.model_copy(update={"retrieval": RetrievalConfig.model_validate(cfg)})


def _build(settings: Settings, corpus_dir: Path, out: Path) -> Index:
    return Index.build([corpus_dir], settings, out, embedder=HashEmbedder(), progress=False)


@pytest.mark.parametrize("stage", ["dense", "sparse"])
def test_each_store_ranks_and_scores_as_the_local_one(
    settings: Settings, corpus_dir: Path, tmp_path: Path, stage: str
) -> None:
    local = _build(settings, corpus_dir, tmp_path / "local")
    remote = _build(_qdrant(settings, tmp_path), corpus_dir, tmp_path / "remote")
    if stage == "dense":
        vectors = HashEmbedder().embed(QUERIES, kind="query")
        expected, got = local.dense.search(vectors, 3), remote.dense.search(vectors, 3)
    else:
        expected, got = local.sparse.search(QUERIES, 3), remote.sparse.search(QUERIES, 3)
    np.testing.assert_array_equal(got[1], expected[1])
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-4, atol=1e-6)


def test_hybrid_search_finds_what_the_local_index_finds(
    settings: Settings, corpus_dir: Path, tmp_path: Path
) -> None:
    local = _build(settings, corpus_dir, tmp_path / "local")
    remote = _build(_qdrant(settings, tmp_path), corpus_dir, tmp_path / "remote")
    for query in QUERIES:
        assert [h.chunk_id for h in remote.search(query, 3)] == [
            h.chunk_id for h in local.search(query, 3)
        ]
    assert remote.manifest is not None
    assert not (tmp_path / "remote" / remote.manifest.generation / "dense.faiss").exists()


def test_reopen_and_update_keep_one_collection_per_live_generation(
    settings: Settings, corpus_dir: Path, tmp_path: Path
) -> None:
    cfg = _qdrant(settings, tmp_path, qdrant_collection="notes")
    folder = tmp_path / "idx"
    built = _build(cfg, corpus_dir, folder)
    first = built.search("Where was Oda Farrant born?", 2)
    reopened = Index.open(folder, cfg, embedder=HashEmbedder())
    assert reopened.search("Where was Oda Farrant born?", 2) == first
    with pytest.raises(ConfigError, match="keeps its stores in Qdrant"):
        Index.open(folder, settings, embedder=HashEmbedder())

    for _ in range(3):
        reopened.upsert([EXTRA], progress=False)
    assert reopened.search("Kestrel lighthouse Varrow", 1)[0].doc_id == "lighthouse.md"
    assert reopened.manifest is not None
    pointer = json.loads((folder / reopened.manifest.generation / QDRANT_FILE).read_text())
    client = reopened.dense.collection.client
    names = {c.name for c in client.get_collections().collections}
    # Four generations written; the current one's collection stays, and the one before it
    # for readers still on that generation.
    assert names == {pointer["collection"], pointer["previous"]}
    assert all(name.startswith("notes-") for name in names)
    assert Index.open(folder, cfg, embedder=HashEmbedder()).documents()["lighthouse.md"] == 1
    client.delete_collection(pointer["collection"])
    with pytest.raises(IndexDamagedError, match="no collection"):
        Index.open(folder, cfg, embedder=HashEmbedder())


def test_the_qdrant_store_needs_one_place_to_live(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"exactly one of retrieval\.qdrant_url"):
        load_settings(retrieval={"store": "qdrant"})
    with pytest.raises(ConfigError, match="exactly one"):
        load_settings(
            retrieval={"store": "qdrant", "qdrant_url": "http://q:6333", "qdrant_path": tmp_path}
        )
    assert load_settings(retrieval={"store": "qdrant", "qdrant_url": "http://q:6333"})
