"""Synthetic (query, chunk) pairs made from the corpus alone."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from reasonrag.index.tokenize import identifier_parts
from reasonrag.ingest.records import Chunk

_DEFINED = re.compile(r"\b(?:def|class|function|func|fn|interface|struct)\s+([A-Za-z_]\w*)")
_DOCSTRING = re.compile(r'(?:"""|\'\'\'|/\*\*)\s*([^\n"\'*]{12,160})')
_SENTENCE = re.compile(r"[A-Z][^.!?\n]{15,200}[.!?](?=\s|$)")
HELD_OUT_SHARE = 0.2
"""Share of pairs kept out of training to measure what tuning changed."""


@dataclass(frozen=True)
class Pair:
    query: str
    row: int
    """Position of the chunk in the index."""


def chunk_queries(chunk: Chunk) -> list[str]:
    """What someone looking for this chunk might type: its innermost heading, the names it
    defines (split into words), its first docstring line and its first sentence."""
    queries = [chunk.headings[-1]] if chunk.headings else []
    for name in _DEFINED.findall(chunk.text):
        parts = identifier_parts(name)
        queries.append(" ".join(parts[1:]) if len(parts) > 1 else name)
    queries += [m.strip() for m in _DOCSTRING.findall(chunk.text)[:1]]
    queries += _SENTENCE.findall(chunk.text)[:1]
    return queries


def synthetic_pairs(chunks: Sequence[Chunk]) -> list[Pair]:
    """One pair per query that points at a single chunk: a query several chunks share (a
    repeated heading, say) would teach that the others are wrong answers."""
    rows: dict[str, set[int]] = {}
    for row, chunk in enumerate(chunks):
        for query in chunk_queries(chunk):
            rows.setdefault(" ".join(query.split()), set()).add(row)
    return [Pair(q, next(iter(r))) for q, r in rows.items() if len(r) == 1 and len(q) > 2]


def is_held_out(pair: Pair) -> bool:
    """A stable split by the query's hash, so a resumed run trains on the same pairs."""
    digest = hashlib.sha256(pair.query.encode()).digest()
    return digest[0] < 256 * HELD_OUT_SHARE


def split_pairs(pairs: Sequence[Pair]) -> tuple[list[Pair], list[Pair]]:
    """(training pairs, held-out pairs)."""
    return [p for p in pairs if not is_held_out(p)], [p for p in pairs if is_held_out(p)]
