"""Turn files into documents and documents into token-bounded chunks.

Records and the chunker are light; the loaders (pypdf) load on first use."""

from typing import TYPE_CHECKING

from reasonrag.ingest.chunk import (
    MAX_CHARS_PER_TOKEN,
    Progress,
    TokenCounter,
    chunk_document,
    chunk_documents,
    headings,
    whitespace_token_count,
)
from reasonrag.ingest.records import Chunk, Document
from reasonrag.lazy import lazy_exports

if TYPE_CHECKING:
    from reasonrag.ingest.load import (
        LoadReport,
        SkipHandler,
        Skipped,
        load_documents,
        normalize_text,
    )

__all__ = [
    "MAX_CHARS_PER_TOKEN",
    "Chunk",
    "Document",
    "LoadReport",
    "Progress",
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

__getattr__ = lazy_exports(
    __name__,
    dict.fromkeys(
        ("LoadReport", "SkipHandler", "Skipped", "load_documents", "normalize_text"),
        "reasonrag.ingest.load",
    ),
)
