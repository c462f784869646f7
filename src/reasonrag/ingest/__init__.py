"""Turn files into documents and documents into token-bounded chunks."""

from reasonrag.ingest.chunk import (
    TokenCounter,
    chunk_document,
    chunk_documents,
    headings,
    whitespace_token_count,
)
from reasonrag.ingest.load import LoadReport, SkipHandler, Skipped, load_documents, normalize_text
from reasonrag.ingest.records import Chunk, Document

__all__ = [
    "Chunk",
    "Document",
    "LoadReport",
    "SkipHandler",
    "Skipped",
    "TokenCounter",
    "chunk_document",
    "chunk_documents",
    "headings",
    "load_documents",
    "normalize_text",
    "whitespace_token_count",
]
