"""An index never deletes what it did not write, serialises its writers, and refuses to read
damaged files."""

from __future__ import annotations

import json
import stat
import threading
from pathlib import Path

import numpy as np
import pytest
from filelock import FileLock

from conftest import HashEmbedder
from reasonrag.config import Settings
from reasonrag.errors import IndexBusyError, IndexDamagedError, NotAnIndexError
from reasonrag.index import Index
from reasonrag.index.store import LOCK_FILE, MANIFEST
from reasonrag.ingest.records import Document


def _build(corpus: Path, settings: Settings, out: Path, embedder: HashEmbedder, **kw: object):
    return Index.build([corpus], settings, out, embedder=embedder, progress=False, **kw)  # type: ignore[arg-type]


def test_a_folder_that_is_not_an_index_is_refused_and_left_alone(
    corpus_dir: Path, settings: Settings, hash_embedder: HashEmbedder, tmp_path: Path
) -> None:
    mine = tmp_path / "photos"
    for name in ("gen-1", "gen-2024.backup", "gen-photos"):
        (mine / name).mkdir(parents=True)
        (mine / name / "keep.jpg").write_bytes(b"jpeg")
    with pytest.raises(NotAnIndexError, match=r"not empty \(gen-1, gen-2024\.backup"):
        _build(corpus_dir, settings, mine, hash_embedder)
    assert sorted(p.name for p in mine.iterdir()) == ["gen-1", "gen-2024.backup", "gen-photos"]
    assert hash_embedder.calls == 0, "refused before any work"


def test_out_naming_a_file_fails_before_any_work(
    corpus_dir: Path, settings: Settings, hash_embedder: HashEmbedder, tmp_path: Path
) -> None:
    target = tmp_path / "index.txt"
    target.write_text("mine")
    with pytest.raises(NotAnIndexError, match="is a file"):
        _build(corpus_dir, settings, target, hash_embedder)
    assert hash_embedder.calls == 0
    assert target.read_text() == "mine"


def test_writes_delete_only_generations_the_index_wrote(
    corpus_dir: Path, settings: Settings, hash_embedder: HashEmbedder, tmp_path: Path
) -> None:
    out = tmp_path / "idx"
    index = _build(corpus_dir, settings, out, hash_embedder)
    (out / "gen-99999").mkdir()
    (out / "gen-99999" / "notes.md").write_text("a user's folder that looks like ours")
    (out / f".{MANIFEST}.abc123.tmp").write_text("{half a manifest")
    index.delete(["mill.md"])
    assert (out / "gen-99999" / "notes.md").is_file()
    assert not (out / f".{MANIFEST}.abc123.tmp").exists(), "stale manifest temp cleaned"
    assert Index.open(out, settings, embedder=hash_embedder).manifest is not None


def test_an_interrupted_first_build_can_be_retried(
    corpus_dir: Path, settings: Settings, hash_embedder: HashEmbedder, tmp_path: Path
) -> None:
    out = tmp_path / "idx"
    out.mkdir()
    (out / LOCK_FILE).touch()
    leftover = out / "gen-00001.tmp"
    leftover.mkdir()
    (leftover / ".reasonrag-generation").write_text("reasonrag index generation gen-00001\n")
    index = _build(corpus_dir, settings, out, hash_embedder)
    assert index.manifest is not None and not leftover.exists()


