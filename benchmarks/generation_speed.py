"""Generation speed of the two local backends, llama.cpp and transformers, on the same
prompts and the same embedded model: batch 1, the runner's batch, the TAO agent's first and
later steps with prefix reuse on and off, contextualization with and without reuse, and
llama.cpp with 1 and 2 threads.

    python benchmarks/generation_speed.py [--questions 8] [--max-tokens 64] [--steps 3]
        [--docs 4] [--torch-threads 2] [--out FILE]

The TAO prompts are the agent's prompts for the demo questions: step 1 is the system prompt
with its worked example and the question; each later step adds the previous step (a search
for the question's next sub-question, as the decomposition gives it) and its observation
(three of the question's paragraphs, formatted as the agent formats search results), so
every backend answers exactly the same prompts and each step's prompt extends the last. The
answers are greedy and stop at "Observation" as the agent's do. Contextualization writes a
context for every chunk of the first demo documents (chunks of 60 words, so that each
document has several) in the contextualizer's batches.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from rich.table import Table

from reasonrag.config import load_settings
from reasonrag.datasets.loaders import QAExample, load_dataset
from reasonrag.demo import demo_corpus
from reasonrag.files import atomic_write_text
from reasonrag.index.contextualize import LLMContextualizer
from reasonrag.index.records import Hit
from reasonrag.ingest.chunk import chunk_documents, whitespace_token_count
from reasonrag.ingest.load import load_documents
from reasonrag.llm.base import Completion, Generator, GenParams, Prompt
from reasonrag.llm.llamacpp import LlamaCppGenerator
from reasonrag.llm.local import LocalGenerator
from reasonrag.progress import make_console
from reasonrag.reason.prompts import STOP, format_documents, tao_prompt, tao_system
from reasonrag.reason.records import Step
from retrieval_pass_at_k import HERE, report_header

console = make_console(stderr=True)
RUNNER_BATCH = 8
"""Questions per wave in the evaluation runner (``eval run --batch``)."""


@dataclass(frozen=True)
class Measured:
    seconds: float
    completions: list[Completion]

    @property
    def generated(self) -> int:
        return sum(c.completion_tokens for c in self.completions)

    def row(self, **labels: Any) -> dict[str, Any]:
        prompt = sum(c.prompt_tokens for c in self.completions)
        cached = sum(c.extra.get("cache_read_input_tokens", 0) for c in self.completions)
        return {
            **labels,
            "prompts": len(self.completions),
            "seconds": round(self.seconds, 2),
            "prompt_tokens": prompt,
            "cached_prompt_tokens": cached,
            "completion_tokens": self.generated,
            "completion_tokens_per_s": round(self.generated / self.seconds, 1),
        }


def timed(call: Callable[[], list[Completion]]) -> Measured:
    started = time.perf_counter()
    completions = call()
    return Measured(time.perf_counter() - started, completions)


def agent_steps(questions: Sequence[QAExample], steps: int) -> list[list[Prompt]]:
    """``steps`` lists of prompts, one prompt per question; step k+1's extends step k's."""
    settings = load_settings(None)
    system = tao_system(settings.agent.actions, settings.agent.max_steps)
    by_step: list[list[Prompt]] = [[] for _ in range(steps)]
    for q in questions:
        taken: list[Step] = []
        for k in range(steps):
            by_step[k].append(tao_prompt(system, q.question, taken))
            hop = q.decomposition[k % len(q.decomposition)].question if q.decomposition else ""
            shown = q.paragraphs[3 * k : 3 * k + 3] or q.paragraphs[:3]
            hits = [Hit(f"c{j}", f"d{j}", p.title, p.text, "", 1.0, j) for j, p in enumerate(shown)]
            observation = format_documents(hits, settings.agent.snippet_chars // 2)
            taken.append(
                Step(k + 1, "search", hop, thought=f"I need: {hop}", observation=observation)
            )
    return by_step


def one_by_one(generator: Generator, prompts: Sequence[Prompt], params: GenParams) -> Measured:
    return timed(lambda: [generator.generate([p], params)[0] for p in prompts])


def tao_rows(
    make: Callable[[bool], Generator], backend: str, steps: list[list[Prompt]], params: GenParams
) -> tuple[list[dict[str, Any]], dict[bool, list[str]]]:
    rows, texts = [], {}
    for reuse in (False, True):
        generator = make(reuse)
        answers: list[str] = []
        for k, prompts in enumerate(steps):
            measured = timed(partial(generator.generate, prompts, params))
            answers += [c.text for c in measured.completions]
            rows.append(measured.row(backend=backend, workload=f"TAO step {k + 1}", reuse=reuse))
            console.print(rows[-1])
        texts[reuse] = answers
    return rows, texts


def context_rows(make: Callable[[bool], Generator], backend: str, n_docs: int) -> list[dict]:
    report = load_documents([demo_corpus()])
    docs = list(report.documents[:n_docs])
    chunks = chunk_documents(
        docs, max_tokens=60, overlap_tokens=0, count_tokens=whitespace_token_count
    )
    rows = []
    for reuse in (False, True):
        generator = make(reuse)
        contextualizer = LLMContextualizer(generator, max_tokens=48)
        started = time.perf_counter()
        contextualizer.contexts(chunks, {d.id: d for d in docs})
        seconds = time.perf_counter() - started
        rows.append(
            {
                "backend": backend,
                "workload": f"contexts, {len(docs)} docs",
                "reuse": reuse,
                "prompts": len(chunks),
                "seconds": round(seconds, 2),
                "contexts_per_s": round(len(chunks) / seconds, 3),
            }
        )
        console.print(rows[-1])
    return rows


def print_table(title: str, rows: list[dict[str, Any]], columns: list[str]) -> None:
    table = Table(title=title)
    for name in columns:
        table.add_column(name, justify="right")
    for row in rows:
        table.add_row(*(str(row.get(name, "")) for name in columns))
    console.print(table)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=RUNNER_BATCH)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3, help="TAO steps per question")
    parser.add_argument("--docs", type=int, default=4, help="demo documents to contextualize")
    parser.add_argument("--torch-threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "generation_speed.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.torch_threads)
    started = time.perf_counter()
    cache_dir = load_settings(None).cache_dir
    questions = load_dataset("demo", None, n=args.questions, seed=0)
    steps = agent_steps(questions, args.steps)
    params = GenParams(max_tokens=args.max_tokens, temperature=0.0, stop=STOP)
    batch = steps[0][:RUNNER_BATCH]

    def llama(reuse: bool = True, threads: int = 1) -> LlamaCppGenerator:
        return LlamaCppGenerator(
            threads=threads, n_parallel=RUNNER_BATCH, reuse_prefixes=reuse, cache_dir=cache_dir
        )

    def transformers(reuse: bool = True) -> LocalGenerator:
        return LocalGenerator(batch_size=RUNNER_BATCH, reuse_prefixes=reuse, cache_dir=cache_dir)

    speed: list[dict[str, Any]] = []
    for backend, make in (
        ("llamacpp, 1 thread", lambda: llama(threads=1)),
        ("llamacpp, 2 threads", lambda: llama(threads=2)),
        (f"transformers, {args.torch_threads} threads", transformers),
    ):
        generator = make()
        generator.generate(batch[:1], GenParams(max_tokens=1))  # warm-up
        alone = one_by_one(generator, batch[:4], params)
        speed.append(alone.row(backend=backend, workload="batch 1"))
        together = timed(partial(generator.generate, batch, params))
        speed.append(together.row(backend=backend, workload=f"batch {len(batch)}"))
        console.print(speed[-2:])
    tao, texts = [], {}
    for backend, maker in (
        ("llamacpp", lambda reuse: llama(reuse)),
        ("transformers", lambda reuse: transformers(reuse)),
    ):
        rows, texts[backend] = tao_rows(maker, backend, steps, params)
        tao += rows
    contexts = context_rows(lambda reuse: llama(reuse), "llamacpp", args.docs)
    contexts += context_rows(lambda reuse: transformers(reuse), "transformers", args.docs)

    columns = ["backend", "workload", "reuse", "prompts", "seconds", "prompt_tokens"]
    columns += ["cached_prompt_tokens", "completion_tokens", "completion_tokens_per_s"]
    print_table("batch 1 and the runner's batch (TAO step 1 prompts)", speed, columns)
    print_table(f"TAO steps, {len(questions)} demo questions in one batch", tao, columns)
    print_table("contextualization", contexts, [*columns[:5], "contexts_per_s"])
    identical = {
        b: sum(x == y for x, y in zip(t[False], t[True], strict=True)) for b, t in texts.items()
    }
    console.print(f"TAO answers identical with and without reuse: {identical}")
    payload = {
        **report_header(started),
        "questions": len(questions),
        "max_tokens": args.max_tokens,
        "speed": speed,
        "tao": tao,
        "contexts": contexts,
        "identical_with_and_without_reuse": identical,
        "tao_answers": len(questions) * args.steps,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
