"""Teacher training data: any ``Generator`` (at scale, a large reasoning model behind an
OpenAI-compatible server such as vLLM) writes the examples, and only those whose final
answer reaches an F1 threshold against the gold answers are kept.

- ReaRAG chains (the paper's Algorithm 1): the teacher runs the TAO agent against the index
  up to Tmax; a chain is kept when the teacher itself finished with a good answer and every
  step was readable.
- RARE examples: the question's retrieved documents in the prompt, the teacher writes
  ``<think>…</think><answer>…</answer>``; up to ``tries`` samples, the first good one kept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from reasonrag.datasets.loaders import QAExample
from reasonrag.datasets.metrics import f1
from reasonrag.index.records import Hit, Retriever
from reasonrag.llm.base import Completion, Generator, GenParams, Message, as_messages
from reasonrag.reason.agent import TaoAgent
from reasonrag.reason.citations import conclude
from reasonrag.reason.parse import parse_answer
from reasonrag.reason.prompts import rare_prompt
from reasonrag.reason.records import Answer
from reasonrag.train.records import ChainRecord, Document, Outcome, RareRecord

Emit = Callable[[Sequence[ChainRecord | RareRecord | Outcome]], None]
"""Receives each finished question's record (kept) or outcome (dropped) as it is decided."""


def chain_from_answer(
    example: QAExample, answer: Answer, threshold: float
) -> ChainRecord | Outcome:
    """The teacher's chain for ``example``, or why it is not kept."""
    steps = answer.trace.steps
    score = f1(answer.answer, example.answers)
    if answer.status != "finished":
        return Outcome(example.id, False, f"no finish ({answer.status})", {"f1": score})
    if any(s.action in ("invalid", "error") for s in steps) or any(s.note for s in steps):
        return Outcome(example.id, False, "unreadable or corrected steps", {"f1": score})
    if score < threshold:
        return Outcome(example.id, False, "answer F1 below threshold", {"f1": score})
    last = answer.trace.generations[-1]
    return ChainRecord(
        id=example.id,
        dataset=example.dataset,
        source="teacher",
        question=example.question,
        golds=example.answers,
        answer=answer.answer,
        f1=score,
        messages=(*last.messages, Message("assistant", last.completion)),
        queries=tuple(s.argument for s in steps if s.action == "search"),
    )


def teacher_chains(
    examples: Sequence[QAExample],
    agent: TaoAgent,
    *,
    threshold: float,
    batch: int,
    emit: Emit,
) -> None:
    """Run the agent (its generator is the teacher) over ``examples`` in waves of ``batch``
    questions, one generate call per round for the whole wave."""
    for start in range(0, len(examples), batch):
        wave = list(examples[start : start + batch])

        def decided(finished: list[tuple[int, Answer]], wave: list[QAExample] = wave) -> None:
            emit([chain_from_answer(wave[i], answer, threshold) for i, answer in finished])

        agent.ask_many([e.question for e in wave], on_finished=decided)


def _rare_record(
    example: QAExample,
    prompt: Sequence[Message],
    hits: Sequence[Hit],
    completion: Completion,
    tries: int,
) -> RareRecord | None:
    """The example the completion makes, or None when it has no reasoning or no answer."""
    reasoning, written = parse_answer(completion.text)
    if not reasoning or not written:
        return None
    answer = conclude(written, (), hits, hits, "finished").answer
    system, user = prompt
    return RareRecord(
        id=example.id,
        dataset=example.dataset,
        source="teacher",
        question=example.question,
        golds=example.answers,
        instruction=system.content,
        context=user.content,
        documents=tuple(Document(h.chunk_id, h.title, h.text) for h in hits),
        reasoning=reasoning,
        answer=written,
        f1=f1(answer, example.answers),
        tries=tries,
    )


def teacher_rare(
    examples: Sequence[QAExample],
    teacher: Generator,
    retriever: Retriever,
    *,
    top_k: int,
    snippet_chars: int,
    tries: int,
    threshold: float,
    max_tokens: int,
    batch: int,
    emit: Emit,
) -> None:
    """Up to ``tries`` samples per question (the first greedy, then seeded samples), all
    open questions of a wave in one generate call per try."""
    for start in range(0, len(examples), batch):
        wave = list(examples[start : start + batch])
        hits = {e.id: tuple(retriever.search(e.question, top_k)) for e in wave}
        prompts = {
            e.id: as_messages(rare_prompt(e.question, hits[e.id], snippet_chars)) for e in wave
        }
        best: dict[str, float] = {e.id: 0.0 for e in wave}
        open_ = wave
        for attempt in range(1, tries + 1):
            params = GenParams(
                max_tokens=max_tokens,
                temperature=0.0 if attempt == 1 else 0.8,
                seed=None if attempt == 1 else attempt,
            )
            completions = teacher.generate([prompts[e.id] for e in open_], params)
            kept: list[ChainRecord | RareRecord | Outcome] = []
            still = []
            for example, completion in zip(open_, completions, strict=True):
                record = _rare_record(
                    example, prompts[example.id], hits[example.id], completion, attempt
                )
                if record is not None and record.f1 >= threshold:
                    kept.append(record)
                    continue
                best[example.id] = max(best[example.id], record.f1 if record else 0.0)
                still.append(example)
            emit(kept)
            open_ = still
            if not open_:
                break
        emit(
            [
                Outcome(e.id, False, f"no answer reached F1 {threshold} in {tries} tries",
                        {"best_f1": best[e.id]})
                for e in open_
            ]
        )  # fmt: skip
