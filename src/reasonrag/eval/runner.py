"""Run a reasoning method over a QA benchmark: resumable, batched over questions.

A run lives in one folder: ``run.json`` (what was asked for), ``predictions.jsonl`` (one
scored line per finished question, append-only), ``traces.jsonl`` (full traces) and, unless
an index is given, ``index/`` (the corpus built from the questions' shipped paragraphs).
Re-running the same command in the same folder skips every question already predicted.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from reasonrag.agents import make_agent
from reasonrag.changes import differences
from reasonrag.config import Settings
from reasonrag.datasets.corpus import (
    chunk_titles,
    corpus_documents,
    gold_documents,
    prepare_index,
)
from reasonrag.datasets.loaders import QAExample, load_dataset
from reasonrag.datasets.metrics import cover_em, exact_match, f1, supporting_recall
from reasonrag.embed.base import Embedder
from reasonrag.errors import (
    DatasetError,
    InputError,
    NotFoundError,
    RunMismatchError,
)
from reasonrag.eval.judge import JudgeItem, LLMJudge
from reasonrag.files import append_lines, atomic_write_text, complete_lines, cut_partial_line
from reasonrag.index import Index
from reasonrag.llm.base import Generator
from reasonrag.progress import console, progress_task
from reasonrag.reason import Answer, FinishedCallback, Method, save_traces

PREDICTIONS = "predictions.jsonl"
TRACES = "traces.jsonl"
RUN_FILE = "run.json"
INDEX_DIR = "index"


# --- records -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prediction:
    """One answered and scored question, as stored in ``predictions.jsonl``."""

    id: str
    question: str
    golds: tuple[str, ...]
    prediction: str
    status: str
    metrics: dict[str, float]
    """em, f1, cover_em, finished; judge when judged; cited_recall and retrieved_recall when
    the method retrieves and the gold documents are known."""
    citations: tuple[str, ...] = ()
    """Cited chunk ids."""
    cited_docs: tuple[str, ...] = ()
    retrieved_docs: tuple[str, ...] = ()
    """Every document retrieved during the run, in order of first retrieval."""
    gold_docs: tuple[str, ...] | None = None
    """None when the gold documents could not be found in the corpus."""
    actions: tuple[str, ...] = ()
    steps: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    """Sum of the question's step latencies (a batched step counts its whole batch)."""
    wall_s: float = 0.0
    """Wall-clock time from the start of the question's wave to its answer, divided by the
    wave's size (questions answered together share the time)."""
    judge_verdict: bool | None = None
    """The judge's reading: None when it was not asked or its reply was unreadable."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Prediction:
        tuples = ("golds", "citations", "cited_docs", "retrieved_docs", "actions")
        values = dict(data)
        for name in tuples:
            values[name] = tuple(values.get(name, ()))
        if values.get("gold_docs") is not None:
            values["gold_docs"] = tuple(values["gold_docs"])
        return cls(**values)


class PredictionLog:
    """``predictions.jsonl``: one line per question, appended and fsynced as answered."""

    def __init__(self, path: Path):
        self.path = path

    def read(self) -> dict[str, Prediction]:
        """Predictions made so far, by question id.

        Only newline-terminated lines count: a last line cut short by a kill is ignored
        (and removed by ``drop_partial_tail`` before the run appends again)."""
        done: dict[str, Prediction] = {}
        for number, line in complete_lines(self.path):
            try:
                record = Prediction.from_dict(json.loads(line))
            except (json.JSONDecodeError, TypeError) as exc:
                raise DatasetError(f"{self.path}:{number}: not a prediction record: {exc}") from exc
            done.setdefault(record.id, record)
        return done

    def drop_partial_tail(self) -> None:
        """Cut an unterminated last line, so the next append starts on a line of its own."""
        cut_partial_line(self.path)

    def append(self, predictions: Iterable[Prediction]) -> None:
        append_lines(self.path, [p.to_json() for p in predictions])


# --- scoring -------------------------------------------------------------------------------


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def score_answer(
    example: QAExample,
    answer: Answer,
    *,
    gold_docs: frozenset[str] | None = None,
    retrieves: bool = True,
    verdict: bool | None = None,
    judged: bool = False,
    wall_s: float = 0.0,
) -> Prediction:
    """Score one answer against ``example``'s gold answers and documents."""
    steps = answer.trace.steps
    cited = _unique(c.doc_id for c in answer.citations)
    retrieved = _unique(h.doc_id for s in steps for h in s.hits)
    metrics = {
        "em": exact_match(answer.answer, example.answers),
        "f1": f1(answer.answer, example.answers),
        "cover_em": cover_em(answer.answer, example.answers),
        "finished": float(answer.status == "finished"),
    }
    if judged:
        metrics["judge"] = float(verdict is True)
    if retrieves and gold_docs:
        metrics["cited_recall"] = supporting_recall(cited, gold_docs)
        metrics["retrieved_recall"] = supporting_recall(retrieved, gold_docs)
    return Prediction(
        id=example.id,
        question=example.question,
        golds=example.answers,
        prediction=answer.answer,
        status=answer.status,
        metrics=metrics,
        citations=tuple(c.chunk_id for c in answer.citations),
        cited_docs=cited,
        retrieved_docs=retrieved,
        gold_docs=tuple(sorted(gold_docs)) if gold_docs is not None else None,
        actions=tuple(s.action for s in steps),
        steps=answer.usage.steps,
        prompt_tokens=answer.usage.prompt_tokens,
        completion_tokens=answer.usage.completion_tokens,
        latency_s=answer.usage.latency_s,
        wall_s=wall_s,
        judge_verdict=verdict,
    )


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


