"""Local generation throughput on the TAO agent's first step, by batch size, with and
without reuse of the shared system prompt's key/value cache.

    python benchmarks/generation_speed.py [--batches 10,24] [--questions 48]
        [--max-tokens 96] [--threads N] [--out FILE]

The prompts are the agent's first-step prompts (system prompt with its worked example, then
the question) for the demo questions, answered greedily as the agent asks (stop at
"Observation"). Every setting answers the same prompts; the texts with and without reuse are
compared, since the reuse must change the speed and nothing else.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from reasonrag.config import load_settings
from reasonrag.datasets.loaders import load_dataset
from reasonrag.files import atomic_write_text
from reasonrag.llm.base import GenParams
from reasonrag.llm.local import LocalGenerator
from reasonrag.reason.prompts import STOP, tao_prompt, tao_system
from retrieval_pass_at_k import HERE, report_header

console = Console(stderr=True)


def measure(
    generator: LocalGenerator, prompts: list[Any], params: GenParams
) -> tuple[dict[str, Any], list[str]]:
    # The first call pays for computing the shared prefix, as the first step of a run does.
    started = time.perf_counter()
    completions = generator.generate(prompts, params)
    seconds = time.perf_counter() - started
    generated = sum(c.completion_tokens for c in completions)
    row = {
        "batch": generator.batch_size,
        "reuse_prefixes": generator.reuse_prefixes,
        "seconds": round(seconds, 2),
        "s_per_question": round(seconds / len(prompts), 3),
        "prompt_tokens": sum(c.prompt_tokens for c in completions),
        "completion_tokens": generated,
        "completion_tokens_per_s": round(generated / seconds, 1),
    }
    return row, [c.text for c in completions]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", default="10,24", help="comma-separated batch sizes")
    parser.add_argument("--questions", type=int, default=48)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "generation_speed.json")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    settings = load_settings(None)
    system = tao_system(settings.agent.actions, settings.agent.max_steps)
    questions = load_dataset("demo", None, n=args.questions, seed=0)
    prompts = [tao_prompt(system, q.question, []) for q in questions]
    params = GenParams(max_tokens=args.max_tokens, temperature=0.0, stop=STOP)
    rows: list[dict[str, Any]] = []
    texts: dict[bool, list[str]] = {}
    for batch in [int(b) for b in args.batches.split(",") if b]:
        for reuse in (False, True):
            generator = LocalGenerator(
                settings.llm.model,
                batch_size=batch,
                reuse_prefixes=reuse,
                cache_dir=settings.cache_dir,
            )
            row, answers = measure(generator, prompts, params)
            rows.append(row)
            texts.setdefault(reuse, answers)
            console.print(row)
    same = sum(a == b for a, b in zip(texts[False], texts[True], strict=True))
    table = Table(title=f"TAO first step, {len(prompts)} demo questions")
    for name in ("batch", "reuse prefix", "s", "s/question", "completion tok/s"):
        table.add_column(name, justify="right")
    for r in rows:
        table.add_row(
            str(r["batch"]),
            "yes" if r["reuse_prefixes"] else "no",
            f"{r['seconds']:.1f}",
            f"{r['s_per_question']:.2f}",
            f"{r['completion_tokens_per_s']:.1f}",
        )
    console.print(table)
    console.print(f"identical answers with and without reuse: {same}/{len(prompts)}")
    payload = {
        **report_header(started),
        "model": generator.name,
        "threads": torch.get_num_threads(),
        "identical_answers": same,
        "questions": len(prompts),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
