"""The ``reasonrag`` command line."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from reasonrag.cli_support import (
    EXIT_FAILURE,
    err,
    out,
    reported_errors,
    settings_or_exit,
)
from reasonrag.config import default_cache_dir
from reasonrag.eval.cli import eval_app

app = typer.Typer(
    help="Retrieval-augmented reasoning over your own documents.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML config file (also $REASONRAG_CONFIG)."),
]
Backend = Annotated[
    str | None, typer.Option(help="Answering LLM backend: local, openai or anthropic.")
]
Model = Annotated[
    str | None, typer.Option(help="Answering LLM: 'smollm2', a local folder/.gguf or a name.")
]
BaseUrl = Annotated[
    str | None, typer.Option(help="OpenAI-compatible server root, e.g. http://localhost:8000/v1")
]


def _llm(backend: str | None, model: str | None, base_url: str | None) -> dict[str, Any]:
    return {"backend": backend, "model": model, "base_url": base_url}


def _warn_skip(path: Path, reason: str) -> None:
    err.print(f"[yellow]skipped[/] {path}: {reason}")


@app.command()
def index(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to index.")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Index folder to write.")],
    context: Annotated[
        str | None, typer.Option(help="Chunk contexts: llm, title or none (default title).")
    ] = None,
    backend: Backend = None,
    model: Model = None,
    base_url: BaseUrl = None,
    context_backend: Annotated[
        str | None, typer.Option(help="Backend writing contexts (default: --backend).")
    ] = None,
    context_model: Annotated[
        str | None, typer.Option(help="Model writing contexts (default: --model).")
    ] = None,
    update: Annotated[
        bool, typer.Option(help="Add to an existing index, replacing documents by id.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Load, chunk, contextualize, embed and store documents. Safe to re-run after a kill:
    cached contexts and embeddings are reused and the index is swapped in atomically."""
    from reasonrag.index import Index

    context_llm = None
    if context_backend or context_model:
        context_llm = _llm(context_backend or backend, context_model or model, base_url)
    settings = settings_or_exit(
        config,
        llm=_llm(backend, model, base_url),
        context={"mode": context, "llm": context_llm},
    )
    with reported_errors():
        if update and (out_dir / "manifest.json").exists():
            idx = Index.open(out_dir, settings)
            report = idx.add(paths)
            for path, reason in report.skipped:
                _warn_skip(Path(path), reason)
            out.print(f"updated {out_dir}: {report.documents} documents upserted")
        else:
            idx = Index.build(paths, settings, out_dir, on_skip=_warn_skip)
    assert idx.manifest is not None
    m = idx.manifest
    out.print(
        f"[green]indexed[/] {m.n_documents} documents, {m.n_chunks} chunks into {out_dir} "
        f"(contexts: {m.context_mode}, embedder: {m.embedder})"
    )


@app.command()
def search(
    index_dir: Annotated[Path, typer.Argument(help="Index folder.")],
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[int, typer.Option("-k", help="Number of hits.")] = 10,
    rerank: Annotated[
        str | None, typer.Option(help="Rerank the top hits: none, llm or cross-encoder.")
    ] = None,
    fusion: Annotated[str | None, typer.Option(help="rrf, weighted, dense or sparse.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print hits as JSON.")] = False,
    backend: Backend = None,
    model: Model = None,
    base_url: BaseUrl = None,
    config: ConfigOption = None,
) -> None:
    """Hybrid search of an index."""
    from reasonrag.index import Index

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


@app.command()
def ask(
    index_dir: Annotated[Path | None, typer.Argument(help="Index folder (not needed for closed).")],
    question: Annotated[str, typer.Argument(help="The question.")],
    method: Annotated[
        str | None, typer.Option(help="tao (agent), rag, rare or closed (no retrieval).")
    ] = None,
    max_steps: Annotated[int | None, typer.Option(help="Tmax for the TAO agent.")] = None,
    actions: Annotated[
        str | None,
        typer.Option(help="Comma-separated TAO actions: search,finish,verify,calculate,rethink."),
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
    """Answer a question with its citations; the reasoning trace is drawn as it happens."""
    from reasonrag.reason import Agent, save_traces

    agent_cfg: dict[str, Any] = {"method": method, "max_steps": max_steps, "index_dir": index_dir}
    if actions:
        agent_cfg["actions"] = tuple(a.strip() for a in actions.split(",") if a.strip())
    settings = settings_or_exit(config, llm=_llm(backend, model, base_url), agent=agent_cfg)
    with reported_errors():
        agent = Agent.from_config(settings)
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
    config: ConfigOption = None,
) -> None:
    """Delete documents from an index by id."""
    from reasonrag.index import Index

    with reported_errors():
        removed = Index.open(index_dir, settings_or_exit(config)).delete(doc_ids)
    out.print(f"removed {removed} chunks")


@app.command()
def demo(
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Where to write the demo index.")
    ] = None,
    context: Annotated[str, typer.Option(help="Chunk contexts: llm, title or none.")] = "title",
    questions: Annotated[int, typer.Option(help="Demo questions to search for.")] = 4,
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


app.add_typer(eval_app, name="eval")

if __name__ == "__main__":
    app()
