"""The on-disk index: a manifest naming the current generation, and generation folders.

Every write builds a complete new generation folder, then swaps ``manifest.json`` with an
atomic rename. A reader therefore always sees one finished generation, and a killed write
leaves only a ``*.tmp`` folder that the next write removes."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, ValidationError

from reasonrag import __version__
from reasonrag.embed.base import Vectors
from reasonrag.errors import IndexDamagedError, NotAnIndexError
from reasonrag.files import atomic_write_text
from reasonrag.index.dense import DenseStore
from reasonrag.index.sparse import SparseStore
from reasonrag.ingest.records import Chunk

MANIFEST = "manifest.json"
CHUNKS_FILE = "chunks.parquet"
VECTORS_FILE = "vectors.npy"
FORMAT_VERSION = 1


class Manifest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    format_version: int = FORMAT_VERSION
    generation: str
    embedder: str
    dim: int
    n_chunks: int
    n_documents: int
    context_mode: str
    context_generator: str | None
    settings: dict[str, Any]
    """The embed, chunk and context sections the index was built with."""
    created_at: str
    reasonrag_version: str = __version__


def read_manifest(folder: Path) -> Manifest:
    path = folder / MANIFEST
    if not path.is_file():
        raise NotAnIndexError(f"{folder} is not a reasonrag index: {MANIFEST} is missing")
    try:
        manifest = Manifest.model_validate_json(path.read_text())
    except ValidationError as exc:
        raise IndexDamagedError(f"{path} is not a valid manifest: {exc}") from exc
    if manifest.format_version != FORMAT_VERSION:
        raise IndexDamagedError(
            f"{path}: index format {manifest.format_version}, this reasonrag reads "
            f"{FORMAT_VERSION}; rebuild the index"
        )
    return manifest


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


def read_chunks(generation: Path) -> tuple[list[Chunk], list[str]]:
    path = generation / CHUNKS_FILE
    try:
        columns = pq.read_table(path).to_pydict()
    except (OSError, pa.ArrowInvalid) as exc:
        raise IndexDamagedError(f"cannot read {path}: {exc}") from exc
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
        for i in range(len(columns["id"]))
    ]
    return chunks, list(columns["context"])


def read_vectors(generation: Path) -> Vectors:
    return np.load(generation / VECTORS_FILE)


def _generation_number(name: str) -> int:
    return int(name.removeprefix("gen-").split(".")[0])


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
    """Write a complete generation and make it current; return the new manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("gen-*.tmp"):
        shutil.rmtree(stale)
    existing = [_generation_number(p.name) for p in folder.glob("gen-*") if p.is_dir()]
    name = f"gen-{max(existing, default=0) + 1:05d}"
    tmp = folder / f"{name}.tmp"
    tmp.mkdir()
    pq.write_table(_chunk_table(chunks, contexts), tmp / CHUNKS_FILE)
    np.save(tmp / VECTORS_FILE, np.asarray(vectors, dtype=np.float32))
    dense.save(tmp)
    sparse.save(tmp)
    tmp.rename(folder / name)
    manifest = Manifest(
        generation=name,
        n_chunks=len(chunks),
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **manifest_fields,
    )
    atomic_write_text(folder / MANIFEST, json.dumps(manifest.model_dump(), indent=2) + "\n")
    for old in folder.glob("gen-*"):
        if old.is_dir() and old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    return manifest
