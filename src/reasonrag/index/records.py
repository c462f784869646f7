"""What a search returns, and the protocol anything searchable implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Hit:
    chunk_id: str
    doc_id: str
    title: str
    text: str
    """The chunk as written in the document."""
    context: str
    """The situating context that was prepended for indexing ("" when none)."""
    score: float
    """Score of the last stage that ranked this hit (fusion or rerank)."""
    rank: int
    """0-based position in the final list."""
    stage_scores: dict[str, float] = field(default_factory=dict, compare=False, hash=False)
    """Score from each stage that saw the hit: ``dense``, ``sparse``, ``fusion``, ``rerank``."""


@runtime_checkable
class Retriever(Protocol):
    def search(self, query: str, k: int = 10) -> list[Hit]: ...
