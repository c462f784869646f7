"""Supervised fine-tuning with selective loss: TRL's ``SFTTrainer`` on records encoded by
``train.collator`` (labels already -100 outside the learned turns), LoRA by default.

A run folder holds ``train.json`` (what was asked for), ``checkpoints/`` (resumed from
after a kill), ``loss.png``, and at the end ``adapter/`` (LoRA) or ``model/`` (full
fine-tune), each a folder the generators load with ``--model``. Under ``accelerate launch``
the same code trains on several GPUs; on one machine it is a plain process.
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from reasonrag.changes import differences
from reasonrag.errors import DatasetError, RunMismatchError
from reasonrag.files import atomic_write_text
from reasonrag.llm.local import MODEL_META, hf_folder
from reasonrag.plots import pyplot, save_figure
from reasonrag.train.collator import as_rows, encode_records
from reasonrag.train.records import read_records

RUN_FILE = "train.json"
CHECKPOINTS = "checkpoints"
ADAPTER = "adapter"
MODEL = "model"
LOSS_PNG = "loss.png"


@dataclass(frozen=True)
class SFTOptions:
    model: str = "smollm2"
    """Base model: the embedded name, a ``.gguf`` or a Hugging Face folder."""
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    full: bool = False
    """Fine-tune every weight instead of a LoRA adapter."""
    epochs: float = 1.0
    max_steps: int = -1
    """Optimiser steps; -1 runs ``epochs`` over the data."""
    learning_rate: float = 2e-4
    batch_size: int = 4
    grad_accum: int = 2
    max_length: int = 2048
    save_steps: int = 20
    seed: int = 0


@dataclass(frozen=True)
class SFTResult:
    out: Path
    trained: Path
    """The adapter or model folder."""
    examples: int
    too_long: int
    steps: int
    losses: list[float]
    seconds: float


def _check_run(out: Path, config: dict[str, Any]) -> None:
    path = out / RUN_FILE
    if path.exists():
        old = json.loads(path.read_text())
        changed = differences(old, config)
        if changed:
            raise RunMismatchError(
                f"{path}: this folder holds a training run with other settings "
                f"({'; '.join(changed[:4])}); pass another --out to start a new run"
            )
        return
    atomic_write_text(path, json.dumps(config, indent=2) + "\n")


def _last_checkpoint(out: Path) -> str | None:
    checkpoints = sorted(
        (out / CHECKPOINTS).glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1])
    )
    complete = [c for c in checkpoints if (c / "trainer_state.json").is_file()]
    return str(complete[-1]) if complete else None


def plot_loss(history: Sequence[dict[str, Any]], path: Path) -> None:
    steps = [h["step"] for h in history if "loss" in h]
    losses = [h["loss"] for h in history if "loss" in h]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(steps, losses, marker="." if len(steps) < 60 else None)
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("training loss (learned tokens)")
    ax.set_title("SFT loss")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)


def train_sft(
    data: Sequence[Path],
    out: Path,
    options: SFTOptions,
    *,
    cache_dir: Path,
    progress: bool = True,
) -> SFTResult:
    """Train on every record of ``data``; resumes from the last checkpoint in ``out``."""
    import time

    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from reasonrag.fingerprint import fingerprint
    from reasonrag.progress import quiet_model_loading

    started = time.perf_counter()
    quiet_model_loading()
    records = [r for path in data for r in read_records(path)]
    if not records:
        raise DatasetError(f"no training records in {', '.join(map(str, data))}")
    folder = hf_folder(options.model, cache_dir)
    _check_run(
        out,
        {
            "options": asdict(options),
            "data": [str(p) for p in data],
            "data_fingerprints": [fingerprint(p) for p in data],
            "base": str(folder),
        },
    )
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    encoded = encode_records(tokenizer, records, options.max_length)
    if not encoded.examples:
        raise DatasetError(f"every record is longer than max_length={options.max_length}")
    rows = as_rows(encoded.examples)
    random.Random(options.seed).shuffle(rows)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    args = SFTConfig(
        output_dir=str(out / CHECKPOINTS),
        per_device_train_batch_size=options.batch_size,
        gradient_accumulation_steps=options.grad_accum,
        num_train_epochs=options.epochs,
        max_steps=options.max_steps,
        learning_rate=options.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=0.03,  # a float is a share of the steps
        logging_steps=1,
        save_steps=options.save_steps,
        save_total_limit=2,
        seed=options.seed,
        report_to=[],
        max_length=None,  # records are already encoded whole; cutting one would cut its finish
        dataset_kwargs={"skip_prepare_dataset": True},
        remove_unused_columns=False,
        # Checkpointing recomputes activations to save memory a 135M model does not need.
        gradient_checkpointing=False,
        disable_tqdm=not progress,
        # Mixed precision where the hardware has it (GPUs under accelerate); CPUs train fp32.
        bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
    )
    peft_config = None
    if not options.full:
        from peft import LoraConfig

        peft_config = LoraConfig(
            r=options.lora_r,
            lora_alpha=options.lora_alpha,
            lora_dropout=options.lora_dropout,
            target_modules="all-linear",
            task_type="CAUSAL_LM",
        )

    class _PlotOnSave(TrainerCallback):
        """Redraw the loss curve at every checkpoint: long CPU runs are watched."""

        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            plot_loss(state.log_history, out / LOSS_PNG)

    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[_PlotOnSave()],
    )
    trainer.train(resume_from_checkpoint=_last_checkpoint(out))
    trained = _save_trained(trainer, tokenizer, out, options, len(encoded.examples))
    history = trainer.state.log_history
    plot_loss(history, out / LOSS_PNG)
    return SFTResult(
        out=out,
        trained=trained,
        examples=len(encoded.examples),
        too_long=encoded.too_long,
        steps=trainer.state.global_step,
        losses=[h["loss"] for h in history if "loss" in h],
        seconds=time.perf_counter() - started,
    )


def _save_trained(
    trainer: Any, tokenizer: Any, out: Path, options: SFTOptions, examples: int
) -> Path:
    """Write the adapter (or model) folder whole, then move it into place."""
    target = out / (MODEL if options.full else ADAPTER)
    tmp = out / f".{target.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    trainer.model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    meta = {
        "base_model": options.model,
        "kind": "full" if options.full else "lora",
        "options": asdict(options),
        "examples": examples,
        "steps": trainer.state.global_step,
    }
    atomic_write_text(tmp / MODEL_META, json.dumps(meta, indent=2) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target