@dataclass(frozen=True)
class _Scorer:
    """How a wave's answers are scored: gold documents, whether the method retrieves, and
    the judge (if any)."""

    gold_docs: Mapping[str, frozenset[str] | None]
    retrieves: bool
    judge: LLMJudge | None

    def score(
        self, wave: Sequence[QAExample], answers: Sequence[Answer], wall_s: float
    ) -> list[Prediction]:
        verdicts: Sequence[bool | None] = [None] * len(wave)
        if self.judge is not None:
            verdicts = self.judge.judge_many(
                [
                    # A failed run's "could not answer" is wrong without asking.
                    JudgeItem(e.question, e.answers, "" if a.status == "failed" else a.answer)
                    for e, a in zip(wave, answers, strict=True)
                ]
            )
        return [
            score_answer(
                e,
                a,
                gold_docs=self.gold_docs.get(e.id),
                retrieves=self.retrieves,
                verdict=v,
                judged=self.judge is not None,
                wall_s=wall_s,
            )
            for e, a, v in zip(wave, answers, verdicts, strict=True)
        ]


def _running(name: str, scored: Sequence[Prediction], total: int) -> str:
    em = _mean([p.metrics["em"] for p in scored])
    f1_ = _mean([p.metrics["f1"] for p in scored])
    return f"{name}: {len(scored)}/{total}  EM {em:.3f}  F1 {f1_:.3f}"


def run_predictions(
    examples: Sequence[QAExample],
    method: Method,
    run_dir: Path,
    *,
    gold_docs: Mapping[str, frozenset[str] | None] | None = None,
    retrieves: bool = True,
    judge: LLMJudge | None = None,
    batch: int = 8,
    progress: bool = True,
) -> list[Prediction]:
    """Predict every example not yet in ``run_dir/predictions.jsonl``, ``batch`` questions
    per ``ask_many`` wave (one generate call per round for the whole wave), appending each
    question as soon as it is answered (a kill loses only unfinished questions); return all
    predictions in ``examples`` order."""
    if batch < 1:
        raise InputError(f"batch must be >= 1, got {batch}")
    log = PredictionLog(run_dir / PREDICTIONS)
    log.drop_partial_tail()
    done = log.read()
    todo = [e for e in examples if e.id not in done]
    scorer = _Scorer(gold_docs or {}, retrieves, judge)
    with progress_task(method.name, len(todo), enabled=progress) as advance:

        def saver(wave: list[QAExample], started: float) -> FinishedCallback:
            def save(finished: list[tuple[int, Answer]]) -> None:
                # Questions answered together share the wave's time so far.
                wall = (time.perf_counter() - started) / len(wave)
                answers = [a for _, a in finished]
                scored = scorer.score([wave[i] for i, _ in finished], answers, wall)
                # Traces first: a line in predictions.jsonl is what marks a question as done.
                save_traces(run_dir / TRACES, answers)
                log.append(scored)
                done.update((p.id, p) for p in scored)
                running = _running(
                    method.name, [done[e.id] for e in examples if e.id in done], len(examples)
                )
                advance(len(finished), description=running)
                if progress:
                    # Also as a log line, so non-interactive logs keep the history.
                    console.log(running)

            return save

        for start in range(0, len(todo), batch):
            wave = todo[start : start + batch]
            method.ask_many(
                [e.question for e in wave], on_finished=saver(wave, time.perf_counter())
            )
    return [done[e.id] for e in examples]


# --- a whole run ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EvalSpec:
    """Which questions a run answers."""

    dataset: str
    path: Path | None = None
    n: int | None = 200
    seed: int = 0
    judge: bool = False


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    method: str
    predictions: list[Prediction]
    new: int
    """Questions predicted by this call (the rest came from an earlier, interrupted call)."""
    seconds: float
    """Wall time of this call, index building and model loading included."""
    info: dict[str, Any] = field(default_factory=dict)
    """The contents of ``run.json``."""


