"""Compressed documents stored beside an index: every chunk's memory vectors and a FAISS
index over them, in the ``clara`` attachment of the index's current generation (written
atomically with it, dropped with it when the index is rewritten).

Encoding is resumable: finished batches wait in the cache until the whole index is done.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reasonrag.errors import IndexMismatchError, NotFoundError
from reasonrag.index import Index
from reasonrag.latent.data import compressor_text
from reasonrag.latent.model import ClaraModel
from reasonrag.progress import progress_task

ATTACHMENT = "clara"
VECTORS = "vectors.npy"
FAISS = "latent.faiss"


def flat(vectors: torch.Tensor | np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Unit-length flattened vectors: their inner product is the model's cosine score."""
    array = np.asarray(vectors, dtype=np.float32).reshape(len(vectors), -1)
    return array / np.maximum(np.linalg.norm(array, axis=1, keepdims=True), 1e-12)


def encode_index(
    index: Index,
    model: ClaraModel,
    model_id: str,
    cache_dir: Path,
    *,
    batch: int = 8,
    progress: bool = True,
) -> Path:
    """Compress every chunk of ``index`` and attach the vectors to it."""
    import faiss

    assert index.manifest is not None, "an index on disk"
    key = hashlib.sha256(
        f"{index.folder.resolve()}|{index.manifest.generation}|{model_id}".encode()
    )
    scratch = cache_dir / "clara-encode" / key.hexdigest()[:16]
    scratch.mkdir(parents=True, exist_ok=True)
    texts = [compressor_text(c) for c in index.chunks]
    starts = range(0, len(texts), batch)
    done = {int(p.stem.split("-")[1]) for p in scratch.glob("part-*.npy")}
    with progress_task("Compressing chunks", len(texts), enabled=progress) as advance:
        advance(sum(min(batch, len(texts) - s) for s in starts if s in done))
        for start in starts:
            if start in done:
                continue
            with torch.no_grad():
                vectors = model.compress(texts[start : start + batch]).vectors
            part = scratch / f"part-{start:08d}.npy"
            np.save(part.with_suffix(".tmp.npy"), vectors.numpy().astype(np.float16))
            part.with_suffix(".tmp.npy").rename(part)
            advance(len(vectors))
    parts = [np.load(scratch / f"part-{s:08d}.npy") for s in starts]
    stacked = (
        np.concatenate(parts)
        if parts
        else np.zeros((0, model.config.memory_slots, model.hidden_size), np.float16)
    )

    def write(folder: Path) -> None:
        folder.mkdir()
        np.save(folder / VECTORS, stacked)
        search = faiss.IndexFlatIP(stacked[0].size if len(stacked) else 1)
        if len(stacked):
            search.add(flat(stacked))
        faiss.write_index(search, str(folder / FAISS))

    info = {
        "model": model_id,
        "slots": model.config.memory_slots,
        "compression_rate": model.config.compression_rate,
        "chunks": len(stacked),
    }
    where = index.attach(ATTACHMENT, write, info)
    for part in scratch.glob("part-*.npy"):
        part.unlink()
    scratch.rmdir()
    return where


@dataclass
class LatentStore:
    """The attachment as read back: vectors by chunk row, and search over them."""

    vectors: np.ndarray[Any, Any]
    search_index: Any
    info: dict[str, Any]

    @classmethod
    def open(cls, index: Index, model_id: str) -> LatentStore:
        import faiss

        found = index.attachment(ATTACHMENT)
        if found is None:
            raise NotFoundError(
                f"{index.folder} has no compressed vectors; run `reasonrag clara encode "
                f"{index.folder} --model MODEL`"
            )
        folder, info = found
        if info.get("model") != model_id:
            raise IndexMismatchError(
                f"{index.folder} was encoded with CLaRa model {info.get('model')!r}, not "
                f"{model_id!r}; run `reasonrag clara encode` again with this model"
            )
        vectors = np.load(folder / VECTORS, mmap_mode="r")
        return cls(vectors, faiss.read_index(str(folder / FAISS)), info)

    def search(
        self, queries: torch.Tensor, k: int
    ) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """(scores, rows) of the best ``k`` chunks per query, best first."""
        scores, rows = self.search_index.search(flat(queries.detach()), min(k, len(self.vectors)))
        return scores, rows

    def rows(self, rows: list[int]) -> torch.Tensor:
        return torch.from_numpy(np.asarray(self.vectors[rows], dtype=np.float32))
