"""What the two tuning commands share: options, checkpoints, and swapping in the result."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TuneOptions:
    epochs: float = 1.0
    batch_size: int = 32
    learning_rate: float = 2e-5
    save_steps: int = 50
    """Steps between checkpoints; a killed run resumes from the last one."""
    seed: int = 0
    progress: bool = True


@dataclass(frozen=True)
class TuneReport:
    model: Path
    """The tuned model's folder, beside the index."""
    train_pairs: int
    held_out_pairs: int
    resumed_from: str | None
    """The checkpoint this run continued, if it resumed one."""
    recall_before: float | None = None
    recall_after: float | None = None


def checkpoints(target: Path) -> Path:
    """Where the checkpoints of the run that writes ``target`` live until it has finished."""
    return target.with_name(f"{target.name}.checkpoints")


def last_checkpoint(folder: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(folder)) if folder.is_dir() else None


def training_arguments(options: TuneOptions, folder: Path, device: str) -> dict[str, Any]:
    """Trainer arguments both trainers take: no reporting services, two checkpoints kept."""
    return {
        "use_cpu": device == "cpu",
        "output_dir": str(folder),
        "num_train_epochs": options.epochs,
        "per_device_train_batch_size": options.batch_size,
        "learning_rate": options.learning_rate,
        "save_strategy": "steps",
        "save_steps": options.save_steps,
        "save_total_limit": 2,
        "logging_steps": options.save_steps,
        "seed": options.seed,
        "report_to": [],
        "disable_tqdm": not options.progress,
    }


def install(save: Callable[[Path], None], target: Path) -> None:
    """Save a model with ``save`` to a temporary folder, then swap it in for ``target``
    and drop the checkpoints: a kill leaves either the old model or the new one."""
    tmp = target.with_name(f"{target.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    save(tmp)
    old = target.with_name(f"{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(checkpoints(target), ignore_errors=True)
