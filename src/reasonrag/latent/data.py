"""Training data for CLaRa, in units the compressor will read at inference: index chunks.

Salient compressor pretraining (SCP) needs, per chunk, questions its text answers and a
restatement of it. Without a teacher they come from dataset structure, each labelled with
its origin: MuSiQue's single-hop sub-questions (``musique-decomposition``), 2Wiki's evidence
triples (``2wiki-evidence``), HotpotQA's supporting sentences (``hotpot-supporting``), the
demo world's training decompositions (``demo-decomposition``); the restatement is the chunk
itself (``reconstruction``). With a teacher ``Generator``, it writes both (``teacher:NAME``).

Joint training needs (question, candidate chunks, answer): the candidates are what the text
index retrieves for the question, and the gold chunks are marked for Recall@k.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from reasonrag.datasets.hops import evidence_parts, hop_questions
from reasonrag.datasets.loaders import QAExample
from reasonrag.index.records import Retriever
from reasonrag.ingest.records import Chunk
from reasonrag.llm.base import Generator, GenParams, Message
from reasonrag.reason.guard import mentions


@dataclass(frozen=True)
class SCPRecord:
    chunk_id: str
    text: str
    """What the compressor reads: the chunk as indexed (title, then text)."""
    questions: tuple[str, ...]
    answers: tuple[str, ...]
    paraphrase: str
    sources: dict[str, str] = field(default_factory=dict)
    """Where the questions (``qa``) and the restatement (``paraphrase``) came from."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SCPRecord:
        values = dict(data)
        values["questions"] = tuple(values["questions"])
        values["answers"] = tuple(values["answers"])
        return cls(**values)


@dataclass(frozen=True)
class JointRecord:
    id: str
    question: str
    answers: tuple[str, ...]
    candidates: tuple[str, ...]
    """Chunk ids the text index retrieved for the question, best first."""
    gold: tuple[str, ...]
    """Candidates that hold the gold evidence (empty when none was retrieved)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JointRecord:
        values = dict(data)
        for key in ("answers", "candidates", "gold"):
            values[key] = tuple(values[key])
        return cls(**values)


def compressor_text(chunk: Chunk) -> str:
    """A chunk as the compressor reads it; the title carries what the text says "it" about."""
    return f"{chunk.title}: {chunk.text}" if chunk.title else chunk.text


def _grounded_pairs(example: QAExample) -> Iterable[tuple[str, str, str | None, str]]:
    """(question, answer, gold title, source) of each single-fact question in ``example``."""
    for hop, question in zip(example.decomposition, hop_questions(example), strict=True):
        parts = evidence_parts(question)
        if parts is not None:
            subject, relation = parts
            question = f"What is the {relation} of {subject}?"
            source = "2wiki-evidence" if example.dataset == "2wiki" else "musique-decomposition"
        else:
            source = f"{example.dataset}-decomposition"
        if hop.title is not None:
            yield question, hop.answer, hop.title, source
    if not example.decomposition and example.supporting:
        # HotpotQA names supporting paragraphs only: the question itself is grounded in
        # whichever of them states the answer.
        for doc in example.supporting:
            yield example.question, example.answer, doc.title, "hotpot-supporting"


def scp_records(examples: Sequence[QAExample], chunks: Sequence[Chunk]) -> list[SCPRecord]:
    """One record per chunk that states the answer of at least one grounded question."""
    by_title: dict[str, list[Chunk]] = {}
    for chunk in chunks:
        by_title.setdefault(chunk.title, []).append(chunk)
    pairs: dict[str, list[tuple[str, str, str]]] = {}
    for example in examples:
        for question, answer, title, source in _grounded_pairs(example):
            for chunk in by_title.get(title or "", []):
                if mentions(chunk.text, answer):
                    pairs.setdefault(chunk.id, []).append((question, answer, source))
                    break
    records = []
    for chunk in chunks:
        found = list(dict.fromkeys(pairs.get(chunk.id, [])))
        if not found:
            continue
        records.append(
            SCPRecord(
                chunk_id=chunk.id,
                text=compressor_text(chunk),
                questions=tuple(q for q, _, _ in found),
                answers=tuple(a for _, a, _ in found),
                paraphrase=chunk.text,
                sources={"qa": found[0][2], "paraphrase": "reconstruction"},
            )
        )
    return records


_TEACHER_PROMPT = (
    "Read the document. Write three short questions it answers, each on a line 'Q: ...' "
    "followed by a line 'A: ...' with a short answer from the document. Then write one line "
    "'P: ...' restating the document in your own words."
)


def teacher_scp(chunks: Sequence[Chunk], teacher: Generator) -> list[SCPRecord]:
    """SCP records written by a teacher model; chunks whose reply has no usable question
    or whose answers are not in the chunk are left out."""
    prompts = [
        [Message("system", _TEACHER_PROMPT), Message("user", compressor_text(c))] for c in chunks
    ]
    completions = teacher.generate(prompts, GenParams(max_tokens=256))
    records = []
    for chunk, completion in zip(chunks, completions, strict=True):
        questions = re.findall(r"^Q:\s*(.+)$", completion.text, re.M)
        answers = re.findall(r"^A:\s*(.+)$", completion.text, re.M)
        paraphrase = re.findall(r"^P:\s*(.+)$", completion.text, re.M)
        kept = [(q, a) for q, a in zip(questions, answers, strict=False) if mentions(chunk.text, a)]
        if not kept:
            continue
        records.append(
            SCPRecord(
                chunk_id=chunk.id,
                text=compressor_text(chunk),
                questions=tuple(q for q, _ in kept),
                answers=tuple(a for _, a in kept),
                paraphrase=paraphrase[0] if paraphrase else chunk.text,
                sources={
                    "qa": f"teacher:{teacher.name}",
                    "paraphrase": f"teacher:{teacher.name}" if paraphrase else "reconstruction",
                },
            )
        )
    return records


def joint_records(
    examples: Sequence[QAExample], retriever: Retriever, candidates: int
) -> list[JointRecord]:
    """Each question with the chunks the text index retrieves for it; a candidate is gold
    when it belongs to a supporting paragraph and states a hop's (or the final) answer."""
    records = []
    for example in examples:
        hits = retriever.search(example.question, candidates)
        titles = {doc.title for doc in example.supporting}
        facts = [h.answer for h in example.decomposition] or list(example.answers)
        gold = [
            h.chunk_id
            for h in hits
            if h.title in titles and any(mentions(h.text, fact) for fact in facts)
        ]
        records.append(
            JointRecord(
                id=example.id,
                question=example.question,
                answers=example.answers,
                candidates=tuple(h.chunk_id for h in hits),
                gold=tuple(gold),
            )
        )
    return records
