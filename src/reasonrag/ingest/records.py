"""Documents and chunks as loaded from disk."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Document:
    id: str
    title: str
    text: str
    source: str = ""
    """Path (or path#line for JSONL) the document came from."""
    metadata: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Chunk:
    id: str
    """``{doc_id}#{index}``: stable while the document's text is unchanged."""
    doc_id: str
    index: int
    text: str
    title: str
    start: int
    """Character offsets of ``text`` in the document."""
    end: int
    headings: tuple[str, ...] = ()
    """Markdown/HTML heading path above the chunk, outermost first."""
    source: str = ""
