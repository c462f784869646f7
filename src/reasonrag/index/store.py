"""The on-disk index: a manifest naming the current generation, and generation folders.

Every write builds a complete new generation folder, then swaps ``manifest.json`` with an
atomic rename. A reader therefore always sees one finished generation, and a killed write
leaves only a ``*.tmp`` folder that the next write removes.

An index deletes only what it wrote: every generation folder carries a marker file, and
only folders named ``gen-N`` (or ``gen-N.tmp``) holding that marker are ever removed. A
non-empty folder that holds neither an index nor leftovers of one is refused as a target.
One writer at a time holds ``.reasonrag.lock``; readers never take it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Iterator, Sequence, Sized
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from filelock import FileLock, Timeout
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from reasonrag import __version__
from reasonrag.config import RetrievalConfig
from reasonrag.embed.base import Vectors
from reasonrag.errors import ConfigError, IndexBusyError, IndexDamagedError, NotAnIndexError
from reasonrag.files import atomic_write_text, chmod_like_umask
from reasonrag.index.dense import FAISS_FILE, DenseStore, FaissStore
from reasonrag.index.sparse import SPARSE_DIR, BM25Store, SparseStore
from reasonrag.index.tokenize import Tokenizer
from reasonrag.ingest.records import Chunk

MANIFEST = "manifest.json"
CHUNKS_FILE = "chunks.parquet"
VECTORS_FILE = "vectors.npy"
QDRANT_FILE = "qdrant.json"
"""In a generation whose stores live in Qdrant (``index.qdrant``): the collection's name."""
LOCK_FILE = ".reasonrag.lock"
MARKER_FILE = ".reasonrag-generation"
"""Inside every generation folder: proof that the index wrote it and may delete it."""
FORMAT_VERSION = 2

_GENERATION = re.compile(r"gen-(\d{5,})(\.tmp)?")
_MANIFEST_TMP = re.compile(rf"\.{re.escape(MANIFEST)}\..*\.tmp")


class Manifest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    format_version: int = FORMAT_VERSION
    generation: str = Field(pattern=r"^gen-\d{5,}$")
    """Folder of the current generation, inside the index folder (never a path)."""
    files: dict[str, int]
    """Size in bytes of every file of the generation, checked when the index is opened."""
    embedder: str
    dim: int
    n_chunks: int
    n_documents: int
    context_mode: str
    context_generator: str | None
    tokenizer: Tokenizer = "words"
    """BM25 tokeniser; manifests written before it was a choice used words."""
    settings: dict[str, Any]
    """The embed, chunk and context sections the index was built with."""
    created_at: str
    reasonrag_version: str = __version__
    attachments: dict[str, dict[str, Any]] = {}
    """Folders other components stored in the generation (``clara``: compressed vectors),
    with what they were made by. A rewrite of the index drops them with the generation
    they describe."""


def rebuild_hint(folder: Path) -> str:
    return f"rebuild it with `reasonrag index SOURCES --out {folder}`"


def read_manifest(folder: Path) -> Manifest:
    path = folder / MANIFEST
    if not path.is_file():
        raise NotAnIndexError(f"{folder} is not a reasonrag index: {MANIFEST} is missing")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexDamagedError(
            f"index damaged: {path} is not a valid manifest ({exc}); {rebuild_hint(folder)}"
        ) from exc
    version = raw.get("format_version") if isinstance(raw, dict) else None
    if version != FORMAT_VERSION:
        raise IndexDamagedError(
            f"{path}: index format {version}, this reasonrag reads {FORMAT_VERSION}; "
            f"{rebuild_hint(folder)}"
        )
    try:
        return Manifest.model_validate(raw)
    except ValidationError as exc:
        raise IndexDamagedError(
            f"index damaged: {path} is not a valid manifest ({_first_error(exc)}); "
            f"{rebuild_hint(folder)}"
        ) from exc


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"


