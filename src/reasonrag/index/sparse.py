"""Sparse (BM25) search with bm25s, English stopwords and Snowball stemming."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN

from reasonrag.index.dense import Rows, Scores
from reasonrag.index.tokenize import Tokenizer, split_identifiers

SPARSE_DIR = "bm25"
_STOPWORDS = frozenset(STOPWORDS_EN)


class SparseStore(Protocol):
    """Lexical search over the chunk texts; rows are chunk positions, as in DenseStore."""

    def search(self, queries: Sequence[str], k: int) -> tuple[Scores, Rows]:
        """Best ``k`` rows per query, best first; rows that match no query term are -1."""
        ...

    def save(self, folder: Path) -> None: ...

    def __len__(self) -> int: ...

    @property
    def tokenizer(self) -> Tokenizer:
        """How the store splits text into terms (recorded in the manifest)."""
        ...


def tokenize(
    texts: Sequence[str], tokenizer: Tokenizer, stemmer: Stemmer.Stemmer
) -> list[list[str]]:
    """The BM25 tokens of each text. ``identifiers`` keeps a compound identifier whole
    beside its parts, so an exact name matches best and a part still matches; as in
    ``words``, tokens are lowercased, stopwords and one-letter tokens are dropped, and
    alphabetic tokens are stemmed (``get_user_name`` or ``utf8`` whole are not)."""
    if tokenizer == "words":
        tokens = bm25s.tokenize(
            list(texts), stopwords="en", stemmer=stemmer, return_ids=False, show_progress=False
        )
        return [list(t) for t in tokens]
    out = []
    for text in texts:
        parts = [p for p in split_identifiers(text) if len(p) > 1 and p not in _STOPWORDS]
        out.append([p if not p.isalpha() else stemmer.stemWord(p) for p in parts])
    return out


class BM25Store:
    def __init__(self, retriever: bm25s.BM25, size: int, tokenizer: Tokenizer = "words"):
        self._retriever = retriever
        self._size = size
        self._stemmer = Stemmer.Stemmer("english")
        self.tokenizer: Tokenizer = tokenizer

    @classmethod
    def build(cls, texts: Sequence[str], tokenizer: Tokenizer = "words") -> BM25Store:
        store = cls(bm25s.BM25(), len(texts), tokenizer)
        if texts:
            tokens = tokenize(texts, tokenizer, store._stemmer)
            store._retriever.index(tokens, show_progress=False)
        return store

    @classmethod
    def load(cls, folder: Path, size: int, tokenizer: Tokenizer = "words") -> BM25Store:
        """The store saved in ``folder``; its length is the number of documents the saved
        scores cover, so a caller can check it against ``size``."""
        if size == 0:
            return cls(bm25s.BM25(), 0, tokenizer)
        retriever = bm25s.BM25.load(str(folder / SPARSE_DIR), show_progress=False)
        return cls(retriever, int(retriever.scores["num_docs"]), tokenizer)

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
        tokens = tokenize(queries, self.tokenizer, self._stemmer)
        # n_threads=0 retrieves in the calling thread; any other value starts a pool per call,
        # which costs more than the retrieval itself for a handful of queries.
        rows, scores = self._retriever.retrieve(tokens, k=k, show_progress=False, n_threads=0)
        rows = np.where(scores > 0, rows, -1).astype(np.int64)
        return scores.astype(np.float32), rows
