"""Sparse (BM25) search with bm25s, English stopwords and Snowball stemming."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import bm25s
import numpy as np
import Stemmer

from reasonrag.index.dense import Rows, Scores

SPARSE_DIR = "bm25"


class SparseStore(Protocol):
    """Lexical search over the chunk texts; rows are chunk positions, as in DenseStore."""

    def search(self, queries: Sequence[str], k: int) -> tuple[Scores, Rows]:
        """Best ``k`` rows per query, best first; rows that match no query term are -1."""
        ...

    def save(self, folder: Path) -> None: ...

    def __len__(self) -> int: ...


def terms(texts: Sequence[str], stemmer: Stemmer.Stemmer) -> list[list[str]]:
    """The indexed terms of each text: English stopwords dropped, Snowball stems. Every
    lexical store tokenises this way, so a query means the same to each of them."""
    return bm25s.tokenize(
        list(texts), stopwords="en", stemmer=stemmer, return_ids=False, show_progress=False
    )


class BM25Store:
    def __init__(self, retriever: bm25s.BM25, size: int):
        self._retriever = retriever
        self._size = size
        self._stemmer = Stemmer.Stemmer("english")

    @classmethod
    def build(cls, texts: Sequence[str]) -> BM25Store:
        retriever = bm25s.BM25()
        if texts:
            tokens = bm25s.tokenize(
                list(texts), stopwords="en", stemmer=Stemmer.Stemmer("english"), show_progress=False
            )
            retriever.index(tokens, show_progress=False)
        return cls(retriever, len(texts))

    @classmethod
    def load(cls, folder: Path, size: int) -> BM25Store:
        """The store saved in ``folder``; its length is the number of documents the saved
        scores cover, so a caller can check it against ``size``."""
        if size == 0:
            return cls(bm25s.BM25(), 0)
        retriever = bm25s.BM25.load(str(folder / SPARSE_DIR), show_progress=False)
        return cls(retriever, int(retriever.scores["num_docs"]))

    def save(self, folder: Path) -> None:
        if self._size:
            self._retriever.save(str(folder / SPARSE_DIR), show_progress=False)

    def __len__(self) -> int:
        return self._size

    def search(self, queries: Sequence[str], k: int) -> tuple[Scores, Rows]:
        k = min(k, self._size)
        if k == 0:
            empty = np.zeros((len(queries), 0))
            return empty.astype(np.float32), empty.astype(np.int64)
        tokens = terms(queries, self._stemmer)
        # n_threads=0 retrieves in the calling thread; any other value starts a pool per call,
        # which costs more than the retrieval itself for a handful of queries.
        rows, scores = self._retriever.retrieve(tokens, k=k, show_progress=False, n_threads=0)
        rows = np.where(scores > 0, rows, -1).astype(np.int64)
        return scores.astype(np.float32), rows