def resolve_dataset_path(dataset: str, path: Path | None, split: str) -> Path | None:
    """A folder holding split files becomes its ``{split}.jsonl`` (or ``.json``); the demo
    set's folder is kept as is."""
    if path is None or not path.is_dir() or dataset.lower().startswith("demo"):
        return path
    for suffix in (".jsonl", ".json"):
        candidate = path / f"{split}{suffix}"
        if candidate.is_file():
            return candidate
    raise NotFoundError(f"--path {path}: no {split}.jsonl or {split}.json in this folder")


def machine_info() -> dict[str, Any]:
    """Where a measurement was taken, for every run and benchmark report."""
    import numpy
    import torch

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": sys.version.split()[0],
        "numpy": numpy.__version__,
        "torch": torch.__version__,
    }


def run_config(
    spec: EvalSpec,
    settings: Settings,
    generator: Generator,
    judge_generator: Generator | None,
    index: Index | None,
) -> dict[str, Any]:
    """Everything that changes a run's answers; a resumed run must match it exactly."""
    manifest = index.manifest if index is not None else None
    return {
        "dataset": spec.dataset,
        "path": str(spec.path) if spec.path is not None else None,
        "n": spec.n,
        "seed": spec.seed,
        "method": settings.agent.method,
        "agent": settings.agent.model_dump(mode="json", exclude={"index_dir"}),
        "retrieval": settings.retrieval.model_dump(mode="json"),
        "generator": generator.name,
        "judge": judge_generator.name if judge_generator is not None else None,
        "index": None
        if manifest is None
        else {
            "embedder": manifest.embedder,
            "n_documents": manifest.n_documents,
            "n_chunks": manifest.n_chunks,
            "context_mode": manifest.context_mode,
        },
    }


def open_run(run_dir: Path, config: dict[str, Any]) -> dict[str, Any]:
    """Start ``run_dir`` or check that it holds a run of ``config``; return ``run.json``."""
    path = run_dir / RUN_FILE
    if path.exists():
        info: dict[str, Any] = json.loads(path.read_text())
        changed = differences(info.get("config"), config)
        if changed:
            raise RunMismatchError(
                f"{path}: this folder holds a run with other settings "
                f"({'; '.join(changed[:4])}); pass another --out to start a new run"
            )
        return info
    info = {
        "config": config,
        "machine": machine_info(),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    atomic_write_text(path, json.dumps(info, indent=2) + "\n")
    return info


def evaluate(
    spec: EvalSpec,
    settings: Settings,
    run_dir: Path,
    *,
    index: Index | None = None,
    generator: Generator | None = None,
    judge_generator: Generator | None = None,
    embedder: Embedder | None = None,
    batch: int = 8,
    progress: bool = True,
) -> RunResult:
    """Answer and score ``spec``'s questions with ``settings.agent.method``, resuming any
    earlier run in ``run_dir``.

    Without ``index``, retrieving methods search an index of the run's corpus, built (or
    reused) at ``run_dir/index``. ``generator`` defaults to ``settings.llm``; the judge, when
    ``spec.judge``, to ``judge_generator`` or else the answering generator."""
    started = time.perf_counter()
    examples = load_dataset(spec.dataset, spec.path, n=spec.n, seed=spec.seed)
    if not examples:
        raise DatasetError(f"dataset {spec.dataset!r}: no questions to evaluate")
    if generator is None:
        from reasonrag.llm.factory import make_generator

        generator = make_generator(settings.llm, settings.cache_dir)
    retrieves = settings.agent.method != "closed"
    if retrieves and index is None:
        documents = corpus_documents(examples, spec.dataset, spec.path)
        index = prepare_index(
            documents,
            settings,
            run_dir / INDEX_DIR,
            embedder=embedder,
            generator=generator,
            progress=progress,
        )
    judge = None
    if spec.judge:
        judge_generator = judge_generator or generator
        judge = LLMJudge(judge_generator)
    else:
        judge_generator = None
    method = make_agent(
        settings, retriever=index if retrieves else None, generator=generator
    ).method
    info = open_run(
        run_dir,
        run_config(spec, settings, method.generator, judge_generator, index if retrieves else None),
    )
    gold = gold_documents(examples, chunk_titles(index.chunks)) if index is not None else {}
    before = PredictionLog(run_dir / PREDICTIONS).read()
    predictions = run_predictions(
        examples,
        method,
        run_dir,
        gold_docs=gold,
        retrieves=retrieves,
        judge=judge,
        batch=batch,
        progress=progress,
    )
    return RunResult(
        run_dir=run_dir,
        method=method.name,
        predictions=predictions,
        new=sum(e.id not in before for e in examples),
        seconds=time.perf_counter() - started,
        info=info,
    )
