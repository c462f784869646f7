"""Multi-hop QA: closed-book, RAG, RARE-style and the TAO agent on several benchmarks.

    python benchmarks/multihop.py [--n 50] [--datasets demo,hotpotqa,musique,2wiki]
        [--methods closed,rag,rare,tao] [--out benchmarks/results/multihop] [--batch 8]
        [--max-steps N] [--top-k K] [--snippet-chars C] [--max-tokens T] [--judge]
        [--seed 0] [--data-root DIR] [--config FILE] [--threads N] [--docs docs/benchmarks.md]

Each dataset's retrieval corpus is the paragraphs its sampled questions ship with (the demo
uses its own corpus), indexed once and shared by the methods. One generator, loaded once,
answers for every method. Every (dataset, method) pair is a resumable run folder under
``--out``, so an interrupted benchmark picks up where it stopped; the combined table
(``multihop.md``), plot (``multihop.png``) and data (``multihop.json``) are written at the end,
and with ``--docs`` the table and plot also replace the marked section of that markdown file.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from reasonrag.config import Settings, load_settings
from reasonrag.datasets.corpus import corpus_documents, prepare_index
from reasonrag.datasets.loaders import load_dataset
from reasonrag.embed.base import Embedder
from reasonrag.embed.factory import make_embedder
from reasonrag.eval.report import (
    markdown_table,
    plot_metrics,
    replace_marked_section,
    write_report,
)
from reasonrag.eval.runner import EvalSpec, evaluate, machine_info
from reasonrag.files import atomic_write_text
from reasonrag.index import Index
from reasonrag.llm.base import Generator
from reasonrag.llm.factory import make_generator
from reasonrag.progress import make_console

HERE = Path(__file__).resolve().parent
DATA_FILES = {
    "demo": None,
    "hotpotqa": Path("hotpotqa/dev.jsonl"),
    "musique": Path("musique/dev.jsonl"),
    "2wiki": Path("2wikimultihopqa/dev.jsonl"),
}
METHODS = ("closed", "rag", "rare", "tao")
DOCS_SECTION = "multihop"
"""Marker name of the section ``--docs`` rewrites (``<!-- multihop:begin -->`` ...)."""
console = make_console(stderr=True)


@dataclass(frozen=True)
class Shared:
    """What every run of the benchmark uses: settings, the one generator and embedder, and
    the command-line choices."""

    settings: Settings
    generator: Generator
    embedder: Embedder
    out: Path
    n: int
    seed: int
    methods: tuple[str, ...]
    batch: int
    judge: bool


AGENT_FLAGS = ("max_steps", "top_k", "snippet_chars", "max_tokens")
"""Command-line flags that override ``agent`` settings (for every method alike)."""


def _with_method(settings: Settings, method: str) -> Settings:
    return settings.model_copy(
        update={"agent": settings.agent.model_copy(update={"method": method})}
    )


def run_dataset(shared: Shared, dataset: str, path: Path | None) -> list[dict[str, Any]]:
    """Every method on one dataset; returns their summaries."""
    spec = EvalSpec(dataset, path, shared.n, shared.seed, shared.judge)
    index: Index | None = None
    if any(m != "closed" for m in shared.methods):
        examples = load_dataset(dataset, path, n=shared.n, seed=shared.seed)
        index = prepare_index(
            corpus_documents(examples, dataset, path),
            shared.settings,
            shared.out / dataset / "index",
            embedder=shared.embedder,
            generator=shared.generator,
        )
    summaries = []
    for method in shared.methods:
        run_dir = shared.out / dataset / method
        console.rule(f"[bold]{dataset} / {method}")
        result = evaluate(
            spec,
            _with_method(shared.settings, method),
            run_dir,
            index=index,
            generator=shared.generator,
            embedder=shared.embedder,
            batch=shared.batch,
        )
        summary = write_report(run_dir)
        summary["run_seconds"] = result.seconds
        metrics = summary["metrics"]
        console.print(
            f"{dataset}/{method}: EM {metrics['em']['mean']:.3f}  F1 {metrics['f1']['mean']:.3f}"
            f"  ({result.new} new, {result.seconds:.0f} s) -> {run_dir}"
        )
        summaries.append(summary)
    return summaries


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=50, help="questions per dataset")
    parser.add_argument("--datasets", default=",".join(DATA_FILES))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--out", type=Path, default=HERE / "results" / "multihop")
    parser.add_argument("--max-steps", type=int, default=None, help="TAO step limit")
    parser.add_argument("--top-k", type=int, default=None, help="snippets per search")
    parser.add_argument("--snippet-chars", type=int, default=None, help="characters per snippet")
    parser.add_argument("--max-tokens", type=int, default=None, help="tokens per generation")
    parser.add_argument("--batch", type=int, default=8, help="questions per wave")
    parser.add_argument("--judge", action="store_true", help="add LLM-judge accuracy")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-root", type=Path, default=HERE.parents[1] / "shared" / "data")
    parser.add_argument("--config", type=Path, default=None, help="TOML config file")
    parser.add_argument(
        "--docs",
        type=Path,
        default=None,
        help=f"also write the table into this markdown file, between its {DOCS_SECTION} markers",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads of torch and of llama.cpp (1 is faster when other jobs share the cores)",
    )
    args = parser.parse_args(argv)
    args.datasets = [d for d in args.datasets.split(",") if d]
    args.methods = [m for m in args.methods.split(",") if m]
    for name, chosen, known in (
        ("--datasets", args.datasets, DATA_FILES),
        ("--methods", args.methods, METHODS),
    ):
        unknown = [c for c in chosen if c not in known]
        if unknown:
            parser.error(f"{name}: unknown {', '.join(unknown)}; choose from {', '.join(known)}")
    return args


def write_combined(
    out: Path,
    summaries: list[dict[str, Any]],
    settings: Settings,
    seconds: float,
    docs: Path | None = None,
) -> str:
    """Write the combined table, data and plot into ``out`` (and the table and plot into the
    ``docs`` markdown file and its ``img/`` folder when given); return the table."""
    table = markdown_table(summaries)
    command = shlex.join(["python", "benchmarks/multihop.py", *sys.argv[1:]])
    machine = machine_info()
    agent = settings.agent
    header = (
        f"Command: `{command}`  \n"
        f"Wall time: {seconds / 60:.1f} min on {machine['processor']} "
        f"({machine['cpus']} CPUs, {machine['platform']}), "
        f"{datetime.now(timezone.utc).date().isoformat()}  \n"
        f"Generator: `{summaries[0]['config']['generator']}`; TAO max_steps "
        f"{agent.max_steps}; top_k {agent.top_k} snippets of {agent.snippet_chars} characters; "
        f"max_tokens {agent.max_tokens} per generation; contexts: {settings.context.mode}; "
        f"embedder: {settings.embed.model}.\n\n"
        "Recall columns: share of the gold supporting documents among the documents the "
        "answer cites / the method retrieved (closed-book retrieves nothing). 'valid finish': "
        "runs that ended with the model's own answer (TAO: a finish action before the step "
        "limit). s/question: wall time per question with the questions of a wave answered "
        "together.\n\n"
    )
    atomic_write_text(out / "multihop.md", "# Multi-hop QA benchmark\n\n" + header + table)
    payload = {"command": command, "wall_s": seconds, "machine": machine, "runs": summaries}
    atomic_write_text(out / "multihop.json", json.dumps(payload, indent=2) + "\n")
    plot_metrics(summaries, out / "multihop.png")
    if docs is not None:
        image = Path("img") / f"multihop-n{max(s['n'] for s in summaries)}.png"
        (docs.parent / image).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / "multihop.png", docs.parent / image)
        figure = f"![metrics per method and dataset, bootstrap 95% intervals]({image.as_posix()})\n"
        replace_marked_section(docs, DOCS_SECTION, header + table + "\n" + figure)
    return table


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    agent = {flag: getattr(args, flag) for flag in AGENT_FLAGS}
    settings = load_settings(args.config, agent=agent)
    llm_update: dict[str, Any] = {}
    if settings.llm.batch_size < args.batch:
        # A wave is one generate call; a local model would split it into smaller batches.
        llm_update["batch_size"] = args.batch
    if args.threads is not None:
        llm_update["threads"] = args.threads
    settings = settings.model_copy(update={"llm": settings.llm.model_copy(update=llm_update)})
    shared = Shared(
        settings=settings,
        generator=make_generator(settings.llm, settings.cache_dir),
        embedder=make_embedder(settings.embed),
        out=args.out,
        n=args.n,
        seed=args.seed,
        methods=tuple(args.methods),
        batch=args.batch,
        judge=args.judge,
    )
    summaries: list[dict[str, Any]] = []
    for dataset in args.datasets:
        relative = DATA_FILES[dataset]
        path = args.data_root / relative if relative is not None else None
        if path is not None and not path.is_file():
            console.print(f"[yellow]skipped {dataset}: {path} not found")
            continue
        summaries += run_dataset(shared, dataset, path)
    if not summaries:
        raise SystemExit("no dataset was found; nothing to report")
    seconds = time.perf_counter() - started
    table = write_combined(args.out, summaries, settings, seconds, args.docs)
    print(table)  # plain: rich would wrap the long rows
    console.print(f"total wall time: {seconds:.0f} s ({seconds / 60:.1f} min) -> {args.out}")


if __name__ == "__main__":
    main()
