"""Fine-tune a cross-encoder reranker on synthetic pairs with the index's hard negatives."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reasonrag.errors import InputError, NotFoundError
from reasonrag.index.index import Index
from reasonrag.index.rerank import cross_encoder_passage
from reasonrag.tune.embedder import dense_rows
from reasonrag.tune.pairs import split_pairs, synthetic_pairs
from reasonrag.tune.training import (
    TuneOptions,
    TuneReport,
    checkpoints,
    install,
    last_checkpoint,
    training_arguments,
)

RERANKER_DIR = "tuned-reranker"


def tune_reranker(
    index: Index,
    base: Path,
    options: TuneOptions | None = None,
    *,
    negatives: int = 3,
    callbacks: Sequence[Any] = (),
) -> TuneReport:
    """Train ``base`` (a CrossEncoder or any BERT-like folder, given a fresh scoring head)
    with binary cross-entropy: each synthetic query against its chunk (1) and the chunks
    the index's dense search wrongly ranks near it (0), the mistakes a reranker must fix.
    Writes ``INDEX/tuned-reranker``, to use as ``retrieval.cross_encoder_model``."""
    options = options or TuneOptions()
    from datasets import Dataset
    from sentence_transformers.cross_encoder import (
        CrossEncoder,
        CrossEncoderTrainer,
        CrossEncoderTrainingArguments,
    )
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    if not base.is_dir():
        raise NotFoundError(f"reranker base model folder not found: {base}")
    train, held_out = split_pairs(synthetic_pairs(index.chunks))
    if not train:
        raise InputError(f"{index.folder}: no training pairs could be made from its chunks")
    columns: dict[str, list[Any]] = {"query": [], "passage": [], "label": []}
    found = dense_rows(index, [p.query for p in train], negatives + 1)
    for pair, rows in zip(train, found, strict=True):
        wrong = [r for r in rows if r not in (pair.row, -1)][:negatives]
        for row, label in [(pair.row, 1.0), *((r, 0.0) for r in wrong)]:
            columns["query"].append(pair.query)
            columns["passage"].append(
                cross_encoder_passage(index.contexts[row], index.chunks[row].text)
            )
            columns["label"].append(label)
    device = index.settings.embed.device
    target = index.folder / RERANKER_DIR
    model = CrossEncoder(str(base), num_labels=1, device=device, local_files_only=True)
    trainer = CrossEncoderTrainer(
        model=model,
        args=CrossEncoderTrainingArguments(
            **training_arguments(options, checkpoints(target), device)
        ),
        train_dataset=Dataset.from_dict(columns),
        loss=BinaryCrossEntropyLoss(model),
        callbacks=list(callbacks),
    )
    resume = last_checkpoint(checkpoints(target))
    trainer.train(resume_from_checkpoint=resume)
    install(lambda folder: model.save_pretrained(str(folder)), target)
    return TuneReport(target, len(train), len(held_out), resume)
