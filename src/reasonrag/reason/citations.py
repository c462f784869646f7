"""Turn a model's final answer into an ``Outcome`` whose citations name retrieved chunks only."""

from __future__ import annotations

import re
from collections.abc import Sequence

from reasonrag.index.records import Hit
from reasonrag.reason.guard import mentions
from reasonrag.reason.records import NO_ANSWER, Citation, Outcome, Status

_BRACKETS = re.compile(r"\[([^\[\]\n]{1,200})\]")
_CHUNK_ID = re.compile(r"#\d+$")


def conclude(
    text: str,
    listed: Sequence[str],
    evidence: Sequence[Hit],
    last_search: Sequence[Hit],
    status: Status,
) -> Outcome:
    """Split bracketed ids off ``text``, keep those naming a chunk in ``evidence`` (ids listed
    separately in ``listed`` too), and drop the rest.

    When nothing valid was cited, cite the chunks of ``last_search`` whose text mentions the
    answer (as whole words), else its top hit, marked ``inferred``. An empty answer (or
    "could not answer") ends as ``failed``."""
    known = _lookup(evidence)
    answer, bracketed = _split_citations(text, known)
    cited: dict[str, Citation] = {}
    dropped: list[str] = []
    for cid in [*bracketed, *listed]:
        hit = known.get(cid)
        if hit is None:
            dropped.append(cid)
        else:
            cited.setdefault(hit.chunk_id, Citation(hit.chunk_id, hit.doc_id, hit.title))
    if not answer or answer.lower() == NO_ANSWER:
        return Outcome(NO_ANSWER, "failed", (), tuple(dict.fromkeys(dropped)))
    citations = tuple(cited.values()) or _inferred(answer, last_search)
    return Outcome(answer, status, citations, tuple(dict.fromkeys(dropped)))


def _lookup(evidence: Sequence[Hit]) -> dict[str, Hit]:
    """Chunk ids, and doc ids (mapped to their first retrieved chunk) for models that cite
    a document rather than a chunk."""
    known: dict[str, Hit] = {}
    for hit in evidence:
        known.setdefault(hit.doc_id, hit)
    for hit in evidence:
        known[hit.chunk_id] = hit
    return known


def _split_citations(text: str, known: dict[str, Hit]) -> tuple[str, list[str]]:
    """Bracket groups that name a known id or look like a chunk id are citations; other
    brackets are part of the answer."""
    ids: list[str] = []

    def take(match: re.Match[str]) -> str:
        parts = [p.strip() for p in re.split(r"[,;]", match.group(1)) if p.strip()]
        if not any(p in known or _CHUNK_ID.search(p) for p in parts):
            return match.group(0)
        ids.extend(parts)
        return " "

    answer = _BRACKETS.sub(take, text)
    return " ".join(answer.split()).strip(" \"'`").removesuffix(" .").strip(), ids


def _inferred(answer: str, last_search: Sequence[Hit]) -> tuple[Citation, ...]:
    containing = [h for h in last_search if mentions(h.text, answer)]
    chosen = containing or list(last_search[:1])
    return tuple(Citation(h.chunk_id, h.doc_id, h.title, inferred=True) for h in chosen)
