"""The ``reasonrag`` command line.

Every option that mirrors a setting defaults to None, so a flag that is not given never
overrides the config file or the environment."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, get_args

import typer
from rich.table import Table

from reasonrag.cli_config import config_app
from reasonrag.cli_support import (
    EXIT_FAILURE,
    ConfigOption,
    err,
    fail,
    out,
    reported_errors,
    settings_or_exit,
)
from reasonrag.config import (
    ActionName,
    ContextMode,
    Fusion,
    LLMBackend,
    MethodName,
    Rerank,
    default_cache_dir,
)
from reasonrag.eval.cli import eval_app
from reasonrag.latent.cli import clara_app
from reasonrag.train.cli import data_app, train_app
from reasonrag.tune.cli import tune_app

app = typer.Typer(
    help="Retrieval-augmented reasoning over your own documents.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
Backend = Annotated[
    LLMBackend | None,
    typer.Option(help="Answering LLM backend (auto: llamacpp for .gguf, else transformers)."),
]
Model = Annotated[
    str | None, typer.Option(help="Answering LLM: 'smollm2', a local folder/.gguf or a name.")
]
BaseUrl = Annotated[
    str | None, typer.Option(help="OpenAI-compatible server root, e.g. http://localhost:8000/v1")
]
Wait = Annotated[
    bool,
    typer.Option(help="When another process is writing the index, wait for it (or fail)."),
]


def _llm(backend: LLMBackend | None, model: str | None, base_url: str | None) -> dict[str, Any]:
    return {"backend": backend, "model": model, "base_url": base_url}


@app.command()
def index(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to index.")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Index folder to write.")],
    context: Annotated[
        ContextMode | None, typer.Option(help="Chunk contexts (default title).")
    ] = None,
    backend: Backend = None,
    model: Model = None,
    base_url: BaseUrl = None,
    context_backend: Annotated[
        LLMBackend | None, typer.Option(help="Backend writing contexts (default: --backend).")
    ] = None,
    context_model: Annotated[
        str | None, typer.Option(help="Model writing contexts (default: --model).")
    ] = None,
    update: Annotated[
        bool, typer.Option(help="Add to an existing index, replacing documents by id.")
    ] = False,
    wait: Wait = True,
    config: ConfigOption = None,
) -> None:
    """Load, chunk, contextualize, embed and store documents. Safe to re-run after a kill:
    cached contexts and embeddings are reused and the index is swapped in atomically."""
    from reasonrag.index import Index
    from reasonrag.index.store import MANIFEST, check_target

    context_llm = None
    if context_backend or context_model:
        context_llm = _llm(context_backend or backend, context_model or model, base_url)
    settings = settings_or_exit(
        config,
        llm=_llm(backend, model, base_url),
        context={"mode": context, "llm": context_llm},
    )
    skipped: list[tuple[Path, str]] = []

    def warn_skip(path: Path, reason: str) -> None:
        skipped.append((path, reason))
        err.print(f"[yellow]skipped[/] {path}: {reason}")

    with reported_errors():
        check_target(out_dir)
        if update and (out_dir / MANIFEST).exists():
            idx = Index.open(out_dir, settings, wait=wait)
            report = idx.add(paths)
            for path, reason in report.skipped:
                warn_skip(Path(path), reason)
            out.print(f"updated {out_dir}: {report.documents} documents upserted")
        else:
            idx = Index.build(paths, settings, out_dir, on_skip=warn_skip, wait=wait)
    assert idx.manifest is not None
    m = idx.manifest
    out.print(
        f"[green]indexed[/] {m.n_documents} documents, {m.n_chunks} chunks into {out_dir} "
        f"(contexts: {m.context_mode}, embedder: {m.embedder}); {len(skipped)} skipped"
    )


@app.command()
def search(
    index_dir: Annotated[Path, typer.Argument(help="Index folder.")],
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[int, typer.Option("-k", min=1, help="Number of hits.")] = 10,
    rerank: Annotated[Rerank | None, typer.Option(help="Rerank the top hits.")] = None,
    fusion: Annotated[Fusion | None, typer.Option(help="How dense and BM25 lists combine.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print hits as JSON.")] = False,
    backend: Backend = None,
    model: Model = None,
    base_url: BaseUrl = None,
    config: ConfigOption = None,
) -> None:
    """Hybrid search of an index."""
    from reasonrag.index import Index

    if not query.strip():
        fail("the query is empty")
    settings = settings_or_exit(
        config,
        llm=_llm(backend, model, base_url),
        retrieval={"rerank": rerank, "fusion": fusion},
    )
    with reported_errors():
        hits = Index.open(index_dir, settings).search(query, k)
    if as_json:
        typer.echo(json.dumps([asdict(h) for h in hits], indent=2, ensure_ascii=False))
        return
    _print_hits(query, hits)


def _print_hits(query: str, hits: list[Any]) -> None:
    table = Table(title=f"[bold]{query}", show_lines=False, title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    table.add_column("chunk")
    table.add_column("text", overflow="fold")
    for hit in hits:
        snippet = " ".join(hit.text.split())
        table.add_row(
            str(hit.rank + 1),
            f"{hit.score:.3f}",
            f"{hit.chunk_id}\n[dim]{hit.title}",
            snippet[:220] + ("…" if len(snippet) > 220 else ""),
        )
    out.print(table)


def _actions(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    return tuple(a.strip() for a in text.split(",") if a.strip())


@app.command()
def ask(
    index_or_question: Annotated[
        str,
        typer.Argument(
            metavar="INDEX",
            help="Index folder; with --method closed or agent.index_dir, the question itself.",
        ),
    ],
    question: Annotated[
        str | None, typer.Argument(metavar="QUESTION", show_default=False, help="The question.")
    ] = None,
    method: Annotated[
        MethodName | None, typer.Option(help="tao (agent), rag, rare or closed (no index).")
    ] = None,
    max_steps: Annotated[int | None, typer.Option(min=1, help="Tmax for the TAO agent.")] = None,
    actions: Annotated[
        str | None,
        typer.Option(help="Comma-separated TAO actions, of: " + ", ".join(get_args(ActionName))),
    ] = None,
    trace: Annotated[
        bool, typer.Option(help="Show every step's hits, not only the answer.")
    ] = True,
    save_trace: Annotated[
        Path | None, typer.Option(help="Append the answer with its trace to this JSONL file.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the answer record as JSON.")
    ] = False,
    backend: Backend = None,
    model: Model = None,
    base_url: BaseUrl = None,
    config: ConfigOption = None,
) -> None:
    """Answer a question with its citations; the reasoning trace is drawn as it happens.
    With --method closed (or agent.index_dir in the config) the index may be left out."""
    from reasonrag.agents import make_agent
    from reasonrag.reason import save_traces

    index_dir: Path | None = Path(index_or_question)
    if question is None:
        index_dir, question = None, index_or_question
    if not question.strip():
        fail("the question is empty")
    agent_cfg: dict[str, Any] = {
        "method": method,
        "max_steps": max_steps,
        "index_dir": index_dir,
        "actions": _actions(actions),
    }
    settings = settings_or_exit(config, llm=_llm(backend, model, base_url), agent=agent_cfg)
    with reported_errors():
        agent = make_agent(settings)
        answer = _ask_live(agent, question, trace) if not as_json else agent.ask(question)
    if save_trace:
        save_traces(save_trace, [answer])
    if as_json:
        typer.echo(json.dumps(answer.to_dict(), indent=2, ensure_ascii=False))
    if answer.status == "failed":
        raise typer.Exit(EXIT_FAILURE)


def _ask_live(agent: Any, question: str, show_hits: bool) -> Any:
    from rich.live import Live

    from reasonrag.reason.render import TraceView

    view = TraceView(question, max_hits=5 if show_hits else 0)
    with Live(view, console=out, refresh_per_second=8):
        answer = agent.ask(question, on_step=view)
        view.finish(answer)
    return answer


@app.command()
def remove(
    index_dir: Annotated[Path, typer.Argument(help="Index folder.")],
    doc_ids: Annotated[list[str], typer.Argument(help="Document ids to delete.")],
    wait: Wait = True,
    config: ConfigOption = None,
) -> None:
    """Delete documents from an index by id (`reasonrag info INDEX` lists them). An unknown
    id is an error and deletes nothing."""
    from reasonrag.index import Index

    settings = settings_or_exit(config)
    with reported_errors():
        removed = Index.open(index_dir, settings, wait=wait).delete(doc_ids)
    out.print(f"removed {len(set(doc_ids))} documents ({removed} chunks) from {index_dir}")


@app.command()
def info(
    index_dir: Annotated[Path, typer.Argument(help="Index folder.")],
    ids: Annotated[bool, typer.Option(help="List the document ids.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """What an index holds: documents, chunks, embedder, contexts, size, document ids.
    Reads the files only; no model is loaded."""
    from reasonrag.index.info import describe

    with reported_errors():
        summary = describe(index_dir)
    if as_json:
        typer.echo(json.dumps(summary, indent=2, ensure_ascii=False))
        return
    table = Table(title=f"[bold]{index_dir}", show_header=False, title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in summary.items():
        if key != "documents":
            table.add_row(key, str(value))
    out.print(table)
    if ids:
        docs = Table(title="documents", title_justify="left")
        docs.add_column("id", overflow="fold")
        docs.add_column("chunks", justify="right")
        docs.add_column("title", overflow="fold")
        for doc in summary["documents"]:
            docs.add_row(doc["id"], str(doc["chunks"]), doc["title"])
        out.print(docs)


@app.command()
def demo(
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Where to write the demo index.")
    ] = None,
    context: Annotated[
        ContextMode | None, typer.Option(help="Chunk contexts (default title).")
    ] = None,
    questions: Annotated[int, typer.Option(min=0, help="Demo questions to search for.")] = 4,
    config: ConfigOption = None,
) -> None:
    """Index the bundled demo corpus, search it with some of its questions, and answer one
    multi-hop question with the TAO agent."""
    from reasonrag.demo import run_demo

    settings = settings_or_exit(config, context={"mode": context})
    with reported_errors():
        run_demo(
            settings,
            out_dir or default_cache_dir() / "demo-index",
            questions,
            _print_hits,
            lambda agent, question: _ask_live(agent, question, show_hits=True),
        )


@app.command()
def serve(
    index_dir: Annotated[Path, typer.Argument(metavar="INDEX", help="Index folder to serve.")],
    host: Annotated[
        str, typer.Option(help="Address to bind; any but loopback needs server.api_keys.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    config: ConfigOption = None,
) -> None:
    """Serve an index over HTTP: an OpenAI-compatible chat API (one model per method), a
    native API (ask, search, documents) and a web UI at /."""
    try:
        import uvicorn

        from reasonrag.server import check_bind, create_app
    except ModuleNotFoundError as exc:
        fail(f"the server needs its extra ({exc.name} is missing): pip install 'reasonrag[server]'")
    from reasonrag.index import Index

    settings = settings_or_exit(config, agent={"index_dir": index_dir})
    with reported_errors():
        check_bind(host, settings.server)
        server = create_app(settings, Index.open(index_dir, settings))
    uvicorn.run(server, host=host, port=port)


app.add_typer(eval_app, name="eval")
app.add_typer(data_app, name="data")
app.add_typer(train_app, name="train")
app.add_typer(clara_app, name="clara")
app.add_typer(tune_app, name="tune")
app.add_typer(config_app, name="config")

if __name__ == "__main__":
    app()
