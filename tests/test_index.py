import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from conftest import HashEmbedder
from reasonrag.config import Settings
from reasonrag.errors import DocumentNotFoundError
from reasonrag.index import (
    EmptyIndexError,
    Index,
    IndexDamagedError,
    IndexMismatchError,
    NotAnIndexError,
)
from reasonrag.index import store as store_module
from reasonrag.ingest.records import Document


def _build(corpus_dir: Path, settings: Settings, out: Path, embedder: HashEmbedder) -> Index:
    return Index.build([corpus_dir], settings, out, embedder=embedder, progress=False)


def test_build_then_open_and_search(
    corpus_dir: Path, settings: Settings, hash_embedder: HashEmbedder, tmp_path: Path
) -> None:
    out = tmp_path / "idx"
    built = _build(corpus_dir, settings, out, hash_embedder)
    assert built.manifest is not None and built.manifest.n_documents == 3
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["embedder"] == "test:hash64"
    assert manifest["context_mode"] == "title"

    index = Index.open(out, settings, embedder=hash_embedder)
    assert len(index) == len(built)
    hits = index.search("smoked eel barges", k=3)
    assert hits[0].doc_id == "harbour.md"
    assert [h.rank for h in hits] == list(range(len(hits)))
    assert set(hits[0].stage_scores) >= {"dense", "sparse", "fusion"}
    # the title context makes a heading-less chunk findable by its document's name
    assert hits[0].context.startswith("Port Quillan")


def test_search_modes_and_weighted_fusion(
    corpus_dir: Path, settings: Settings, hash_embedder: HashEmbedder, tmp_path: Path
) -> None:
    _build(corpus_dir, settings, tmp_path / "idx", hash_embedder)
    for fusion in ("dense", "sparse", "weighted", "rrf"):
        tuned = settings.model_copy(
            update={"retrieval": settings.retrieval.model_copy(update={"fusion": fusion})}
        )
        index = Index.open(tmp_path / "idx", tuned, embedder=hash_embedder)
        timings: dict[str, float] = {}
        hits = index.search_many(["who rebuilt the mill in stone"], k=2, timings=timings)[0]
        assert hits[0].doc_id == "mill.md", fusion
        if fusion == "sparse":
            assert "dense" not in timings and "dense" not in hits[0].stage_scores
        if fusion in ("rrf", "weighted"):
            assert {"embed", "dense", "sparse", "fusion"} <= set(timings)


def test_sparse_ignores_chunks_without_matching_terms(
    corpus_dir: Path, settings: Settings, hash_embedder: HashEmbedder, tmp_path: Path
) -> None:
    index = _build(corpus_dir, settings, tmp_path / "idx", hash_embedder)
    _scores, rows = index.sparse.search(["zzzz qqqq"], 5)
    assert (rows == -1).all()


def test_upsert_and_delete_by_document_id(
    corpus_dir: Path, settings: Settings, hash_embedder: HashEmbedder, tmp_path: Path
) -> None:
    out = tmp_path / "idx"
    index = _build(corpus_dir, settings, out, hash_embedder)
    first_generation = index.manifest.generation if index.manifest else ""
    embedded_before = hash_embedder.texts_embedded
    index.upsert(
        [Document("notes.txt", "Notes", "Oda Farrant later moved to Velm.")], progress=False
    )
    # only the new document was embedded; the others' vectors were reused
    assert hash_embedder.texts_embedded - embedded_before == 1
    reopened = Index.open(out, settings, embedder=hash_embedder)
    notes = [c for c in reopened.chunks if c.doc_id == "notes.txt"]
    assert [c.text for c in notes] == ["Oda Farrant later moved to Velm."]
    assert reopened.manifest is not None and reopened.manifest.generation != first_generation
    assert not (out / first_generation).exists()

    assert reopened.delete(["mill.md"]) > 0
    again = Index.open(out, settings, embedder=hash_embedder)
    assert {c.doc_id for c in again.chunks} == {"harbour.md", "notes.txt"}
    assert all(h.doc_id != "mill.md" for h in again.search("mill barley", k=5))
    with pytest.raises(DocumentNotFoundError, match="no-such-doc"):
        again.delete(["harbour.md", "no-such-doc"])
    assert {c.doc_id for c in Index.open(out, settings, embedder=hash_embedder).chunks} == {
        "harbour.md",
        "notes.txt",
    }, "an unknown id removes nothing, not even the known ones beside it"


def test_opening_with_another_embedder_is_refused(
    corpus_dir: Path, settings: Settings, hash_embedder: HashEmbedder, tmp_path: Path
) -> None:
    _build(corpus_dir, settings, tmp_path / "idx", hash_embedder)
    with pytest.raises(IndexMismatchError, match="test:hash64"):
        Index.open(tmp_path / "idx", settings, embedder=HashEmbedder(name="test:other"))


def test_not_an_index_and_empty_input_are_clear_errors(
    settings: Settings, hash_embedder: HashEmbedder, tmp_path: Path
) -> None:
    with pytest.raises(NotAnIndexError, match=r"manifest\.json is missing"):
        Index.open(tmp_path, settings, embedder=hash_embedder)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(IndexDamagedError, match="not a valid manifest"):
        Index.open(tmp_path, settings, embedder=hash_embedder)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(EmptyIndexError, match="no indexable documents"):
        Index.build([empty], settings, tmp_path / "out", embedder=hash_embedder, progress=False)


def test_a_failed_write_leaves_the_previous_index_intact(
    corpus_dir: Path,
    settings: Settings,
    hash_embedder: HashEmbedder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "idx"
    index = _build(corpus_dir, settings, out, hash_embedder)
    before = (out / "manifest.json").read_text()

    def crash(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(store_module.np, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        index.delete(["mill.md"])
    monkeypatch.undo()
    assert (out / "manifest.json").read_text() == before
    assert list(out.glob("gen-*.tmp"))
    reopened = Index.open(out, settings, embedder=hash_embedder)
    assert {c.doc_id for c in reopened.chunks} == {"harbour.md", "mill.md", "notes.txt"}
    reopened.delete(["mill.md"])
    assert not list(out.glob("gen-*.tmp")), "the next write cleans up the aborted one"


class _Interrupting:
    """Wraps an embedder and dies after ``allowed`` calls, like a killed process."""

    def __init__(self, inner: HashEmbedder, allowed: int):
        self.inner, self.allowed = inner, allowed
        self.name, self.dim = inner.name, inner.dim

    def embed(self, texts: Sequence[str], *, kind: str = "document"):  # type: ignore[no-untyped-def]
        if self.allowed == 0:
            raise KeyboardInterrupt
        self.allowed -= 1
        return self.inner.embed(texts, kind=kind)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)


def test_interrupted_embedding_resumes_from_the_cache(
    corpus_dir: Path,
    settings: Settings,
    hash_embedder: HashEmbedder,
    tmp_path: Path,
) -> None:
    settings = settings.model_copy(
        update={"embed": settings.embed.model_copy(update={"batch_size": 2})}
    )
    out = tmp_path / "idx"
    with pytest.raises(KeyboardInterrupt):
        Index.build(
            [corpus_dir], settings, out, embedder=_Interrupting(hash_embedder, 1), progress=False
        )
    assert not (out / "manifest.json").exists()
    embedded = hash_embedder.texts_embedded
    assert embedded == 2
    fresh = HashEmbedder()
    index = Index.build([corpus_dir], settings, out, embedder=fresh, progress=False)
    assert fresh.texts_embedded == len(index) - embedded
