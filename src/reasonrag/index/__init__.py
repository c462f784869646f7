"""Contextual hybrid retrieval: contexts, dense and sparse stores, fusion, rerank, storage.

``Hit`` and ``Retriever`` are light; ``Index`` (faiss, bm25s, pyarrow) loads on first use."""

from typing import TYPE_CHECKING

from reasonrag.errors import (
    EmptyIndexError,
    IndexDamagedError,
    IndexMismatchError,
    IndexStoreError,
    NotAnIndexError,
)
from reasonrag.index.records import Hit, Retriever
from reasonrag.lazy import lazy_exports

if TYPE_CHECKING:
    from reasonrag.index.index import BuildReport, Index

__all__ = [
    "BuildReport",
    "EmptyIndexError",
    "Hit",
    "Index",
    "IndexDamagedError",
    "IndexMismatchError",
    "IndexStoreError",
    "NotAnIndexError",
    "Retriever",
]

__getattr__ = lazy_exports(
    __name__, {"BuildReport": "reasonrag.index.index", "Index": "reasonrag.index.index"}
)
