"""Contextual hybrid retrieval: contexts, dense and sparse stores, fusion, rerank, storage."""

from reasonrag.index.index import BuildReport, EmptyIndexError, Index, IndexMismatchError
from reasonrag.index.records import Hit, Retriever
from reasonrag.index.store import IndexFormatError

__all__ = [
    "BuildReport",
    "EmptyIndexError",
    "Hit",
    "Index",
    "IndexFormatError",
    "IndexMismatchError",
    "Retriever",
]