def generation_folder(folder: Path, manifest: Manifest) -> Path:
    """The current generation, with every file the manifest lists present at its size."""
    generation = folder / manifest.generation
    for name, size in sorted(manifest.files.items()):
        path = generation / name
        try:
            actual = path.stat().st_size
        except OSError:
            raise damaged(folder, path, "missing") from None
        if actual != size:
            raise damaged(folder, path, f"{actual} bytes, the manifest says {size}")
    return generation


def check_index(folder: Path) -> Manifest:
    """The manifest of the index at ``folder`` once its files are all present at their
    recorded sizes: a cheap check to run before loading any model."""
    manifest = read_manifest(folder)
    generation_folder(folder, manifest)
    return manifest


def damaged(folder: Path, path: Path, reason: str) -> IndexDamagedError:
    return IndexDamagedError(f"index damaged: {path} ({reason}); {rebuild_hint(folder)}")


# --- target folders and the writer lock ----------------------------------------------------


def _is_own_generation(path: Path) -> bool:
    return (
        _GENERATION.fullmatch(path.name) is not None
        and path.is_dir()
        and (path / MARKER_FILE).is_file()
    )


def _is_own_leftover(path: Path) -> bool:
    return (
        path.name == LOCK_FILE
        or _MANIFEST_TMP.fullmatch(path.name) is not None
        or _is_own_generation(path)
    )


def check_target(folder: Path) -> None:
    """Refuse to write an index into a file, or into a non-empty folder that holds no index
    (nor leftovers of an interrupted first build): its contents are the user's."""
    if folder.exists() and not folder.is_dir():
        raise NotAnIndexError(f"--out {folder} is a file; an index is written to a folder")
    if not folder.is_dir() or (folder / MANIFEST).is_file():
        return
    foreign = sorted(p.name for p in folder.iterdir() if not _is_own_leftover(p))
    if foreign:
        shown = ", ".join(foreign[:3]) + (" ..." if len(foreign) > 3 else "")
        raise NotAnIndexError(
            f"{folder} is not empty ({shown}) and is not a reasonrag index; "
            "write the index to a new or empty folder"
        )