def test_concurrent_builds_all_succeed_and_leave_one_readable_index(
    corpus_dir: Path, settings: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "idx"
    errors: list[BaseException] = []

    def build() -> None:
        try:
            _build(corpus_dir, settings, out, HashEmbedder())
        except BaseException as exc:  # collected: the assertion below names them
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    index = Index.open(out, settings, embedder=HashEmbedder())
    assert {c.doc_id for c in index.chunks} == {"harbour.md", "mill.md", "notes.txt"}
    generations = [p for p in out.iterdir() if p.name.startswith("gen-")]
    assert [p.name for p in generations] == [index.manifest.generation if index.manifest else ""]


def test_concurrent_updates_merge_instead_of_overwriting(
    corpus_dir: Path, settings: Settings, hash_embedder: HashEmbedder, tmp_path: Path
) -> None:
    out = tmp_path / "idx"
    _build(corpus_dir, settings, out, hash_embedder)
    # Every writer opens the index before any of them writes: each starts from a stale base.
    writers = [Index.open(out, settings, embedder=HashEmbedder()) for _ in range(4)]
    errors: list[BaseException] = []

    def upsert(i: int) -> None:
        try:
            writers[i].upsert([Document(f"new-{i}", f"New {i}", f"fresh text {i}")], progress=False)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=upsert, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    final = Index.open(out, settings, embedder=hash_embedder)
    assert {f"new-{i}" for i in range(4)} <= {c.doc_id for c in final.chunks}
    assert len({c.doc_id for c in final.chunks}) == 7


def test_a_busy_index_fails_fast_without_wait_and_readers_are_not_blocked(
    corpus_dir: Path, settings: Settings, hash_embedder: HashEmbedder, tmp_path: Path
) -> None:
    out = tmp_path / "idx"
    _build(corpus_dir, settings, out, hash_embedder)
    held = FileLock(out / LOCK_FILE)
    with held:
        reader = Index.open(out, settings, embedder=hash_embedder, wait=False)
        assert reader.search("smoked eel", k=1)[0].doc_id == "harbour.md"
        with pytest.raises(IndexBusyError, match="another process is writing"):
            reader.delete(["mill.md"])
        with pytest.raises(IndexBusyError):
            _build(corpus_dir, settings, out, hash_embedder, wait=False)
    assert reader.delete(["mill.md"]) > 0


def test_index_files_share_one_mode(
    corpus_dir: Path, settings: Settings, hash_embedder: HashEmbedder, tmp_path: Path
) -> None:
    out = tmp_path / "idx"
    _build(corpus_dir, settings, out, hash_embedder)
    modes = {
        p.relative_to(out).as_posix(): stat.S_IMODE(p.stat().st_mode)
        for p in out.rglob("*")
        if p.is_file() and p.name != LOCK_FILE
    }
    assert len(set(modes.values())) == 1, modes


# --- damaged files ---------------------------------------------------------------------------


@pytest.fixture
def built(corpus_dir: Path, settings: Settings, tmp_path: Path) -> Path:
    out = tmp_path / "idx"
    _build(corpus_dir, settings, out, HashEmbedder())
    return out


def _generation(out: Path) -> Path:
    return out / json.loads((out / MANIFEST).read_text())["generation"]


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize("name", ["vectors.npy", "dense.faiss", "chunks.parquet"])
def test_truncated_files_are_reported_as_damage(
    built: Path, settings: Settings, hash_embedder: HashEmbedder, name: str
) -> None:
    _truncate(_generation(built) / name)
    with pytest.raises(IndexDamagedError, match=rf"index damaged: .*{name}.*rebuild it with"):
        Index.open(built, settings, embedder=hash_embedder)


def test_garbage_of_the_right_size_is_reported_as_damage(
    built: Path, settings: Settings, hash_embedder: HashEmbedder
) -> None:
    for path in sorted((_generation(built) / "bm25").iterdir()):
        path.write_bytes(
            b"\x00garbage" * (path.stat().st_size // 8) + b"#" * (path.stat().st_size % 8)
        )
    with pytest.raises(IndexDamagedError, match=r"index damaged: .*bm25"):
        Index.open(built, settings, embedder=hash_embedder)


def test_vectors_of_the_wrong_shape_are_reported(
    built: Path, settings: Settings, hash_embedder: HashEmbedder
) -> None:
    manifest = json.loads((built / MANIFEST).read_text())
    path = _generation(built) / "vectors.npy"
    np.save(path, np.zeros((manifest["n_chunks"] - 1, manifest["dim"]), dtype=np.float32))
    manifest["files"]["vectors.npy"] = path.stat().st_size
    (built / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(IndexDamagedError, match=r"vectors\.npy \(shape"):
        Index.open(built, settings, embedder=hash_embedder)


@pytest.mark.parametrize("generation", ["../elsewhere", "/etc", "gen-1/../../x", "gen-x"])
def test_a_manifest_pointing_outside_the_index_is_refused(
    built: Path, settings: Settings, hash_embedder: HashEmbedder, generation: str
) -> None:
    manifest = json.loads((built / MANIFEST).read_text())
    manifest["generation"] = generation
    (built / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(IndexDamagedError, match=r"not a valid manifest \(generation"):
        Index.open(built, settings, embedder=hash_embedder)


def test_a_missing_generation_file_is_reported(
    built: Path, settings: Settings, hash_embedder: HashEmbedder
) -> None:
    (_generation(built) / "dense.faiss").unlink()
    with pytest.raises(IndexDamagedError, match=r"dense\.faiss \(missing\)"):
        Index.open(built, settings, embedder=hash_embedder)
