"""The recipe of the shipped reasoner: oracle chains and RARE examples from the public train
splits (HotpotQA, MuSiQue, 2Wiki) and the demo world's training questions, a token budget
that fits an hour of CPU training, and LoRA SFT of the embedded SmolLM2-135M-Instruct.

Every stage is resumable: data files are appended question by question, the selection is
a pure function of them, and SFT resumes from its last checkpoint.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from reasonrag.config import Settings
from reasonrag.errors import NotFoundError
from reasonrag.files import atomic_write_text
from reasonrag.train.data import DataSpec
from reasonrag.train.records import TrainRecord, read_records
from reasonrag.train.sft import SFTOptions, SFTResult

SOURCES: tuple[tuple[str, str | None], ...] = (
    ("hotpotqa", "hotpotqa/train.jsonl"),
    ("musique", "musique/train.jsonl"),
    ("2wiki", "2wikimultihopqa/train.jsonl"),
    ("demo-train", None),
)
"""(dataset, file under the shared data folder); the demo questions ship with the package.
Only train splits: the dev files are what the result is measured on."""


@dataclass(frozen=True)
class Recipe:
    spec: DataSpec = field(
        default_factory=lambda: DataSpec("oracle", top_k=3, snippet_chars=900, max_steps=8)
    )
    token_budget: int = 600_000
    """Tokens of training text in one epoch. Measured here: LoRA SFT of the 135M model
    runs at about 180-230 tokens/s on two CPU cores, so this is about 50 minutes."""
    rare_share: float = 0.25
    """Share of the budget given to RARE examples; the rest to ReaRAG chains."""
    sft: SFTOptions = field(
        default_factory=lambda: SFTOptions(
            learning_rate=3e-4, batch_size=2, grad_accum=4, max_length=3072, save_steps=10
        )
    )
    seed: int = 0


def build_sources(
    shared: Path, out: Path, recipe: Recipe, settings: Settings, *, progress: bool = True
) -> list[Path]:
    """Oracle data for every source, one file each under ``out``."""
    from reasonrag.datasets.corpus import corpus_documents, prepare_index
    from reasonrag.datasets.loaders import load_dataset
    from reasonrag.train.data import build_data

    files = []
    for name, relative in SOURCES:
        path = shared / relative if relative else None
        if path is not None and not path.is_file():
            raise NotFoundError(f"{path}: the recipe trains on the shared train splits")
        examples = load_dataset(name, path)
        documents = corpus_documents(examples, name, None)
        index = prepare_index(documents, settings, out / f"{name}-index", progress=progress)
        target = out / f"{name}.jsonl"
        build_data(examples, index, recipe.spec, target, progress=progress)
        files.append(target)
    return files


def select(records: Sequence[TrainRecord], lengths: Sequence[int], recipe: Recipe) -> list[int]:
    """Positions of the records one epoch trains on: per kind, its share of the token
    budget, filled round-robin over the datasets (each shuffled with the seed) so that no
    dataset crowds out the others."""
    rng = random.Random(recipe.seed)
    budgets = {
        "rare": recipe.token_budget * recipe.rare_share,
        "rearag": recipe.token_budget * (1 - recipe.rare_share),
    }
    chosen: list[int] = []
    for kind, budget in budgets.items():
        queues: dict[str, list[int]] = defaultdict(list)
        for i, record in enumerate(records):
            if record.kind == kind and lengths[i] <= recipe.sft.max_length:
                queues[record.dataset].append(i)
        for queue in queues.values():
            rng.shuffle(queue)
        spent = 0.0
        while spent < budget and any(queues.values()):
            for queue in queues.values():
                if queue and spent < budget:
                    i = queue.pop()
                    chosen.append(i)
                    spent += lengths[i]
    return sorted(chosen)


def build_reasoner(
    shared: Path, out: Path, recipe: Recipe, settings: Settings, *, progress: bool = True
) -> SFTResult:
    """Data, selection and training of the reasoner under ``out``."""
    from transformers import AutoTokenizer

    from reasonrag.llm.local import hf_folder
    from reasonrag.train.collator import encode_record
    from reasonrag.train.records import append_jsonl
    from reasonrag.train.sft import train_sft

    data_dir = out / "data"
    files = build_sources(shared, data_dir, recipe, settings, progress=progress)
    records = [r for path in files for r in read_records(path)]
    tokenizer = AutoTokenizer.from_pretrained(hf_folder(recipe.sft.model, settings.cache_dir))
    lengths = [len(encode_record(tokenizer, r).input_ids) for r in records]
    chosen = select(records, lengths, recipe)
    selection = data_dir / "train.jsonl"
    if not selection.exists():
        tmp = selection.with_name(".train.jsonl.tmp")
        tmp.unlink(missing_ok=True)
        append_jsonl(tmp, [records[i].to_dict() for i in chosen])
        tmp.rename(selection)
    summary = _summary(records, lengths, chosen, recipe)
    atomic_write_text(data_dir / "selection.json", json.dumps(summary, indent=2) + "\n")
    return train_sft(
        [selection], out / "sft", recipe.sft, cache_dir=settings.cache_dir, progress=progress
    )


def _summary(
    records: Sequence[TrainRecord], lengths: Sequence[int], chosen: Sequence[int], recipe: Recipe
) -> dict[str, Any]:
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for i in chosen:
        entry = counts[f"{records[i].dataset}/{records[i].kind}"]
        entry["records"] += 1
        entry["tokens"] += lengths[i]
    return {
        "recipe": asdict(recipe),
        "available": len(records),
        "chosen": len(chosen),
        "tokens": sum(lengths[i] for i in chosen),
        "by_source": {k: dict(v) for k, v in sorted(counts.items())},
    }
