"""``reasonrag tune``: fine-tune the embedder or a reranker on an index's own corpus."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reasonrag.cli_support import ConfigOption, out, reported_errors, settings_or_exit
from reasonrag.tune.training import TuneOptions, TuneReport

tune_app = typer.Typer(
    help="Fine-tune the embedder or a cross-encoder reranker on synthetic queries made "
    "from an index's own chunks (headings, names, docstrings, first sentences).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

IndexDir = Annotated[Path, typer.Argument(help="The index to tune for.")]
Epochs = Annotated[float, typer.Option(min=0.01, help="Passes over the synthetic pairs.")]
BatchSize = Annotated[int, typer.Option(min=2, help="Pairs per step.")]
LearningRate = Annotated[float, typer.Option(min=0.0, help="Learning rate.")]
SaveSteps = Annotated[int, typer.Option(min=1, help="Steps between resumable checkpoints.")]


def _print(report: TuneReport) -> None:
    out.print(
        f"[green]tuned[/] {report.model} on {report.train_pairs} pairs"
        + (f" (resumed {report.resumed_from})" if report.resumed_from else "")
    )
    if report.recall_before is not None and report.recall_after is not None:
        out.print(
            f"held-out recall@5 on {report.held_out_pairs} pairs: "
            f"{report.recall_before:.3f} -> {report.recall_after:.3f}"
        )


@tune_app.command("embedder")
def embedder(
    index_dir: IndexDir,
    epochs: Epochs = 1.0,
    batch_size: BatchSize = 32,
    learning_rate: LearningRate = 2e-5,
    save_steps: SaveSteps = 50,
    config: ConfigOption = None,
) -> None:
    """Fine-tune the index's embedder into INDEX/tuned-embedder and re-embed the index
    with it; later opens use it. Re-run after a kill to resume from the last checkpoint."""
    from reasonrag.index import Index
    from reasonrag.tune.embedder import tune_embedder

    settings = settings_or_exit(config)
    with reported_errors():
        index = Index.open(index_dir, settings)
        report = tune_embedder(index, TuneOptions(epochs, batch_size, learning_rate, save_steps))
    _print(report)


@tune_app.command("reranker")
def reranker(
    index_dir: IndexDir,
    base: Annotated[
        Path | None,
        typer.Option(
            help="Model to start from (default retrieval.cross_encoder_model, else "
            "the embedded MiniLM with a new scoring head)."
        ),
    ] = None,
    epochs: Epochs = 1.0,
    batch_size: BatchSize = 32,
    learning_rate: LearningRate = 2e-5,
    save_steps: SaveSteps = 50,
    config: ConfigOption = None,
) -> None:
    """Fine-tune a cross-encoder into INDEX/tuned-reranker, trained against the index's
    own near misses. Re-run after a kill to resume from the last checkpoint."""
    from reasonrag.embed.sentence_transformers import embedded_model_path
    from reasonrag.index import Index
    from reasonrag.tune.reranker import tune_reranker

    settings = settings_or_exit(config)
    with reported_errors():
        index = Index.open(index_dir, settings)
        start = base or Path(settings.retrieval.cross_encoder_model or embedded_model_path())
        options = TuneOptions(epochs, batch_size, learning_rate, save_steps)
        report = tune_reranker(index, start, options)
    _print(report)
    out.print(
        "use it with REASONRAG_RETRIEVAL__RERANK=cross-encoder "
        f"REASONRAG_RETRIEVAL__CROSS_ENCODER_MODEL={report.model.resolve()}"
    )
