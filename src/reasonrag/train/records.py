"""Training records: ReaRAG reasoning chains and RARE reasoning-over-documents examples.

Both render to the exact chat messages inference sends (the agent's and the RARE method's
own prompt functions build them), and both say which messages the loss is computed on:
the assistant turns, i.e. the Thought/Action steps of a chain and the ``<think>`` reasoning
plus ``<answer>`` of a RARE example. Everything else (instructions, question, documents,
observations) is context.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from reasonrag.errors import DatasetError
from reasonrag.files import append_lines, complete_lines, cut_partial_line
from reasonrag.llm.base import Message

Source = Literal["teacher", "oracle"]
"""``teacher``: written by a model running the method; ``oracle``: assembled from the
dataset's gold structure (decompositions, evidence triples, supporting facts) over real
index searches."""
Kind = Literal["rearag", "rare"]


def _messages_from(rows: Iterable[dict[str, str]]) -> tuple[Message, ...]:
    return tuple(Message(r["role"], r["content"]) for r in rows)  # type: ignore[arg-type]


def _messages_to(messages: Iterable[Message]) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in messages]


@dataclass(frozen=True)
class ChainRecord:
    """A Thought-Action-Observation chain as the agent's prompt shows it at its last step,
    followed by that step's completion (the finish)."""

    id: str
    dataset: str
    source: Source
    question: str
    golds: tuple[str, ...]
    answer: str
    """The chain's final answer (citations removed)."""
    f1: float
    messages: tuple[Message, ...]
    """System, question, then assistant step / user observation pairs, ending with the
    assistant's finish step."""
    queries: tuple[str, ...] = ()
    kind: Kind = "rearag"

    def trainable(self) -> tuple[bool, ...]:
        """Loss on each message: the Thought/Action steps only."""
        return tuple(m.role == "assistant" for m in self.messages)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["messages"] = _messages_to(self.messages)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChainRecord:
        values = dict(data)
        values["messages"] = _messages_from(values["messages"])
        values["golds"] = tuple(values["golds"])
        values["queries"] = tuple(values.get("queries", ()))
        return cls(**values)


@dataclass(frozen=True)
class Document:
    chunk_id: str
    title: str
    text: str


@dataclass(frozen=True)
class RareRecord:
    """Reasoning over retrieved evidence: instruction, documents and question in the
    prompt; the model writes ``<think>reasoning</think>`` and ``<answer>answer</answer>``."""

    id: str
    dataset: str
    source: Source
    question: str
    golds: tuple[str, ...]
    instruction: str
    """The system message (the RARE method's instructions)."""
    context: str
    """The user message: the delimited documents and the question, as the method shows them."""
    documents: tuple[Document, ...]
    reasoning: str
    answer: str
    """As written inside ``<answer>``, citations included."""
    f1: float
    tries: int = 1
    kind: Kind = "rare"

    @property
    def completion(self) -> str:
        return f"<think>{self.reasoning}</think>\n<answer>{self.answer}</answer>"

    @property
    def messages(self) -> tuple[Message, ...]:
        return (
            Message("system", self.instruction),
            Message("user", self.context),
            Message("assistant", self.completion),
        )

    def trainable(self) -> tuple[bool, ...]:
        """Loss on the reasoning and the answer only."""
        return (False, False, True)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RareRecord:
        values = dict(data)
        values["documents"] = tuple(Document(**d) for d in values["documents"])
        values["golds"] = tuple(values["golds"])
        return cls(**values)


TrainRecord = ChainRecord | RareRecord


@dataclass(frozen=True)
class Outcome:
    """What became of one question during data construction (kept, or why it was not)."""

    id: str
    kept: bool
    reason: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


def record_from_dict(data: dict[str, Any]) -> TrainRecord:
    kind = data.get("kind")
    if kind == "rearag":
        return ChainRecord.from_dict(data)
    if kind == "rare":
        return RareRecord.from_dict(data)
    raise DatasetError(f"unknown training record kind {kind!r}")


def read_records(path: Path) -> list[TrainRecord]:
    """Every complete line of a training data file; a line cut by a kill is ignored."""
    records = []
    for number, line in complete_lines(path):
        try:
            records.append(record_from_dict(json.loads(line)))
        except (ValueError, KeyError, TypeError) as exc:
            raise DatasetError(f"{path}:{number}: not a training record ({exc})") from exc
    return records


def read_outcomes(path: Path) -> dict[str, Outcome]:
    done: dict[str, Outcome] = {}
    for number, line in complete_lines(path):
        try:
            outcome = Outcome(**json.loads(line))
        except (ValueError, TypeError) as exc:
            raise DatasetError(f"{path}:{number}: not an outcome record ({exc})") from exc
        done[outcome.id] = outcome
    return done


def append_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Append rows as JSON lines after cutting a line left unfinished by a kill, so a
    reader never sees half a record."""
    cut_partial_line(path)
    append_lines(path, [json.dumps(row, ensure_ascii=False) for row in rows])