@contextmanager
def writer_lock(
    folder: Path, *, wait: bool = True, on_wait: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Hold the index's writer lock. With ``wait`` a busy lock is waited for (after telling
    ``on_wait``); without, a busy lock raises ``IndexBusyError`` at once."""
    check_target(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(folder / LOCK_FILE, mode=0o666)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        message = f"another process is writing the index {folder}"
        if not wait:
            raise IndexBusyError(f"{message}; try again when it has finished") from None
        if on_wait is not None:
            on_wait(f"{message}; waiting for it to finish (Ctrl-C to stop)")
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


# --- reading -------------------------------------------------------------------------------


def _chunk_table(chunks: Sequence[Chunk], contexts: Sequence[str]) -> pa.Table:
    return pa.table(
        {
            "id": [c.id for c in chunks],
            "doc_id": [c.doc_id for c in chunks],
            "index": pa.array([c.index for c in chunks], pa.int32()),
            "title": [c.title for c in chunks],
            "text": [c.text for c in chunks],
            "context": list(contexts),
            "start": pa.array([c.start for c in chunks], pa.int64()),
            "end": pa.array([c.end for c in chunks], pa.int64()),
            "headings": pa.array([list(c.headings) for c in chunks], pa.list_(pa.string())),
            "source": [c.source for c in chunks],
        }
    )


def read_chunks(folder: Path, generation: Path, n_chunks: int) -> tuple[list[Chunk], list[str]]:
    path = generation / CHUNKS_FILE
    try:
        columns = pq.read_table(path).to_pydict()
        count = len(columns["id"])
        chunks = [
            Chunk(
                id=columns["id"][i],
                doc_id=columns["doc_id"][i],
                index=columns["index"][i],
                text=columns["text"][i],
                title=columns["title"][i],
                start=columns["start"][i],
                end=columns["end"][i],
                headings=tuple(columns["headings"][i]),
                source=columns["source"][i],
            )
            for i in range(count)
        ]
        contexts = list(columns["context"])
    except (OSError, pa.ArrowException, KeyError) as exc:
        raise damaged(folder, path, f"unreadable: {exc}") from exc
    if count != n_chunks:
        raise damaged(folder, path, f"{count} chunks, the manifest says {n_chunks}")
    return chunks, contexts


def read_vectors(folder: Path, generation: Path, n_chunks: int, dim: int) -> Vectors:
    path = generation / VECTORS_FILE
    try:
        vectors = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise damaged(folder, path, f"unreadable: {exc}") from exc
    if vectors.ndim != 2 or vectors.shape[0] != n_chunks or (n_chunks and vectors.shape[1] != dim):
        raise damaged(folder, path, f"shape {vectors.shape}, the manifest says ({n_chunks}, {dim})")
    return np.asarray(vectors, dtype=np.float32)


Stores = tuple[DenseStore, SparseStore]
_Loaded = TypeVar("_Loaded", bound=Sized)


def _qdrant() -> ModuleType:
    try:
        from reasonrag.index import qdrant
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"retrieval.store = 'qdrant' needs qdrant-client ({exc.name} is missing): "
            "pip install 'reasonrag[qdrant]'"
        ) from exc
    return qdrant


def build_stores(
    cfg: RetrievalConfig, vectors: Vectors, texts: Sequence[str], tokenizer: Tokenizer
) -> Stores:
    """The dense and sparse stores of a new generation, where ``retrieval.store`` says."""
    if cfg.store == "qdrant":
        qdrant = _qdrant()
        collection = qdrant.Collection.build(cfg, vectors, texts, tokenizer)
        return qdrant.QdrantDenseStore(collection), qdrant.QdrantSparseStore(collection, tokenizer)
    dense = FaissStore.build(vectors, hnsw_threshold=cfg.hnsw_threshold, threads=cfg.search_threads)
    return dense, BM25Store.build(texts, tokenizer)


def read_stores(
    folder: Path, generation: Path, n_chunks: int, cfg: RetrievalConfig, tokenizer: Tokenizer
) -> Stores:
    """The dense and sparse stores of ``generation``, checked against the chunk count: in
    the Qdrant collection the generation names, if it names one, else from its files."""
    pointer = generation / QDRANT_FILE
    if pointer.is_file():
        qdrant = _qdrant()
        client = qdrant.connect(cfg)  # outside the check: a missing setting is no damage
        collection = _checked(
            folder, pointer, n_chunks, lambda: qdrant.Collection.load(client, generation)
        )
        return qdrant.QdrantDenseStore(collection), qdrant.QdrantSparseStore(collection, tokenizer)
    dense = _checked(
        folder,
        generation / FAISS_FILE,
        n_chunks,
        lambda: FaissStore.load(generation, threads=cfg.search_threads),
    )
    sparse = _checked(
        folder,
        generation / SPARSE_DIR,
        n_chunks,
        lambda: BM25Store.load(generation, n_chunks, tokenizer),
    )
    return dense, sparse


def _checked(folder: Path, path: Path, n_chunks: int, load: Callable[[], _Loaded]) -> _Loaded:
    try:
        store = load()
    except (RuntimeError, ValueError, OSError, KeyError, EOFError) as exc:
        # faiss reports truncation as RuntimeError; bm25s garbage as JSON/numpy errors
        raise damaged(folder, path, f"unreadable: {exc}") from exc
    if len(store) != n_chunks:
        raise damaged(folder, path, f"{len(store)} rows, the manifest says {n_chunks}")
    return store


# --- writing -------------------------------------------------------------------------------


def _generation_number(path: Path) -> int:
    match = _GENERATION.fullmatch(path.name)
    return int(match.group(1)) if match else 0


def _remove_leftovers(folder: Path, keep: str) -> None:
    """Delete generations this index wrote other than ``keep``, and stale temporary files."""
    for path in folder.iterdir():
        if path.name == keep:
            continue
        if _is_own_generation(path):
            shutil.rmtree(path, ignore_errors=True)
        elif _MANIFEST_TMP.fullmatch(path.name):
            path.unlink(missing_ok=True)


def _file_sizes(generation: Path) -> dict[str, int]:
    return {
        p.relative_to(generation).as_posix(): p.stat().st_size
        for p in sorted(generation.rglob("*"))
        if p.is_file() and p.name != MARKER_FILE
    }


def write_generation(
    folder: Path,
    *,
    chunks: Sequence[Chunk],
    contexts: Sequence[str],
    vectors: Vectors,
    dense: DenseStore,
    sparse: SparseStore,
    manifest_fields: dict[str, Any],
) -> Manifest:
    """Write a complete generation and make it current; return the new manifest.

    The caller holds ``writer_lock(folder)``."""
    check_target(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.iterdir():
        if stale.name.endswith(".tmp") and _is_own_generation(stale):
            shutil.rmtree(stale)
    numbers = [_generation_number(p) for p in folder.iterdir() if _is_own_generation(p)]
    name = f"gen-{max(numbers, default=0) + 1:05d}"
    tmp = folder / f"{name}.tmp"
    tmp.mkdir()
    (tmp / MARKER_FILE).write_text(f"reasonrag index generation {name}\n")
    pq.write_table(_chunk_table(chunks, contexts), tmp / CHUNKS_FILE)
    np.save(tmp / VECTORS_FILE, np.asarray(vectors, dtype=np.float32))
    dense.save(tmp)
    sparse.save(tmp)
    _sync_folder(tmp)
    tmp.rename(folder / name)
    manifest = Manifest(
        generation=name,
        files=_file_sizes(folder / name),
        n_chunks=len(chunks),
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **manifest_fields,
    )
    atomic_write_text(folder / MANIFEST, json.dumps(manifest.model_dump(), indent=2) + "\n")
    _remove_leftovers(folder, keep=name)
    return manifest


def attach(
    folder: Path, name: str, write: Callable[[Path], None], info: dict[str, Any]
) -> Manifest:
    """Make current a copy of the current generation (files hard-linked, not copied) plus
    the folder ``name`` that ``write`` fills; a previous attachment of that name is
    replaced. The caller holds ``writer_lock(folder)``."""
    manifest = read_manifest(folder)
    current = generation_folder(folder, manifest)
    numbers = [_generation_number(p) for p in folder.iterdir() if _is_own_generation(p)]
    new = f"gen-{max(numbers, default=0) + 1:05d}"
    tmp = folder / f"{new}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    (tmp / MARKER_FILE).write_text(f"reasonrag index generation {new}\n")
    for relative in manifest.files:
        if relative.split("/", 1)[0] == name:
            continue
        target = tmp / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(current / relative, target)
        except OSError:  # another file system, or links not allowed: copy instead
            shutil.copy2(current / relative, target)
    write(tmp / name)
    _sync_folder(tmp)
    tmp.rename(folder / new)
    updated = manifest.model_copy(
        update={
            "generation": new,
            "files": _file_sizes(folder / new),
            "attachments": {**manifest.attachments, name: info},
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
    )
    atomic_write_text(folder / MANIFEST, json.dumps(updated.model_dump(), indent=2) + "\n")
    _remove_leftovers(folder, keep=new)
    return updated


def _sync_folder(generation: Path) -> None:
    """Flush every file of ``generation`` to disk and give them one mode, so the renamed
    folder is complete after a power loss and readable by whoever may read the index."""
    for path in generation.rglob("*"):
        chmod_like_umask(path, directory=path.is_dir())
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    chmod_like_umask(generation, directory=True)
