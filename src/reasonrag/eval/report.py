"""Summaries of evaluation runs: metrics with bootstrap CIs, markdown tables, plots and
paired comparisons. Everything is computed from a run folder's files, so reports can be
redrawn at any time without answering a question again."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from reasonrag.errors import DatasetError, InputError, NotFoundError
from reasonrag.eval.runner import PREDICTIONS, RUN_FILE, Prediction, PredictionLog
from reasonrag.eval.stats import bootstrap_ci, paired_bootstrap
from reasonrag.files import atomic_write_text
from reasonrag.plots import pyplot, save_figure

METRICS: dict[str, str] = {
    "em": "EM",
    "f1": "F1",
    "cover_em": "cover-EM",
    "judge": "judge acc",
    "cited_recall": "cited recall",
    "retrieved_recall": "retrieved recall",
    "finished": "valid finish",
}
"""Per-question metrics, in table order, with their labels."""
PLOTTED = ("em", "f1", "cover_em", "judge", "retrieved_recall")
COMPARED = ("em", "f1", "judge")
SUMMARY_JSON = "summary.json"
SUMMARY_MD = "summary.md"
METRICS_PNG = "metrics.png"
STEPS_PNG = "steps.png"


# --- reading runs --------------------------------------------------------------------------


def read_run(run_dir: Path) -> tuple[dict[str, Any], list[Prediction]]:
    """``run.json`` and the predictions of a run folder."""
    info_path = run_dir / RUN_FILE
    if not info_path.is_file():
        raise NotFoundError(f"{run_dir} is not an evaluation run: {RUN_FILE} is missing")
    info: dict[str, Any] = json.loads(info_path.read_text())
    return info, list(PredictionLog(run_dir / PREDICTIONS).read().values())


# --- summary -------------------------------------------------------------------------------


def _interval(values: Sequence[float]) -> dict[str, float]:
    mean, low, high = bootstrap_ci(values)
    return {"mean": mean, "low": low, "high": high, "n": len(values)}


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def summarize(predictions: Sequence[Prediction], info: Mapping[str, Any]) -> dict[str, Any]:
    """Metrics with 95% bootstrap intervals, mean usage and outcome counts of one run."""
    if not predictions:
        raise DatasetError("no predictions to summarize: the run answered no question yet")
    config = info.get("config", {})
    metrics = {}
    for name in METRICS:
        values = [p.metrics[name] for p in predictions if name in p.metrics]
        if values:
            metrics[name] = _interval(values)
    statuses: dict[str, int] = {}
    for p in predictions:
        statuses[p.status] = statuses.get(p.status, 0) + 1
    summary: dict[str, Any] = {
        "dataset": config.get("dataset"),
        "method": config.get("method"),
        "n": len(predictions),
        "metrics": metrics,
        "usage": {
            "steps": _mean([p.steps for p in predictions]),
            "prompt_tokens": _mean([p.prompt_tokens for p in predictions]),
            "completion_tokens": _mean([p.completion_tokens for p in predictions]),
            "latency_s": _mean([p.latency_s for p in predictions]),
            "seconds_per_question": _mean([p.wall_s for p in predictions]),
        },
        "status": statuses,
        "wall_s": sum(p.wall_s for p in predictions),
        "config": config,
        "machine": info.get("machine", {}),
        "started": info.get("started"),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if "judge" in metrics:
        summary["judge_unreadable"] = sum(
            "judge" in p.metrics and p.judge_verdict is None and bool(p.prediction.strip())
            for p in predictions
        )
    return summary


# --- tables --------------------------------------------------------------------------------


def _cell(metric: Mapping[str, float] | None) -> str:
    if metric is None:
        return "–"
    return f"{100 * metric['mean']:.1f} [{100 * metric['low']:.1f}, {100 * metric['high']:.1f}]"


def markdown_table(summaries: Sequence[Mapping[str, Any]]) -> str:
    """One row per run: metrics in percent with their 95% CI, then mean usage."""
    shown = [m for m in METRICS if any(m in s["metrics"] for s in summaries)]
    header = ["dataset", "method", "n", *(METRICS[m] for m in shown)]
    header += ["steps", "tokens", "s/question"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for s in summaries:
        usage = s["usage"]
        tokens = usage["prompt_tokens"] + usage["completion_tokens"]
        row = [str(s["dataset"]), str(s["method"]), str(s["n"])]
        row += [_cell(s["metrics"].get(m)) for m in shown]
        row += [f"{usage['steps']:.2f}", f"{tokens:.0f}", f"{usage['seconds_per_question']:.2f}"]
        lines.append("| " + " | ".join(row) + " |")
    note = "Metrics in percent with bootstrap 95% confidence intervals."
    return "\n".join(lines) + f"\n\n{note}\n"


# --- plots ---------------------------------------------------------------------------------


def plot_metrics(summaries: Sequence[Mapping[str, Any]], path: Path) -> None:
    """Bar chart: one panel per dataset, one bar group per method, one bar per metric, with
    bootstrap 95% error bars."""
    plt = pyplot()
    datasets = list(dict.fromkeys(str(s["dataset"]) for s in summaries))
    shown = [m for m in PLOTTED if any(m in s["metrics"] for s in summaries)]
    fig, axes = plt.subplots(
        1, len(datasets), figsize=(1.2 + 3.2 * len(datasets), 4.0), squeeze=False, sharey=True
    )
    width = 0.8 / len(shown)
    for ax, dataset in zip(axes[0], datasets, strict=True):
        runs = [s for s in summaries if str(s["dataset"]) == dataset]
        for j, metric in enumerate(shown):
            stats = [s["metrics"].get(metric, {"mean": 0.0, "low": 0.0, "high": 0.0}) for s in runs]
            means = [100 * x["mean"] for x in stats]
            errors = [
                [100 * (x["mean"] - x["low"]) for x in stats],
                [100 * (x["high"] - x["mean"]) for x in stats],
            ]
            xs = [i + (j - (len(shown) - 1) / 2) * width for i in range(len(runs))]
            ax.bar(xs, means, width, yerr=errors, capsize=2, label=METRICS[metric])
        ax.set_xticks(range(len(runs)), [str(s["method"]) for s in runs])
        ax.set_title(f"{dataset} (n={runs[0]['n']})")
        ax.set_ylim(0, 100)
    axes[0][0].set_ylabel("score (%)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    # Below the panels, so the legend never hides a bar.
    fig.legend(handles, labels, loc="lower center", ncol=len(shown), fontsize="small")
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    save_figure(fig, path)


def plot_steps(predictions: Sequence[Prediction], path: Path, title: str) -> None:
    """Histogram of the number of steps per question."""
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    steps = [p.steps for p in predictions]
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    ax.hist(steps, bins=range(min(steps), max(steps) + 2), align="left", rwidth=0.85)
    ax.set_xlabel("steps per question")
    ax.set_ylabel("questions")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title)
    fig.tight_layout()
    save_figure(fig, path)


# --- writing a run's report ----------------------------------------------------------------


def write_report(run_dir: Path) -> dict[str, Any]:
    """Write ``summary.json``, ``summary.md``, ``metrics.png`` and, for TAO, ``steps.png``
    into ``run_dir``; return the summary."""
    info, predictions = read_run(run_dir)
    summary = summarize(predictions, info)
    atomic_write_text(run_dir / SUMMARY_JSON, json.dumps(summary, indent=2) + "\n")
    atomic_write_text(run_dir / SUMMARY_MD, markdown_table([summary]))
    plot_metrics([summary], run_dir / METRICS_PNG)
    if summary["method"] == "tao":
        plot_steps(predictions, run_dir / STEPS_PNG, f"TAO steps ({summary['dataset']})")
    return summary


def load_summary(run_dir: Path) -> dict[str, Any]:
    """A run's ``summary.json``, computed from its files when it was not written yet."""
    path = run_dir / SUMMARY_JSON
    if path.is_file():
        summary: dict[str, Any] = json.loads(path.read_text())
        return summary
    info, predictions = read_run(run_dir)
    return summarize(predictions, info)


