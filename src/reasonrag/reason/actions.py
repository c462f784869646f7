"""What the agent's actions do outside the model: search, verification verdicts, arithmetic."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from reasonrag.index.records import Hit, Retriever
from reasonrag.reason.calculate import CalcError, calculate
from reasonrag.reason.prompts import format_documents

_VERDICT_PATTERNS = (
    (
        "NOT ENOUGH INFO",
        r"not\s+enough(?:\s+info(?:rmation)?)?|insufficient\w*|not\s+supported|unsupported|unclear",
    ),
    ("REFUTED", r"\brefut\w*|\bcontradict\w*|\bfalse\b"),
    ("SUPPORTED", r"\bsupport\w*|\btrue\b|\byes\b|\bconfirm\w*"),
)


@dataclass(frozen=True)
class SearchResult:
    hits: tuple[Hit, ...]
    observation: str
    seconds: float


def run_search(retriever: Retriever, query: str, k: int, snippet_chars: int) -> SearchResult:
    """Search and format the observation; a failing retriever becomes an observation too."""
    started = time.perf_counter()
    try:
        hits = tuple(retriever.search(query, k))
    except Exception as exc:  # any backend failure (index files, remote services) is reported
        observation = f"Search failed ({type(exc).__name__}: {exc}). Try again or finish."
        return SearchResult((), observation, time.perf_counter() - started)
    return SearchResult(hits, format_documents(hits, snippet_chars), time.perf_counter() - started)


def query_key(query: str) -> str:
    """Queries differing only in case, spacing or punctuation count as the same query."""
    return " ".join(re.findall(r"\w+", query.lower()))


def parse_verdict(text: str) -> tuple[str, str]:
    """``(verdict, reason)``: the verdict whose wording appears first in ``text``; a judge
    that says nothing recognisable counts as NOT ENOUGH INFO."""
    found = [
        (m.start(), m.end(), verdict)
        for verdict, pattern in _VERDICT_PATTERNS
        if (m := re.search(pattern, text, re.IGNORECASE))
    ]
    if not found:
        return "NOT ENOUGH INFO", " ".join(text.split())[:200]
    _, end, verdict = min(found)
    reason = re.sub(r"^\W+", "", text[end:])
    return verdict, " ".join(reason.split())[:200]


def verify_observation(verdict: str, reason: str, documents: str) -> str:
    return f"Verdict: {verdict}" + (f" ({reason})" if reason else "") + f"\n{documents}"


def calculate_observation(expression: str) -> str:
    try:
        return f"Result: {calculate(expression)}"
    except CalcError as exc:
        return f"Calculation failed: {exc}."
