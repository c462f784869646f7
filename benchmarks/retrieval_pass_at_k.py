"""Pass@k of reasonrag's retrieval pipelines on a contextual-retrieval or BEIR evaluation set.

Pass@k is Anthropic's figure: the share of a query's golden chunks found in the top k,
averaged over queries (the failure rate is 1 - Pass@k). BEIR sets also get nDCG@10.

    python benchmarks/retrieval_pass_at_k.py --data DIR [--modes dense,hybrid,title,llm]
        [--rerank] [--k 5,10,20] [--out results.json] [--limit-queries N]

Pipelines: ``dense`` (no context, dense only), ``hybrid`` (no context, dense + BM25 with
RRF), ``title`` (title context, RRF), ``llm`` (LLM-written context, RRF); ``--rerank`` adds
each one followed by the LLM reranker over its top 20. One index is built per context mode;
contexts and embeddings are cached under ``--cache-dir``, so re-runs only search.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from rich.table import Table

from contextual_format import EvalQuery, RetrievalSet, load_retrieval_set
from reasonrag.config import Settings, load_settings
from reasonrag.datasets.metrics import ndcg_at_k, pass_at_k
from reasonrag.embed.base import Embedder
from reasonrag.embed.factory import make_embedder
from reasonrag.eval.runner import machine_info
from reasonrag.eval.stats import bootstrap_ci
from reasonrag.index import Index
from reasonrag.llm.base import Generator
from reasonrag.progress import make_console, progress_task

HERE = Path(__file__).resolve().parent
ContextMode = Literal["none", "title", "llm"]
RERANK_TOP = 20
NDCG_K = 10
SEARCH_BATCH = 32


@dataclass(frozen=True)
class Pipeline:
    name: str
    context: ContextMode
    fusion: Literal["dense", "rrf"]
    rerank: bool = False

    def settings(self, base: Settings) -> Settings:
        retrieval = base.retrieval.model_copy(
            update={
                "fusion": self.fusion,
                "rerank": "llm" if self.rerank else "none",
                "rerank_top": RERANK_TOP,
            }
        )
        context = base.context.model_copy(update={"mode": self.context})
        return base.model_copy(update={"retrieval": retrieval, "context": context})


BASE_PIPELINES = {
    "dense": Pipeline("dense", "none", "dense"),
    "hybrid": Pipeline("hybrid", "none", "rrf"),
    "title": Pipeline("title", "title", "rrf"),
    "llm": Pipeline("llm", "llm", "rrf"),
}


def pipelines_for(modes: Sequence[str], rerank: bool) -> list[Pipeline]:
    unknown = [m for m in modes if m not in BASE_PIPELINES]
    if unknown:
        raise ValueError(f"--modes: unknown {', '.join(unknown)}; use {', '.join(BASE_PIPELINES)}")
    chosen = [BASE_PIPELINES[m] for m in modes]
    if rerank:
        chosen += [Pipeline(f"{p.name}+rerank", p.context, p.fusion, True) for p in chosen]
    return chosen


@dataclass(frozen=True)
class PipelineResult:
    pipeline: Pipeline
    per_query: dict[str, list[float]]
    """Metric name -> one score per query, in query order."""
    search_seconds: float
    stage_seconds: dict[str, float]

    def mean(self, metric: str) -> float:
        scores = self.per_query[metric]
        return sum(scores) / len(scores)


@dataclass(frozen=True)
class BenchmarkRun:
    data: RetrievalSet
    ks: tuple[int, ...]
    results: list[PipelineResult]
    embedder: str
    generator: str | None
    """Name of the generator that wrote contexts and reranked, if any pipeline needed one."""
    build_seconds: dict[str, float] = field(default_factory=dict)
    """Context mode -> seconds to contextualize, embed and index."""


def score_query(
    ids: Sequence[str], query: EvalQuery, ks: Sequence[int], graded: bool
) -> dict[str, float]:
    scores = {f"pass@{k}": pass_at_k(ids, query.golden, k) for k in ks}
    if graded:
        scores[f"ndcg@{NDCG_K}"] = ndcg_at_k(ids, query.relevance, NDCG_K)
    return scores


def slug(name: str) -> str:
    return name.replace("/", "-")


def evaluate(
    index: Index, pipeline: Pipeline, data: RetrievalSet, ks: Sequence[int], progress: bool
) -> PipelineResult:
    per_query: dict[str, list[float]] = {}
    timings: dict[str, float] = {}
    started = time.perf_counter()
    with progress_task(f"Searching: {pipeline.name}", len(data.queries), enabled=progress) as step:
        for start in range(0, len(data.queries), SEARCH_BATCH):
            batch = data.queries[start : start + SEARCH_BATCH]
            hits = index.search_many([q.text for q in batch], max(ks), timings=timings)
            for query, found in zip(batch, hits, strict=True):
                ids = [h.chunk_id for h in found]
                for metric, value in score_query(ids, query, ks, data.graded).items():
                    per_query.setdefault(metric, []).append(value)
            step(len(batch))
    return PipelineResult(pipeline, per_query, time.perf_counter() - started, timings)


def run_benchmark(
    data: RetrievalSet,
    pipelines: Sequence[Pipeline],
    settings: Settings,
    work_dir: Path,
    *,
    ks: Sequence[int] = (5, 10, 20),
    embedder: Embedder | None = None,
    generator: Generator | None = None,
    progress: bool = True,
) -> BenchmarkRun:
    """Build one index per context mode the pipelines need, then evaluate each pipeline.

    ``generator`` writes LLM contexts and judges relevance when reranking (default: the
    context LLM, i.e. ``context.llm`` or else ``llm``)."""
    embedder = embedder or make_embedder(settings.embed)
    needs_llm = any(p.context == "llm" or p.rerank for p in pipelines)
    if needs_llm and generator is None:
        from reasonrag.llm.factory import make_generator

        generator = make_generator(settings.context_llm, settings.cache_dir)
    folders: dict[str, Path] = {}
    build_seconds: dict[str, float] = {}
    for p in pipelines:
        if p.context in folders:
            continue
        folders[p.context] = work_dir / f"{slug(data.name)}-{p.context}"
        started = time.perf_counter()
        Index.from_chunks(
            data.chunks,
            data.documents,
            p.settings(settings),
            folders[p.context],
            embedder=embedder,
            generator=generator,
            progress=progress,
        )
        build_seconds[p.context] = time.perf_counter() - started
    results = []
    for p in pipelines:
        index = Index.open(
            folders[p.context], p.settings(settings), embedder=embedder, generator=generator
        )
        results.append(evaluate(index, p, data, ks, progress))
    return BenchmarkRun(
        data,
        tuple(ks),
        results,
        embedder.name,
        generator.name if generator else None,
        build_seconds,
    )


# --- reporting -----------------------------------------------------------------------------


def report_header(started: float) -> dict[str, Any]:
    """What every benchmark JSON starts with: when, where, how it was run, how long it took."""
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join([sys.executable, *sys.argv]),
        "machine": machine_info(),
        "wall_seconds": round(time.perf_counter() - started, 2),
    }


def metric_names(run: BenchmarkRun) -> list[str]:
    return list(run.results[0].per_query) if run.results else []


def to_json(run: BenchmarkRun) -> dict[str, Any]:
    pipelines = []
    for r in run.results:
        metrics: dict[str, Any] = {}
        for name, scores in r.per_query.items():
            mean, low, high = bootstrap_ci(scores)
            metrics[name] = {"mean": round(mean, 4), "ci95": [round(low, 4), round(high, 4)]}
            if name.startswith("pass@"):
                metrics[name.replace("pass@", "failure@")] = round(1 - mean, 4)
        pipelines.append(
            {
                "name": r.pipeline.name,
                "context": r.pipeline.context,
                "fusion": r.pipeline.fusion,
                "rerank": f"llm (top {RERANK_TOP})" if r.pipeline.rerank else "none",
                "metrics": metrics,
                "build_seconds": round(run.build_seconds.get(r.pipeline.context, 0.0), 2),
                "search_seconds": round(r.search_seconds, 3),
                "ms_per_query": round(1000 * r.search_seconds / len(run.data.queries), 2),
                "stage_seconds": {k: round(v, 4) for k, v in r.stage_seconds.items()},
            }
        )
    return {
        "dataset": {
            "name": run.data.name,
            "layout": "beir" if run.data.graded else "contextual",
            "documents": len(run.data.documents),
            "chunks": len(run.data.chunks),
            "queries": len(run.data.queries),
            "skipped_records": [str(i) for i in run.data.issues],
        },
        "embedder": run.embedder,
        "generator": run.generator,
        "ks": list(run.ks),
        "pipelines": pipelines,
    }


def render_table(run: BenchmarkRun) -> Table:
    names = metric_names(run)
    table = Table(title=f"{run.data.name}: {len(run.data.queries)} queries")
    table.add_column("pipeline")
    for name in names:
        table.add_column(name.replace("ndcg", "nDCG"), justify="right")
    for name in names:
        if name.startswith("pass@"):
            table.add_column(name.replace("pass@", "fail@"), justify="right")
    table.add_column("build s", justify="right")
    table.add_column("search s", justify="right")
    for r in run.results:
        means = [r.mean(n) for n in names]
        fails = [1 - r.mean(n) for n in names if n.startswith("pass@")]
        table.add_row(
            r.pipeline.name,
            *(f"{m:.3f}" for m in means),
            *(f"{f:.3f}" for f in fails),
            f"{run.build_seconds.get(r.pipeline.context, 0.0):.1f}",
            f"{r.search_seconds:.1f}",
        )
    return table


def _int_list(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="contextual or BEIR folder")
    parser.add_argument("--modes", default="dense,hybrid,title,llm")
    parser.add_argument("--rerank", action="store_true", help="also run each with LLM rerank")
    parser.add_argument("--k", default="5,10,20", type=_int_list)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--limit-queries", type=int, default=None)
    parser.add_argument("--cache-dir", type=Path, default=HERE / ".cache")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    started = time.perf_counter()
    args = parse_args(argv)
    console = make_console()
    data = load_retrieval_set(args.data, on_error=lambda issue: None)
    for issue in data.issues[:5]:
        console.print(f"[yellow]skipped {issue}")
    if len(data.issues) > 5:
        console.print(f"[yellow]... {len(data.issues) - 5} more records skipped")
    if args.limit_queries is not None:
        data = replace(data, queries=data.queries[: args.limit_queries])
    settings = load_settings(cache_dir=args.cache_dir)
    pipelines = pipelines_for([m.strip() for m in args.modes.split(",") if m.strip()], args.rerank)
    run = run_benchmark(data, pipelines, settings, args.cache_dir / "indexes", ks=args.k)
    console.print(render_table(run))
    out = args.out or HERE / "results" / f"retrieval_{slug(data.name)}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    report = report_header(started) | to_json(run)
    out.write_text(json.dumps(report, indent=2) + "\n")
    console.print(f"wrote {out}")


if __name__ == "__main__":
    main()
