"""CLaRa's stages end to end over an index and a QA dataset: pretraining (SCP), encoding,
joint training. Each writes its own run folder and resumes after a kill."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from reasonrag.datasets.loaders import QAExample
from reasonrag.files import atomic_write_text
from reasonrag.index import Index
from reasonrag.latent.data import JointRecord, SCPRecord, joint_records, scp_records, teacher_scp
from reasonrag.latent.method import compressor_id
from reasonrag.latent.model import ClaraConfig, ClaraModel
from reasonrag.latent.store import LatentStore, encode_index
from reasonrag.latent.trainer import TrainOptions, TrainResult, train_loop
from reasonrag.llm.base import Generator

PARAPHRASE_CHARS = 400
"""Restatements are cut here: a short target keeps SCP steps affordable on a CPU."""


def _qa_text(record: SCPRecord) -> str:
    pairs = list(zip(record.questions, record.answers, strict=True))[:3]
    return "\n".join(f"Q: {q}\nA: {a}" for q, a in pairs)


def scp_batch(rows: list[SCPRecord]) -> dict[str, Any]:
    """``ClaraModel.scp_loss`` arguments for a batch of SCP records."""
    return {
        "texts": [r.text for r in rows],
        "qa": [_qa_text(r) for r in rows],
        "paraphrases": [r.paraphrase[:PARAPHRASE_CHARS] for r in rows],
    }


def pretrain(
    index: Index,
    examples: Sequence[QAExample],
    config: ClaraConfig,
    out: Path,
    options: TrainOptions,
    *,
    cache_dir: Path,
    teacher: Generator | None = None,
    progress: bool = True,
) -> TrainResult:
    """Salient compressor pretraining on the chunks of ``index`` that the dataset's gold
    structure (or the teacher) asks questions about."""
    if teacher is None:
        records = scp_records(examples, index.chunks)
    else:
        records = teacher_scp(index.chunks, teacher)
    out.mkdir(parents=True, exist_ok=True)
    if not (out / "scp.jsonl").exists():
        # The supervision, kept for inspection: which question came from where.
        atomic_write_text(
            out / "scp.jsonl", "".join(json.dumps(r.to_dict()) + "\n" for r in records)
        )
    if not records:
        from reasonrag.errors import DatasetError

        raise DatasetError("no chunk of the index answers any grounded question of the dataset")
    model = ClaraModel.create(config, cache_dir)
    return train_loop(
        model,
        records,
        scp_batch,
        task="scp",
        out=out,
        options=options,
        config={"clara": asdict(config), "records": len(records), "index": str(index.folder)},
        progress=progress,
    )


def train_joint(
    pretrained: Path,
    index: Index,
    examples: Sequence[QAExample],
    out: Path,
    options: TrainOptions,
    *,
    candidates: int = 20,
    cache_dir: Path,
    progress: bool = True,
) -> TrainResult:
    """Joint training from a pretrained model: the documents are encoded once by the frozen
    compressor; the answer loss trains the query reasoner (through the top-k) and the
    generator."""
    model = ClaraModel.load(pretrained, cache_dir)
    model.init_query_from_compressor()
    model_id = compressor_id(pretrained)
    encode_index(index, model, model_id, cache_dir, progress=progress)
    store = LatentStore.open(index, model_id)
    rows = {c.id: i for i, c in enumerate(index.chunks)}
    records = [r for r in joint_records(examples, index, candidates) if r.candidates]
    width = min(len(r.candidates) for r in records)

    def batch(items: list[JointRecord]) -> dict[str, Any]:
        ids = [list(r.candidates[:width]) for r in items]
        vectors = torch.stack([store.rows([rows[i] for i in row]) for row in ids])
        return {
            "questions": [r.question for r in items],
            "candidates": vectors,
            "labels": ids,
            "answers": [r.answers[0] for r in items],
            "top_k": min(options.top_k, width),
            "temperature": options.temperature,
        }

    return train_loop(
        model,
        records,
        batch,
        task="joint",
        out=out,
        options=options,
        config={"pretrained": model_id, "records": len(records), "candidates": width},
        progress=progress,
    )
