"""Contextual hybrid retrieval: contexts, dense and sparse stores, fusion, rerank, storage."""

from reasonrag.errors import (
    EmptyIndexError,
    IndexDamagedError,
    IndexMismatchError,
    IndexStoreError,
    NotAnIndexError,
)
from reasonrag.index.index import BuildReport, Index
from reasonrag.index.records import Hit, Retriever

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
