"""Typed records of a reasoning run: steps, the trace they form, usage and the answer."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from reasonrag.files import append_lines
from reasonrag.index.records import Hit
from reasonrag.llm.base import Message

Status = Literal["finished", "forced", "failed"]
"""``finished``: the model called finish; ``forced``: it was asked once for a final answer
(step limit or unusable steps); ``failed``: no answer could be obtained."""

NO_ANSWER = "could not answer"


@dataclass(frozen=True)
class Citation:
    chunk_id: str
    doc_id: str
    title: str
    inferred: bool = False
    """True when the model cited nothing and the citation was chosen by the fallback rule
    (chunks of the last search containing the answer, else its top hit)."""


@dataclass(frozen=True)
class Step:
    """One Thought-Action-Observation step (or one generation of a single-pass method)."""

    index: int
    """1-based position in the trace."""
    action: str
    """search, finish, verify, calculate, rethink; ``invalid`` for an unreadable step,
    ``error`` for a generation failure."""
    argument: str = ""
    """The query (search), answer (finish), claim (verify) or expression (calculate)."""
    thought: str = ""
    hits: tuple[Hit, ...] = ()
    observation: str = ""
    """What the model was shown after the action (documents are already neutralised)."""
    raw: str = ""
    """The completion text as generated."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    """Generation plus action (retrieval) time."""
    discarded: bool = False
    """Set aside by a later ``rethink``: hidden from later prompts and not citable."""
    note: str = ""
    """Why control logic intervened (repeated query, re-ask, fallback, rejected answer)."""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["hits"] = [_hit_dict(hit) for hit in self.hits]
        return out


def _hit_dict(hit: Hit) -> dict[str, Any]:
    """Ids and scores only: the text is in the index and in the observation."""
    return {
        "chunk_id": hit.chunk_id,
        "doc_id": hit.doc_id,
        "title": hit.title,
        "score": hit.score,
        "rank": hit.rank,
        "stage_scores": dict(hit.stage_scores),
    }


Purpose = Literal["step", "reask", "verdict", "final", "answer"]
"""Why a generation was asked for: a Thought-Action ``step``, a step after an unreadable one
(``reask``), a verify action's ``verdict``, the ``final`` answer forced at the step limit,
or a single-pass method's ``answer``."""


@dataclass(frozen=True)
class Generation:
    """One call of the model exactly as made: every message of the prompt (the system
    prompt included) and the completion, so a saved trace is exact training data."""

    purpose: Purpose
    step: int
    """Index of the step the completion produced (1-based, as ``Step.index``)."""
    messages: tuple[Message, ...]
    completion: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["messages"] = [{"role": m.role, "content": m.content} for m in self.messages]
        return out


@dataclass(frozen=True)
class Trace:
    question: str
    method: str
    steps: tuple[Step, ...]
    generations: tuple[Generation, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "method": self.method,
            "steps": [s.to_dict() for s in self.steps],
            "generations": [g.to_dict() for g in self.generations],
        }


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    steps: int = 0
    latency_s: float = 0.0
    """Sum of step latencies; under batching, several questions share wall-clock time."""

    @classmethod
    def of(cls, steps: Iterable[Step]) -> Usage:
        steps = tuple(steps)
        return cls(
            prompt_tokens=sum(s.prompt_tokens for s in steps),
            completion_tokens=sum(s.completion_tokens for s in steps),
            steps=len(steps),
            latency_s=sum(s.latency_s for s in steps),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Outcome:
    """How a run ended, before it is wrapped with its trace."""

    answer: str
    status: Status
    citations: tuple[Citation, ...] = ()
    dropped_citations: tuple[str, ...] = ()
    """Ids the model cited that name no chunk retrieved (and kept) in this run."""


@dataclass(frozen=True)
class Answer:
    answer: str
    status: Status
    citations: tuple[Citation, ...]
    trace: Trace
    usage: Usage
    dropped_citations: tuple[str, ...] = ()

    @property
    def question(self) -> str:
        return self.trace.question

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "method": self.trace.method,
            "answer": self.answer,
            "status": self.status,
            "citations": [asdict(c) for c in self.citations],
            "dropped_citations": list(self.dropped_citations),
            "usage": self.usage.to_dict(),
            "trace": self.trace.to_dict(),
        }


def save_traces(path: Path | str, answers: Iterable[Answer]) -> None:
    """Append one JSON line per answer to ``path``.

    Each line goes out in a single ``O_APPEND`` write, so concurrent writers (parallel
    evaluation shards) never interleave inside a line."""
    append_lines(Path(path), [json.dumps(a.to_dict(), ensure_ascii=False) for a in answers])
