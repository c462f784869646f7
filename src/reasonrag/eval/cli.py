"""``reasonrag eval``: run a method over a QA benchmark, report runs, compare two runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from reasonrag.cli_support import ConfigOption, fail, out, reported_errors, settings_or_exit
from reasonrag.config import LLMBackend, MethodName, Settings
from reasonrag.datasets.loaders import DatasetName
from reasonrag.llm.base import Generator

eval_app = typer.Typer(
    help="Evaluate reasoning methods on QA benchmarks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _judge_generator(
    settings: Settings, backend: LLMBackend | None, model: str | None
) -> Generator | None:
    """A separate judge generator when --judge-backend/--judge-model differ from ``llm``."""
    if backend is None and model is None:
        return None
    from pydantic import ValidationError

    from reasonrag.llm.factory import make_generator

    update = {k: v for k, v in (("backend", backend), ("model", model)) if v is not None}
    try:
        cfg = type(settings.llm).model_validate(settings.llm.model_dump() | update)
    except ValidationError as exc:
        fail(f"--judge-backend/--judge-model: {exc}")
    return make_generator(cfg, settings.cache_dir)


@eval_app.command("run")
def run(
    dataset: Annotated[DatasetName, typer.Option(help="The benchmark's format.")],
    path: Annotated[
        Path | None,
        typer.Option(help="Dataset file, or a folder holding {split}.jsonl (demo: optional)."),
    ] = None,
    split: Annotated[str, typer.Option(help="Split file to read when --path is a folder.")] = "dev",
    n: Annotated[int, typer.Option(min=1, help="Questions to sample (seeded).")] = 200,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    method: Annotated[
        MethodName | None, typer.Option(help="Reasoning method (default agent.method: tao).")
    ] = None,
    index: Annotated[
        Path | None,
        typer.Option(help="Index to search (default: one built from the dataset's paragraphs)."),
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Run folder (default runs/DATASET-METHOD-nN-sSEED)."),
    ] = None,
    judge: Annotated[bool, typer.Option(help="Also score answers with an LLM judge.")] = False,
    batch: Annotated[int, typer.Option(min=1, help="Questions answered together per wave.")] = 8,
    max_steps: Annotated[
        int | None, typer.Option(min=1, help="TAO step limit (agent.max_steps).")
    ] = None,
    top_k: Annotated[
        int | None, typer.Option(min=1, help="Snippets per search (agent.top_k).")
    ] = None,
    backend: Annotated[
        LLMBackend | None,
        typer.Option(help="Answering LLM backend (auto: llamacpp for .gguf, else transformers)."),
    ] = None,
    model: Annotated[str | None, typer.Option(help="Answering LLM model.")] = None,
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible server root.")] = None,
    judge_backend: Annotated[
        LLMBackend | None, typer.Option(help="Judge backend (default: the answering LLM's).")
    ] = None,
    judge_model: Annotated[
        str | None, typer.Option(help="Judge model (default: the answering LLM).")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    config: ConfigOption = None,
) -> None:
    """Answer and score a benchmark sample; re-running the same command resumes it."""
    from reasonrag.eval.report import markdown_table, write_report
    from reasonrag.eval.runner import EvalSpec, evaluate, resolve_dataset_path

    settings = settings_or_exit(
        config,
        llm={"backend": backend, "model": model, "base_url": base_url},
        agent={"method": method, "max_steps": max_steps, "top_k": top_k},
    )
    run_dir = out_dir or Path("runs") / f"{dataset}-{settings.agent.method}-n{n}-s{seed}"
    with reported_errors():
        spec = EvalSpec(dataset, resolve_dataset_path(dataset, path, split), n, seed, judge)
        opened = None
        if index is not None:
            from reasonrag.index import Index

            opened = Index.open(index, settings)
        judge_generator = _judge_generator(settings, judge_backend, judge_model) if judge else None
        result = evaluate(
            spec,
            settings,
            run_dir,
            index=opened,
            judge_generator=judge_generator,
            batch=batch,
            progress=progress,
        )
        summary = write_report(run_dir)
    typer.echo(markdown_table([summary]))  # plain: rich would wrap the long rows
    out.print(
        f"{result.new} questions answered now, {len(result.predictions) - result.new} resumed; "
        f"{result.seconds:.1f} s -> {run_dir}"
    )


@eval_app.command("report")
def report(
    runs: Annotated[list[Path], typer.Argument(help="Run folders.")],
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Write report.md and metrics.png here.")
    ] = None,
) -> None:
    """Rewrite each run's summary and print one table for all of them."""
    from reasonrag.eval.report import METRICS_PNG, markdown_table, plot_metrics, write_report

    with reported_errors():
        summaries = [write_report(run) for run in runs]
    table = markdown_table(summaries)
    typer.echo(table)
    if out_dir is not None:
        from reasonrag.files import atomic_write_text

        atomic_write_text(out_dir / "report.md", table)
        atomic_write_text(out_dir / "summaries.json", json.dumps(summaries, indent=2) + "\n")
        plot_metrics(summaries, out_dir / METRICS_PNG)
        out.print(f"report written to {out_dir}")


@eval_app.command("compare")
def compare(
    run_a: Annotated[Path, typer.Argument(help="First run folder (A).")],
    run_b: Annotated[Path, typer.Argument(help="Second run folder (B).")],
) -> None:
    """Paired bootstrap of A - B on the questions both runs answered."""
    from reasonrag.eval.report import METRICS, compare_runs

    with reported_errors():
        rows = compare_runs(run_a, run_b)
    table = Table(title=f"A = {run_a}   B = {run_b}", title_justify="left")
    for name in ("metric", "n", "A", "B", "A - B", "95% CI", "p"):
        table.add_column(name, justify="left" if name == "metric" else "right")
    for row in rows:
        table.add_row(
            METRICS[row.metric],
            str(row.n),
            f"{row.mean_a:.3f}",
            f"{row.mean_b:.3f}",
            f"{row.diff:+.3f}",
            f"[{row.low:+.3f}, {row.high:+.3f}]",
            f"{row.p_value:.3f}",
        )
    out.print(table)
