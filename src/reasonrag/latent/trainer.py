"""Training loops of CLaRa's two stages, resumable and ready for several GPUs.

Stage 1, salient compressor pretraining (SCP), trains the compressor, the generator and the
memory slots on SCP records. Stage 2, joint training, freezes the compressor (documents are
encoded once, offline) and trains the query reasoner and the generator from (question,
candidates, answer) triples through the straight-through top-k.

The loop runs through ``accelerate``: on one machine it is a plain loop, and under
``accelerate launch`` the same code trains data-parallel on several GPUs. A run folder keeps
``checkpoint/`` (trainable weights, optimiser and step, written whole), ``losses.jsonl``,
``loss.png`` and at the end ``model/``.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch

from reasonrag.changes import differences
from reasonrag.errors import RunMismatchError
from reasonrag.files import append_lines, atomic_write_text, complete_lines
from reasonrag.latent.model import ClaraModel
from reasonrag.plots import pyplot, save_figure
from reasonrag.progress import progress_task

R = TypeVar("R")
CHECKPOINT = "checkpoint"
MODEL = "model"
LOSSES = "losses.jsonl"
LOSS_PNG = "loss.png"
RUN_FILE = "run.json"


@dataclass(frozen=True)
class TrainOptions:
    steps: int = 200
    batch_size: int = 4
    learning_rate: float = 1e-4
    save_steps: int = 20
    seed: int = 0
    top_k: int = 3
    """Joint training: documents the generator reads per question."""
    temperature: float = 0.5
    """Joint training: softness of the top-k's backward pass."""


@dataclass(frozen=True)
class TrainResult:
    model: Path
    steps: int
    losses: list[float]
    seconds: float


TRAINED = {
    "scp": (("compressor", "generator"), ("memory",)),
    "joint": (("query", "generator"), ("query_memory",)),
}
"""Per task, the adapters and memory slots its loss trains; everything else stays frozen
(joint training leaves the compressor as pretraining made it)."""


def _trainable(model: ClaraModel, task: str) -> None:
    adapters, memories = TRAINED[task]
    model.use(adapters[0], train=adapters)
    model.memory.requires_grad = "memory" in memories
    model.query_memory.requires_grad = "query_memory" in memories


def _state(model: ClaraModel) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def _save_checkpoint(out: Path, model: ClaraModel, optimiser: Any, step: int) -> None:
    tmp = out / f".{CHECKPOINT}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.save(
        {"weights": _state(model), "optimiser": optimiser.state_dict(), "step": step},
        tmp / "state.pt",
    )
    final = out / CHECKPOINT
    old = out / f".{CHECKPOINT}.old"
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def _resume(out: Path, model: ClaraModel, optimiser: Any) -> int:
    path = out / CHECKPOINT / "state.pt"
    if not path.is_file():
        return 0
    state = torch.load(path, weights_only=False)
    parameters = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in state["weights"].items():
            parameters[name].copy_(value)
    optimiser.load_state_dict(state["optimiser"])
    return int(state["step"])


def _check_run(out: Path, config: dict[str, Any]) -> None:
    path = out / RUN_FILE
    if path.exists():
        changed = differences(json.loads(path.read_text()), config)
        if changed:
            raise RunMismatchError(
                f"{path}: this folder holds a run with other settings ({'; '.join(changed[:4])});"
                " pass another --out to start a new run"
            )
    else:
        atomic_write_text(path, json.dumps(config, indent=2) + "\n")


def batch_positions(step: int, n: int, batch_size: int, seed: int) -> list[int]:
    """Records of ``step``: passes over the data in a seeded order per pass, a function of
    the step alone, so a resumed run continues exactly where the killed one stopped."""
    positions = []
    for i in range(step * batch_size, (step + 1) * batch_size):
        order = list(range(n))
        random.Random(seed * 1_000_003 + i // n).shuffle(order)
        positions.append(order[i % n])
    return positions


def _forget_losses_after(path: Path, step: int) -> None:
    """Losses logged after the checkpoint a run resumes from are computed again; keeping
    the first ones would log those steps twice."""
    if not path.exists():
        return
    kept = "".join(
        line + "\n" for _, line in complete_lines(path) if json.loads(line)["step"] <= step
    )
    if kept.encode("utf-8") != path.read_bytes():
        atomic_write_text(path, kept)


def plot_losses(out: Path) -> None:
    rows = [json.loads(line) for _, line in complete_lines(out / LOSSES)]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot([r["step"] for r in rows], [r["loss"] for r in rows])
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(out.name)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, out / LOSS_PNG)


def train_loop(
    model: ClaraModel,
    records: Sequence[R],
    make_batch: Callable[[list[R]], dict[str, Any]],
    *,
    task: str,
    out: Path,
    options: TrainOptions,
    config: dict[str, Any],
    progress: bool = True,
) -> TrainResult:
    """``options.steps`` optimiser steps over ``records`` (reshuffled each pass), resuming
    from ``out``'s checkpoint; ``make_batch`` turns records into ``model(task, **batch)``
    arguments."""
    from accelerate import Accelerator

    started = time.perf_counter()
    _check_run(out, {"task": task, "options": asdict(options), **config})
    _trainable(model, task)
    optimiser = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=options.learning_rate
    )
    step = _resume(out, model, optimiser)
    _forget_losses_after(out / LOSSES, step)
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    prepared, optimiser = accelerator.prepare(model, optimiser)
    losses: list[float] = []
    with progress_task(f"CLaRa {task}", options.steps, enabled=progress) as advance:
        advance(step)
        while step < options.steps:
            # Each process takes its own share of one global batch (data parallel).
            share = options.batch_size
            everyone = batch_positions(
                step, len(records), share * accelerator.num_processes, options.seed
            )
            rank = accelerator.process_index
            positions = everyone[rank * share : (rank + 1) * share]
            _trainable(accelerator.unwrap_model(prepared), task)
            loss = prepared(task, **make_batch([records[i] for i in positions]))
            accelerator.backward(loss)
            optimiser.step()
            optimiser.zero_grad()
            step += 1
            losses.append(float(accelerator.reduce(loss.detach(), reduction="mean")))
            if not accelerator.is_main_process:
                continue
            append_lines(out / LOSSES, [json.dumps({"step": step, "loss": losses[-1]})])
            advance(1, description=f"CLaRa {task}: loss {losses[-1]:.3f}")
            if step % options.save_steps == 0 or step == options.steps:
                _save_checkpoint(out, accelerator.unwrap_model(prepared), optimiser, step)
                plot_losses(out)
    accelerator.wait_for_everyone()
    final = out / MODEL
    if not accelerator.is_main_process:
        return TrainResult(final, step, losses, time.perf_counter() - started)
    tmp = out / f".{MODEL}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    accelerator.unwrap_model(prepared).save(tmp)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    history = [json.loads(line)["loss"] for _, line in complete_lines(out / LOSSES)]
    return TrainResult(final, step, history, time.perf_counter() - started)
