"""``reasonrag data``: build training data (teacher ReaRAG chains, teacher RARE examples,
oracle chains and examples) from a QA dataset over an index."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from reasonrag.cli_support import ConfigOption, out, reported_errors, settings_or_exit
from reasonrag.config import Settings
from reasonrag.datasets.loaders import DatasetName
from reasonrag.train.data import Builder, DataSpec
from reasonrag.train.records import Kind

data_app = typer.Typer(
    help="Build training data: teacher chains (rearag), teacher RARE examples (rare) or "
    "oracle data from the dataset's gold structure (oracle).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

Dataset = Annotated[DatasetName, typer.Option(help="The QA dataset's format.")]
DataPath = Annotated[
    Path | None, typer.Option(help="Dataset file (demo: a folder; default the package's).")
]
Out = Annotated[Path, typer.Option("--out", "-o", help="Training data file to write (JSONL).")]
IndexDir = Annotated[
    Path | None,
    typer.Option(help="Index to search (default: one built from the dataset's paragraphs)."),
]
N = Annotated[int | None, typer.Option(min=1, help="Questions to sample (default all).")]
Seed = Annotated[int, typer.Option(help="Sampling seed.")]
TopK = Annotated[int, typer.Option(min=1, help="Documents per search.")]
Snippet = Annotated[int, typer.Option(min=50, help="Characters shown of each document.")]
MaxSteps = Annotated[int, typer.Option(min=2, help="Tmax for chains.")]
Example = Annotated[bool, typer.Option(help="Put the worked example in the agent's instructions.")]
Batch = Annotated[int, typer.Option(min=1, help="Questions per wave (one generate call).")]
Threshold = Annotated[
    float, typer.Option(min=0.0, max=1.0, help="Least answer F1 for a teacher example to count.")
]
TeacherBackend = Annotated[str | None, typer.Option(help="Teacher backend (default llm.backend).")]
TeacherModel = Annotated[str | None, typer.Option(help="Teacher model (default llm.model).")]
TeacherUrl = Annotated[str | None, typer.Option(help="Teacher's OpenAI-compatible server root.")]
Concurrency = Annotated[
    int | None, typer.Option(min=1, help="Requests in flight to a served teacher.")
]


def _run(
    builder: Builder,
    settings: Settings,
    dataset: str,
    path: Path | None,
    out_file: Path,
    index_dir: Path | None,
    n: int | None,
    seed: int,
    spec: DataSpec,
) -> None:
    from reasonrag.datasets.corpus import corpus_documents, prepare_index
    from reasonrag.datasets.loaders import load_dataset
    from reasonrag.index import Index
    from reasonrag.llm.factory import make_generator
    from reasonrag.train.data import build_data

    with reported_errors():
        examples = load_dataset(dataset, path, n=n, seed=seed)
        if index_dir is not None:
            index = Index.open(index_dir, settings)
        else:
            folder = out_file.with_name(out_file.with_suffix("").name + "-index")
            index = prepare_index(corpus_documents(examples, dataset, path), settings, folder)
        teacher = None if builder == "oracle" else make_generator(settings.llm, settings.cache_dir)
        summary = build_data(examples, index, spec, out_file, teacher=teacher)
    for kind, entry in summary["kinds"].items():
        out.print(
            f"[green]{kind}[/]: {entry['kept']} of {entry['questions']} questions kept"
            + "".join(f"; {count} {reason}" for reason, count in entry["dropped"].items())
        )
    out.print(f"-> {out_file}")


def _teacher_settings(
    config: Path | None,
    backend: str | None,
    model: str | None,
    base_url: str | None,
    concurrency: int | None,
) -> Settings:
    llm: dict[str, Any] = {
        "backend": backend,
        "model": model,
        "base_url": base_url,
        "concurrency": concurrency,
    }
    return settings_or_exit(config, llm=llm)


@data_app.command("oracle")
def oracle(
    dataset: Dataset,
    out_file: Out,
    path: DataPath = None,
    index: IndexDir = None,
    kind: Annotated[
        Literal["rearag", "rare", "both"],
        typer.Option(help="Chains (rearag), reasoning over documents (rare), or both."),
    ] = "both",
    n: N = None,
    seed: Seed = 0,
    top_k: TopK = 3,
    snippet_chars: Snippet = 900,
    max_steps: MaxSteps = 8,
    worked_example: Example = False,
    config: ConfigOption = None,
) -> None:
    """Chains and RARE examples from the dataset's gold structure, over real searches;
    questions whose evidence the index does not return are dropped, never faked."""
    kinds: dict[str, tuple[Kind, ...]] = {
        "both": ("rearag", "rare"),
        "rearag": ("rearag",),
        "rare": ("rare",),
    }
    spec = DataSpec(
        "oracle",
        kinds=kinds[kind],
        top_k=top_k,
        snippet_chars=snippet_chars,
        max_steps=max_steps,
        worked_example=worked_example,
    )
    _run("oracle", settings_or_exit(config), dataset, path, out_file, index, n, seed, spec)


@data_app.command("rearag")
def rearag(
    dataset: Dataset,
    out_file: Out,
    path: DataPath = None,
    index: IndexDir = None,
    n: N = None,
    seed: Seed = 0,
    threshold: Threshold = 0.8,
    top_k: TopK = 3,
    snippet_chars: Snippet = 900,
    max_steps: MaxSteps = 8,
    worked_example: Example = False,
    batch: Batch = 8,
    backend: TeacherBackend = None,
    model: TeacherModel = None,
    base_url: TeacherUrl = None,
    concurrency: Concurrency = None,
    config: ConfigOption = None,
) -> None:
    """ReaRAG chains: the teacher runs the TAO agent; chains whose answer reaches the F1
    threshold are kept (every step readable, finished by the teacher)."""
    settings = _teacher_settings(config, backend, model, base_url, concurrency)
    spec = DataSpec(
        "rearag",
        top_k=top_k,
        snippet_chars=snippet_chars,
        max_steps=max_steps,
        worked_example=worked_example,
        threshold=threshold,
        batch=batch,
        max_tokens=settings.agent.max_tokens,
    )
    _run("rearag", settings, dataset, path, out_file, index, n, seed, spec)


@data_app.command("rare")
def rare(
    dataset: Dataset,
    out_file: Out,
    path: DataPath = None,
    index: IndexDir = None,
    n: N = None,
    seed: Seed = 0,
    threshold: Threshold = 0.8,
    tries: Annotated[int, typer.Option(min=1, help="Samples per question at most.")] = 8,
    top_k: TopK = 3,
    snippet_chars: Snippet = 900,
    max_tokens: Annotated[int, typer.Option(min=16, help="Tokens per teacher answer.")] = 384,
    batch: Batch = 8,
    backend: TeacherBackend = None,
    model: TeacherModel = None,
    base_url: TeacherUrl = None,
    concurrency: Concurrency = None,
    config: ConfigOption = None,
) -> None:
    """RARE examples: the teacher reasons over the retrieved documents in <think> and
    answers in <answer>; the first of up to --tries samples reaching the threshold is kept."""
    settings = _teacher_settings(config, backend, model, base_url, concurrency)
    spec = DataSpec(
        "rare",
        top_k=top_k,
        snippet_chars=snippet_chars,
        threshold=threshold,
        tries=tries,
        max_tokens=max_tokens,
        batch=batch,
    )
    _run("rare", settings, dataset, path, out_file, index, n, seed, spec)


train_app = typer.Typer(
    help="Fine-tune a generator on training data (selective-loss SFT, LoRA by default).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@train_app.command("sft")
def sft(
    data: Annotated[
        list[Path], typer.Option("--data", "-d", help="Training data file(s) from `data`.")
    ],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Run folder to write.")],
    model: Annotated[
        str, typer.Option(help="Base model: smollm2, a .gguf or a Hugging Face folder.")
    ] = "smollm2",
    lora_r: Annotated[int, typer.Option(min=1, help="LoRA rank.")] = 16,
    lora_alpha: Annotated[int, typer.Option(min=1, help="LoRA alpha.")] = 32,
    full: Annotated[bool, typer.Option(help="Fine-tune every weight instead of LoRA.")] = False,
    epochs: Annotated[float, typer.Option(min=0.0, help="Passes over the data.")] = 1.0,
    max_steps: Annotated[int, typer.Option(help="Optimiser steps (-1: epochs decide).")] = -1,
    learning_rate: Annotated[float, typer.Option(min=0.0, help="Peak learning rate.")] = 2e-4,
    batch_size: Annotated[int, typer.Option(min=1, help="Records per forward pass.")] = 4,
    grad_accum: Annotated[int, typer.Option(min=1, help="Forward passes per step.")] = 2,
    max_length: Annotated[
        int, typer.Option(min=16, help="Longest record in tokens (longer ones are left out).")
    ] = 2048,
    save_steps: Annotated[int, typer.Option(min=1, help="Steps between checkpoints.")] = 20,
    seed: Annotated[int, typer.Option(help="Shuffling and initialisation seed.")] = 0,
    config: ConfigOption = None,
) -> None:
    """Train, resuming from the last checkpoint in --out after a kill; writes adapter/ (or
    model/ with --full) and loss.png there."""
    from reasonrag.train.sft import SFTOptions, train_sft

    settings = settings_or_exit(config)
    options = SFTOptions(
        model=model,
        lora_r=lora_r,
        lora_alpha=lora_alpha,
        full=full,
        epochs=epochs,
        max_steps=max_steps,
        learning_rate=learning_rate,
        batch_size=batch_size,
        grad_accum=grad_accum,
        max_length=max_length,
        save_steps=save_steps,
        seed=seed,
    )
    with reported_errors():
        result = train_sft(data, out_dir, options, cache_dir=settings.cache_dir)
    first, last = (result.losses[0], result.losses[-1]) if result.losses else (0.0, 0.0)
    out.print(
        f"[green]trained[/] {result.examples} records ({result.too_long} too long, left out), "
        f"{result.steps} steps, loss {first:.3f} -> {last:.3f} in {result.seconds / 60:.1f} min "
        f"-> {result.trained}"
    )


@train_app.command("export")
def export(
    trained: Annotated[
        Path, typer.Argument(help="A run folder of `train sft`, or its adapter/ folder.")
    ],
    out_path: Annotated[Path, typer.Option("--out", "-o", help="Folder (hf) or file (gguf).")],
    to: Annotated[
        Literal["hf", "gguf"],
        typer.Option(
            help="hf: a merged Hugging Face folder (vLLM, transformers); gguf: a "
            "file for the local llama.cpp engine."
        ),
    ] = "hf",
    config: ConfigOption = None,
) -> None:
    """Merge a LoRA adapter into its base model, as a Hugging Face folder or a GGUF file."""
    import tempfile

    from reasonrag.train.export import export_gguf, merge_adapter, reference_gguf

    settings = settings_or_exit(config)
    adapter = trained / "adapter" if (trained / "adapter").is_dir() else trained
    with reported_errors():
        if to == "hf":
            merge_adapter(adapter, out_path, settings.cache_dir)
        else:
            reference = reference_gguf(adapter)
            with tempfile.TemporaryDirectory(dir=out_path.parent) as scratch:
                merged = merge_adapter(adapter, Path(scratch) / "merged", settings.cache_dir)
                export_gguf(merged, out_path, reference)
    out.print(f"[green]exported[/] {adapter} -> {out_path}")


@train_app.command("reasoner")
def reasoner(
    shared_data: Annotated[
        Path, typer.Option(help="Folder holding hotpotqa/, musique/, 2wikimultihopqa/ train files.")
    ],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Run folder.")] = Path(
        "runs/reasoner"
    ),
    token_budget: Annotated[
        int, typer.Option(min=1, help="Tokens of training text (one epoch).")
    ] = 600_000,
    max_steps: Annotated[int, typer.Option(help="Stop after this many steps (-1: epoch).")] = -1,
    model: Annotated[str, typer.Option(help="Base model.")] = "smollm2",
    config: ConfigOption = None,
) -> None:
    """The shipped reasoner's recipe: oracle data from the public train splits and the demo
    world's training questions, then LoRA SFT of the embedded model (resumable)."""
    from dataclasses import replace

    from reasonrag.train.recipe import Recipe, build_reasoner

    settings = settings_or_exit(config)
    base = Recipe()
    recipe = replace(
        base,
        token_budget=token_budget,
        sft=replace(base.sft, max_steps=max_steps, model=model),
    )
    with reported_errors():
        result = build_reasoner(shared_data, out_dir, recipe, settings)
    out.print(
        f"[green]trained[/] on {result.examples} records in {result.seconds / 60:.1f} min, "
        f"{result.steps} steps -> {result.trained}"
    )