# --- comparing runs ------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    metric: str
    n: int
    """Questions both runs answered."""
    mean_a: float
    mean_b: float
    diff: float
    """mean of a - b over the shared questions."""
    low: float
    high: float
    p_value: float


def compare_runs(run_a: Path, run_b: Path, metrics: Sequence[str] = COMPARED) -> list[Comparison]:
    """Paired bootstrap of ``run_a - run_b`` on the questions both answered, for each metric
    both runs have on all of those questions."""
    a = {p.id: p for p in read_run(run_a)[1]}
    b = {p.id: p for p in read_run(run_b)[1]}
    shared = [i for i in a if i in b]
    if not shared:
        raise InputError(f"{run_a} and {run_b} share no question ids")
    comparisons = []
    for metric in metrics:
        if not all(metric in a[i].metrics and metric in b[i].metrics for i in shared):
            continue
        xs = [a[i].metrics[metric] for i in shared]
        ys = [b[i].metrics[metric] for i in shared]
        diff, low, high, p_value = paired_bootstrap(xs, ys)
        comparisons.append(
            Comparison(metric, len(shared), _mean(xs), _mean(ys), diff, low, high, p_value)
        )
    return comparisons


# --- documentation -------------------------------------------------------------------------


def replace_marked_section(path: Path, name: str, body: str) -> None:
    """Replace what lies between ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->`` in the
    markdown file ``path`` with ``body``, leaving the rest of the file as it was."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    text = path.read_text(encoding="utf-8")
    start = text.find(begin)
    stop = text.find(end, start + len(begin)) if start >= 0 else -1
    if stop < 0:
        raise InputError(f"{path}: no '{begin}' ... '{end}' section to replace")
    updated = text[: start + len(begin)] + "\n" + body.strip("\n") + "\n" + text[stop:]
    atomic_write_text(path, updated)
