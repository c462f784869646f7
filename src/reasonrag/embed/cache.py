"""A persistent embedding cache, so an interrupted indexing run never embeds a text twice."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from reasonrag.embed.base import Embedder, Vectors
from reasonrag.kvstore import SQLiteStore


class CachedEmbedder:
    """Wraps an embedder; vectors are keyed by (embedder name, kind, text hash)."""

    def __init__(self, inner: Embedder, path: Path, *, batch_size: int = 256):
        self.inner = inner
        self._batch_size = batch_size
        self._store: SQLiteStore[bytes] = SQLiteStore(path, "embeddings", "BLOB")
        self.hits = 0
        self.misses = 0

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def _key(self, text: str, kind: str) -> str:
        digest = hashlib.sha256(text.encode()).hexdigest()
        return f"{self.inner.name}|{kind}|{digest}"

    def embed(
        self,
        texts: Sequence[str],
        *,
        kind: str = "document",
        on_progress: Callable[[int], None] | None = None,
    ) -> Vectors:
        """Embed ``texts``; ``on_progress`` is told how many texts each step finished."""
        keys = [self._key(t, kind) for t in texts]
        found = self._lookup(keys)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        missing = [i for i, k in enumerate(keys) if k not in found]
        for i, k in enumerate(keys):
            if k in found:
                out[i] = found[k]
        self.hits += len(texts) - len(missing)
        self.misses += len(missing)
        if on_progress and len(texts) > len(missing):
            on_progress(len(texts) - len(missing))
        for start in range(0, len(missing), self._batch_size):
            batch = missing[start : start + self._batch_size]
            vectors = self.inner.embed([texts[i] for i in batch], kind=kind)
            self._store_vectors([(keys[i], vectors[j]) for j, i in enumerate(batch)])
            out[batch] = vectors
            if on_progress:
                on_progress(len(batch))
        return out

    def _lookup(self, keys: list[str]) -> dict[str, Vectors]:
        return {
            k: np.frombuffer(v, dtype=np.float32) for k, v in self._store.get_many(keys).items()
        }

    def _store_vectors(self, items: list[tuple[str, Vectors]]) -> None:
        self._store.put_many((k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in items)

    def close(self) -> None:
        self._store.close()
