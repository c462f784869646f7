"""CLaRa against text RAG with the same backbone, on held-out demo questions.

    python benchmarks/clara.py [--n 48] [--rate 16] [--scp-steps 150] [--joint-steps 150]
        [--batch-size 4] [--candidates 20] [--top-k 3] [--out benchmarks/results/clara]
        [--docs docs/benchmarks.md]

Stages, each a resumable run folder under ``--out``: salient compressor pretraining on the
demo training questions' gold structure (``clara pretrain``), the "frozen" model (query
reasoner copied from the compressor, no joint step) and joint training (``clara train``).
Then three methods answer the demo evaluation questions, which training never saw: text RAG
(SmolLM2 reading the top-k chunks as text), CLaRa with the frozen query reasoner and CLaRa
after joint training (both reading the top-k chunks as vectors). Reported per method: EM and
F1 with bootstrap intervals, Recall@5 of the gold documents in the method's own retrieval,
and input positions per question (prompt tokens; for CLaRa text tokens plus memory slots).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reasonrag.config import Settings, load_settings
from reasonrag.datasets.corpus import corpus_documents, gold_doc_ids, prepare_index, title_index
from reasonrag.datasets.loaders import QAExample, load_dataset
from reasonrag.datasets.metrics import recall_at_k
from reasonrag.eval.report import replace_marked_section
from reasonrag.eval.runner import EvalSpec, evaluate
from reasonrag.eval.stats import bootstrap_ci
from reasonrag.files import atomic_write_text
from reasonrag.index import Index, Retriever
from reasonrag.latent.method import clara_parts
from reasonrag.latent.model import ClaraConfig
from reasonrag.latent.pipeline import pretrain, train_joint
from reasonrag.latent.trainer import TrainOptions
from reasonrag.plots import pyplot, save_figure
from reasonrag.progress import make_console
from retrieval_pass_at_k import HERE, report_header

console = make_console(stderr=True)
DOCS_SECTION = "clara"


def _recall_at_5(
    retriever: Retriever, examples: Sequence[QAExample], titles: dict[str, list[str]]
) -> list[float]:
    scores = []
    for example in examples:
        gold = gold_doc_ids(example, titles)
        found = list(dict.fromkeys(h.doc_id for h in retriever.search(example.question, 5)))
        scores.append(recall_at_k(found, gold, 5))
    return scores


def _interval(values: Sequence[float]) -> dict[str, float]:
    mean, low, high = bootstrap_ci(values)
    return {"mean": mean, "low": low, "high": high}


def _method(
    name: str,
    settings: Settings,
    index: Index,
    examples: Sequence[QAExample],
    titles: dict[str, list[str]],
    run_dir: Path,
    n: int,
) -> dict[str, Any]:
    started = time.perf_counter()
    result = evaluate(EvalSpec("demo", n=n), settings, run_dir, index=index, progress=True)
    retriever: Retriever = index
    if settings.agent.method == "clara":
        retriever, _ = clara_parts(settings, index)
    recall = _recall_at_5(retriever, examples, titles)
    predictions = result.predictions
    return {
        "method": name,
        "em": _interval([p.metrics["em"] for p in predictions]),
        "f1": _interval([p.metrics["f1"] for p in predictions]),
        "recall_at_5": _interval(recall),
        "positions": sum(p.prompt_tokens for p in predictions) / len(predictions),
        "seconds": round(time.perf_counter() - started, 1),
    }


def _cell(metric: dict[str, float]) -> str:
    return f"{100 * metric['mean']:.1f} [{100 * metric['low']:.1f}, {100 * metric['high']:.1f}]"


def table(rows: Sequence[dict[str, Any]]) -> str:
    lines = [
        "| method | EM | F1 | Recall@5 | input positions / question | seconds |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['method']} | {_cell(row['em'])} | {_cell(row['f1'])} | "
            f"{_cell(row['recall_at_5'])} | {row['positions']:.0f} | {row['seconds']:.0f} |"
        )
    return "\n".join(lines)


def plot(rows: Sequence[dict[str, Any]], path: Path) -> None:
    plt = pyplot()
    fig, (quality, cost) = plt.subplots(1, 2, figsize=(10, 3.6))
    names = [r["method"] for r in rows]
    for offset, metric in ((-0.2, "f1"), (0.2, "recall_at_5")):
        means = [100 * r[metric]["mean"] for r in rows]
        errors = [
            [100 * (r[metric]["mean"] - r[metric]["low"]) for r in rows],
            [100 * (r[metric]["high"] - r[metric]["mean"]) for r in rows],
        ]
        xs = [i + offset for i in range(len(rows))]
        quality.bar(xs, means, 0.4, yerr=errors, capsize=3, label=metric.replace("_", "@"))
    quality.set_xticks(range(len(rows)), names, rotation=10)
    quality.set_ylabel("%")
    quality.legend()
    cost.bar(names, [r["positions"] for r in rows], color="grey")
    cost.set_ylabel("input positions per question")
    cost.tick_params(axis="x", rotation=10)
    fig.tight_layout()
    save_figure(fig, path)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=48)
    parser.add_argument("--rate", type=int, default=16)
    parser.add_argument("--doc-tokens", type=int, default=256)
    parser.add_argument("--scp-steps", type=int, default=150)
    parser.add_argument("--joint-steps", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--candidates", type=int, default=20)
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "clara")
    parser.add_argument("--docs", type=Path, help="write the table into this markdown file")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    out: Path = args.out
    settings = load_settings()
    documents = corpus_documents([], "demo", None)
    index = prepare_index(documents, settings, out / "index")
    train = load_dataset("demo-train", None)
    held_out = load_dataset("demo", None, n=args.n)
    titles = title_index(documents)

    clara = ClaraConfig(compression_rate=args.rate, doc_tokens=args.doc_tokens)
    options = TrainOptions(
        steps=args.scp_steps, batch_size=args.batch_size, learning_rate=args.learning_rate
    )
    cache = settings.cache_dir
    scp = pretrain(index, train, clara, out / "scp", options, cache_dir=cache)
    joint_options = TrainOptions(
        steps=args.joint_steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        top_k=args.top_k,
    )
    frozen = train_joint(
        scp.model,
        index,
        train,
        out / "frozen",
        TrainOptions(steps=0, top_k=args.top_k),
        candidates=args.candidates,
        cache_dir=cache,
    )
    joint = train_joint(
        scp.model,
        index,
        train,
        out / "joint",
        joint_options,
        candidates=args.candidates,
        cache_dir=cache,
    )
    agent = {"top_k": args.top_k}
    methods = [
        ("text RAG (SmolLM2)", load_settings(agent={**agent, "method": "rag"})),
        (
            f"CLaRa {args.rate}x, frozen query reasoner",
            load_settings(
                agent={**agent, "method": "clara"},
                clara={"model": str(frozen.model), "top_k": args.top_k},
            ),
        ),
        (
            f"CLaRa {args.rate}x, joint training",
            load_settings(
                agent={**agent, "method": "clara"},
                clara={"model": str(joint.model), "top_k": args.top_k},
            ),
        ),
    ]
    rows = [
        _method(name, chosen, index, held_out, titles, out / "runs" / f"m{i}", args.n)
        for i, (name, chosen) in enumerate(methods)
    ]
    report = report_header(started) | {
        "rows": rows,
        "training": {
            "scp": {"steps": scp.steps, "first": scp.losses[:5], "last": scp.losses[-5:]},
            "joint": {"steps": joint.steps, "first": joint.losses[:5], "last": joint.losses[-5:]},
            "train_questions": len(train),
        },
    }
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "clara.json", json.dumps(report, indent=2) + "\n")
    plot(rows, out / "clara.png")
    body = table(rows)
    console.print(body)
    if args.docs:
        replace_marked_section(args.docs, DOCS_SECTION, body)


if __name__ == "__main__":
    main()
