"""Building a training data file: resumable, appended question by question, summarised.

A run writes three files side by side: ``OUT`` (one training record per line), ``OUT``'s
``.outcomes.jsonl`` (what became of every question: kept, or dropped and why) and its
``.summary.json``. Re-running the same command skips every question already decided, so a
killed run loses at most the questions in flight.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from reasonrag.datasets.loaders import QAExample
from reasonrag.files import atomic_write_text
from reasonrag.index.records import Retriever
from reasonrag.llm.base import Generator
from reasonrag.progress import progress_task
from reasonrag.reason.agent import TaoAgent
from reasonrag.train.oracle import OracleWriter, oracle_chain, oracle_rare
from reasonrag.train.records import (
    ChainRecord,
    Kind,
    Outcome,
    RareRecord,
    append_jsonl,
    read_outcomes,
)
from reasonrag.train.teacher import Emit, teacher_chains, teacher_rare

Builder = Literal["rearag", "rare", "oracle"]


@dataclass(frozen=True)
class DataSpec:
    """How records are made; the same values must be used at inference for the prompts
    training sees to be the prompts the model will get."""

    builder: Builder
    kinds: tuple[Kind, ...] = ("rearag", "rare")
    """For the oracle: which records to build (teachers build their own kind)."""
    top_k: int = 3
    snippet_chars: int = 900
    """Whole chunks: at the default chunk size (200 embedder tokens) chunks run to ~870
    characters, and a fact cut off by a shorter snippet would be trained on unseen."""
    max_steps: int = 8
    worked_example: bool = False
    threshold: float = 0.8
    """Least answer F1 against the gold answers for a teacher's example to be kept."""
    tries: int = 8
    max_tokens: int = 384
    batch: int = 8


def data_files(out: Path) -> tuple[Path, Path]:
    """(outcomes log, summary) that accompany the records file ``out``."""
    stem = out.with_suffix("")
    return stem.with_name(stem.name + ".outcomes.jsonl"), stem.with_name(
        stem.name + ".summary.json"
    )


def _key(kind: Kind, example_id: str) -> str:
    return f"{kind}:{example_id}"


def build_data(
    examples: Sequence[QAExample],
    retriever: Retriever,
    spec: DataSpec,
    out: Path,
    *,
    teacher: Generator | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Decide every question of ``examples`` not yet in ``out``'s outcome log, appending
    records and outcomes as each is decided; return (and write) the summary."""
    log, summary_path = data_files(out)
    kinds = spec.kinds if spec.builder == "oracle" else (_teacher_kind(spec.builder),)
    done = read_outcomes(log)
    todo = {k: [e for e in examples if _key(k, e.id) not in done] for k in kinds}
    total = sum(len(v) for v in todo.values())
    with progress_task(f"{spec.builder} data", total, enabled=progress) as advance:

        def emitter(kind: Kind) -> Emit:
            return lambda items: emit(items, kind)

        def emit(items: Sequence[ChainRecord | RareRecord | Outcome], kind: Kind) -> None:
            records = [i for i in items if not isinstance(i, Outcome)]
            outcomes = [
                i if isinstance(i, Outcome) else Outcome(i.id, True, "", {"f1": i.f1})
                for i in items
            ]
            append_jsonl(out, [r.to_dict() for r in records])
            rows = [{**o.__dict__, "id": _key(kind, o.id)} for o in outcomes]
            append_jsonl(log, rows)
            advance(len(items))

        for kind in kinds:
            _build_kind(kind, todo[kind], retriever, spec, teacher, emitter(kind))
    summary = summarise(read_outcomes(log), spec)
    atomic_write_text(summary_path, json.dumps(summary, indent=2) + "\n")
    return summary


def _teacher_kind(builder: Builder) -> Kind:
    return "rare" if builder == "rare" else "rearag"


def _agent(retriever: Retriever, generator: Generator, spec: DataSpec) -> TaoAgent:
    return TaoAgent(
        generator,
        retriever,
        max_steps=spec.max_steps,
        top_k=spec.top_k,
        snippet_chars=spec.snippet_chars,
        worked_example=spec.worked_example,
        max_tokens=spec.max_tokens,
    )


def _build_kind(
    kind: Kind,
    examples: Sequence[QAExample],
    retriever: Retriever,
    spec: DataSpec,
    teacher: Generator | None,
    emit: Emit,
) -> None:
    if spec.builder == "oracle":
        agent = _agent(retriever, OracleWriter(), spec)
        for example in examples:
            if kind == "rearag":
                emit([oracle_chain(example, agent, snippet_chars=spec.snippet_chars)])
            else:
                made = oracle_rare(
                    example, retriever, top_k=spec.top_k, snippet_chars=spec.snippet_chars
                )
                emit([made])
        return
    assert teacher is not None, "teacher data needs a teacher generator"
    if kind == "rearag":
        agent = _agent(retriever, teacher, spec)
        teacher_chains(examples, agent, threshold=spec.threshold, batch=spec.batch, emit=emit)
    else:
        teacher_rare(
            examples,
            teacher,
            retriever,
            top_k=spec.top_k,
            snippet_chars=spec.snippet_chars,
            tries=spec.tries,
            threshold=spec.threshold,
            max_tokens=spec.max_tokens,
            batch=spec.batch,
            emit=emit,
        )


def summarise(outcomes: dict[str, Outcome], spec: DataSpec) -> dict[str, Any]:
    """Kept and dropped counts per record kind, with the reasons for the drops."""
    by_kind: dict[str, dict[str, Any]] = {}
    for key, outcome in outcomes.items():
        kind = key.split(":", 1)[0]
        entry = by_kind.setdefault(kind, {"questions": 0, "kept": 0, "dropped": Counter()})
        entry["questions"] += 1
        if outcome.kept:
            entry["kept"] += 1
        else:
            entry["dropped"][outcome.reason] += 1
    for entry in by_kind.values():
        entry["dropped"] = dict(entry["dropped"].most_common())
    return {"builder": spec.builder, "spec": spec.__dict__ | {"kinds": list(spec.kinds)},
            "kinds": by_kind}  # fmt: skip
