"""The bundled demo: an invented world, indexed and searched in a couple of minutes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

from reasonrag.config import Settings
from reasonrag.progress import console

EMBEDDED_MODEL_NOTE = (
    "[dim]The steps above were written by the embedded SmolLM2-135M, a 135M-parameter model "
    "chosen because it installs from PyPI and runs offline: retrieval is strong, but a model "
    "this small often misreads the evidence or repeats itself. The same agent, prompts and "
    "index answer with any served model: `reasonrag ask INDEX QUESTION --backend openai "
    "--base-url http://localhost:8000/v1 --model NAME` (vLLM, llama.cpp server, Ollama). "
    "Or train this one to reason over retrieved evidence: `reasonrag train reasoner` builds "
    "oracle chains from a QA set's gold structure and fine-tunes a LoRA adapter that `--model` "
    "then accepts (docs/benchmarks.md has before/after scores).[/]"
)


def demo_dir() -> Path:
    return Path(str(files("reasonrag") / "data" / "demo"))


def demo_corpus() -> Path:
    return demo_dir() / "corpus.jsonl"


def demo_questions() -> list[dict[str, Any]]:
    lines = (demo_dir() / "questions.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def run_demo(
    settings: Settings,
    out_dir: Path,
    n_questions: int,
    show_hits: Callable[[str, list[Any]], None],
    ask: Callable[[Any, str], Any],
) -> None:
    """Index the demo corpus, search it with a few questions, then let the TAO agent
    answer one of them; ``ask(agent, question)`` draws the live trace."""
    from reasonrag.index import Index
    from reasonrag.reason import Agent

    started = time.perf_counter()
    console.rule("[bold]reasonrag demo: indexing the invented-world corpus")
    index = Index.build([demo_corpus()], settings, out_dir)
    assert index.manifest is not None
    console.print(
        f"{index.manifest.n_documents} documents, {index.manifest.n_chunks} chunks "
        f"(contexts: {index.manifest.context_mode}) in {time.perf_counter() - started:.1f} s "
        f"-> {out_dir}"
    )
    console.rule("[bold]searching with demo questions")
    for question in demo_questions()[:n_questions]:
        hits = index.search(question["question"], k=5)
        show_hits(question["question"], hits)
        gold = set(question["supporting_docs"])
        found = sorted({h.doc_id for h in hits} & gold)
        console.print(f"  supporting documents in top 5: {len(found)}/{len(gold)} {found}\n")
    question = demo_questions()[0]
    console.rule("[bold]the TAO agent answers a multi-hop question")
    agent = Agent.from_config(settings, retriever=index)
    answer = ask(agent, question["question"])
    console.print(
        f"gold answer: [bold]{question['answers'][0]}[/]   agent: [bold]{answer.answer}[/] "
        f"({answer.status}, {answer.usage.steps} steps)"
    )
    if settings.llm.model == "smollm2":
        console.print(EMBEDDED_MODEL_NOTE)
    console.print(f"demo finished in {time.perf_counter() - started:.0f} s")
