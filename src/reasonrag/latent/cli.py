"""``reasonrag clara``: pretrain the compressor, train the query reasoner and generator
jointly, encode an index, and look inside the query reasoner's vectors."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reasonrag.cli_support import ConfigOption, out, reported_errors, settings_or_exit
from reasonrag.datasets.loaders import DatasetName, QAExample

clara_app = typer.Typer(
    help="CLaRa: documents as a few continuous vectors, retrieval trained by the answer loss.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

IndexDir = Annotated[Path, typer.Option("--index", help="Index whose chunks are compressed.")]
Dataset = Annotated[DatasetName, typer.Option(help="QA dataset giving the supervision.")]
DataPath = Annotated[Path | None, typer.Option(help="Dataset file (demo: none needed).")]
Out = Annotated[Path, typer.Option("--out", "-o", help="Run folder.")]
Steps = Annotated[int, typer.Option(min=1, help="Optimiser steps.")]
Batch = Annotated[int, typer.Option(min=1, help="Records per step.")]
LearningRate = Annotated[float, typer.Option(min=0.0, help="Learning rate.")]
N = Annotated[int | None, typer.Option(min=1, help="Questions to sample (default all).")]


def _examples(dataset: str, path: Path | None, n: int | None) -> list[QAExample]:
    from reasonrag.datasets.loaders import load_dataset

    return load_dataset(dataset, path, n=n)


@clara_app.command("pretrain")
def pretrain(
    index: IndexDir,
    dataset: Dataset,
    out_dir: Out,
    path: DataPath = None,
    n: N = None,
    rate: Annotated[int, typer.Option(min=1, help="Compression rate: doc tokens per vector.")] = 16,
    doc_tokens: Annotated[int, typer.Option(min=8, help="Longest document read.")] = 256,
    model: Annotated[str, typer.Option(help="Backbone.")] = "smollm2",
    steps: Steps = 200,
    batch_size: Batch = 4,
    learning_rate: LearningRate = 1e-4,
    config: ConfigOption = None,
) -> None:
    """Salient compressor pretraining from the dataset's gold structure; resumable."""
    from reasonrag.index import Index
    from reasonrag.latent.model import ClaraConfig
    from reasonrag.latent.pipeline import pretrain as run
    from reasonrag.latent.trainer import TrainOptions

    settings = settings_or_exit(config)
    with reported_errors():
        clara = ClaraConfig(base_model=model, compression_rate=rate, doc_tokens=doc_tokens)
        options = TrainOptions(steps=steps, batch_size=batch_size, learning_rate=learning_rate)
        result = run(
            Index.open(index, settings),
            _examples(dataset, path, n),
            clara,
            out_dir,
            options,
            cache_dir=settings.cache_dir,
        )
    out.print(f"[green]pretrained[/] {result.steps} steps -> {result.model}")


@clara_app.command("train")
def train(
    pretrained: Annotated[Path, typer.Option(help="The model/ folder of `clara pretrain`.")],
    index: IndexDir,
    dataset: Dataset,
    out_dir: Out,
    path: DataPath = None,
    n: N = None,
    candidates: Annotated[int, typer.Option(min=2, help="Candidates per question.")] = 20,
    top_k: Annotated[int, typer.Option(min=1, help="Documents read per question.")] = 3,
    temperature: Annotated[float, typer.Option(min=0.0, help="Top-k softness.")] = 0.5,
    steps: Steps = 200,
    batch_size: Batch = 4,
    learning_rate: LearningRate = 1e-4,
    config: ConfigOption = None,
) -> None:
    """Joint training: the answer loss trains the query reasoner and the generator through
    a straight-through top-k; the compressor stays frozen. Resumable."""
    from reasonrag.index import Index
    from reasonrag.latent.pipeline import train_joint
    from reasonrag.latent.trainer import TrainOptions

    settings = settings_or_exit(config)
    options = TrainOptions(
        steps=steps,
        batch_size=batch_size,
        learning_rate=learning_rate,
        top_k=top_k,
        temperature=temperature,
    )
    with reported_errors():
        result = train_joint(
            pretrained,
            Index.open(index, settings),
            _examples(dataset, path, n),
            out_dir,
            options,
            candidates=candidates,
            cache_dir=settings.cache_dir,
        )
    out.print(f"[green]trained[/] {result.steps} steps -> {result.model}")


@clara_app.command("encode")
def encode(
    index_dir: Annotated[Path, typer.Argument(help="Index folder.")],
    model: Annotated[Path, typer.Option(help="A CLaRa model folder.")],
    config: ConfigOption = None,
) -> None:
    """Compress every chunk of the index and store the vectors (and a FAISS index over
    them) in its current generation."""
    from reasonrag.index import Index
    from reasonrag.latent.method import compressor_id
    from reasonrag.latent.model import ClaraModel
    from reasonrag.latent.store import encode_index

    settings = settings_or_exit(config)
    with reported_errors():
        clara = ClaraModel.load(model, settings.cache_dir)
        clara.eval()
        where = encode_index(
            Index.open(index_dir, settings), clara, compressor_id(model), settings.cache_dir
        )
    out.print(f"[green]encoded[/] -> {where}")


@clara_app.command("inspect")
def inspect(
    question: Annotated[str, typer.Argument(help="A question.")],
    model: Annotated[Path, typer.Option(help="A CLaRa model folder.")],
    top: Annotated[int, typer.Option(min=1, help="Tokens shown per vector.")] = 5,
    config: ConfigOption = None,
) -> None:
    """Logit lens: the vocabulary tokens nearest each of the query reasoner's vectors."""
    import torch

    from reasonrag.latent.model import ClaraModel

    settings = settings_or_exit(config)
    with reported_errors():
        clara = ClaraModel.load(model, settings.cache_dir)
        clara.eval()
        with torch.no_grad():
            vectors = clara.encode_queries([question])[0]
        tokens = clara.nearest_tokens(vectors, top)
    for slot, words in enumerate(tokens):
        out.print(f"slot {slot:2d}: " + "  ".join(repr(w) for w in words))
