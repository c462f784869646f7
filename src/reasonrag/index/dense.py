"""Dense search over L2-normalised vectors with faiss (inner product = cosine)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import faiss
import numpy as np
import numpy.typing as npt

from reasonrag.embed.base import Vectors

Rows = npt.NDArray[np.int64]
Scores = npt.NDArray[np.float32]

FAISS_FILE = "dense.faiss"
HNSW_NEIGHBOURS = 32
HNSW_EF_SEARCH = 128


class DenseStore(Protocol):
    """Nearest-neighbour search over the chunk vectors; rows are chunk positions.

    A server engine (Qdrant, a pgvector table...) can stand here without any change to
    search or fusion code."""

    def search(self, queries: Vectors, k: int) -> tuple[Scores, Rows]:
        """Best ``k`` rows per query, best first; missing slots hold row -1."""
        ...

    def save(self, folder: Path) -> None: ...

    def __len__(self) -> int: ...


class FaissStore:
    def __init__(self, index: faiss.Index, *, threads: int = 1):
        self._index = index
        self.threads = threads

    @classmethod
    def build(cls, vectors: Vectors, *, hnsw_threshold: int, threads: int = 1) -> FaissStore:
        """Exact search for small collections; HNSW once exact search gets slow."""
        dim = vectors.shape[1]
        index: faiss.Index
        if len(vectors) >= hnsw_threshold:
            index = faiss.IndexHNSWFlat(dim, HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efSearch = HNSW_EF_SEARCH
        else:
            index = faiss.IndexFlatIP(dim)
        if len(vectors):
            index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        return cls(index, threads=threads)

    @classmethod
    def load(cls, folder: Path, *, threads: int = 1) -> FaissStore:
        return cls(faiss.read_index(str(folder / FAISS_FILE)), threads=threads)

    def save(self, folder: Path) -> None:
        faiss.write_index(self._index, str(folder / FAISS_FILE))

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def search(self, queries: Vectors, k: int) -> tuple[Scores, Rows]:
        k = min(k, len(self))
        if k == 0:
            empty = np.zeros((len(queries), 0))
            return empty.astype(np.float32), empty.astype(np.int64)
        # faiss keeps its thread count process-wide, so it is set for every search.
        faiss.omp_set_num_threads(self.threads)
        scores, rows = self._index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return scores, rows
