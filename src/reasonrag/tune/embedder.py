"""Fine-tune the index's sentence-transformers embedder on synthetic pairs, then re-embed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reasonrag.embed.sentence_transformers import resolve_model
from reasonrag.errors import ConfigError, InputError
from reasonrag.index.contextualize import indexed_text
from reasonrag.index.index import Index
from reasonrag.tune.pairs import Pair, split_pairs, synthetic_pairs
from reasonrag.tune.training import (
    TuneOptions,
    TuneReport,
    checkpoints,
    install,
    last_checkpoint,
    training_arguments,
)

EMBEDDER_DIR = "tuned-embedder"
RECALL_K = 5


def dense_rows(index: Index, queries: Sequence[str], k: int) -> list[list[int]]:
    """The index's dense top ``k`` rows for each query."""
    _scores, rows = index.dense.search(index.embedder.embed(queries, kind="query"), k)
    return [list(r) for r in rows.tolist()]


def recall_at_k(index: Index, pairs: Sequence[Pair], k: int = RECALL_K) -> float:
    """Share of ``pairs`` whose chunk the index's dense search ranks in its top ``k``."""
    if not pairs:
        return 0.0
    found = dense_rows(index, [p.query for p in pairs], k)
    return sum(p.row in rows for p, rows in zip(pairs, found, strict=True)) / len(pairs)


def tune_embedder(
    index: Index, options: TuneOptions | None = None, *, callbacks: Sequence[Any] = ()
) -> TuneReport:
    """Train with MultipleNegativesRankingLoss (the other passages of a batch are the
    negatives), write ``INDEX/tuned-embedder`` and re-embed the index with it. A run
    killed after a checkpoint resumes from it; ``callbacks`` go to the trainer."""
    options = options or TuneOptions()
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.training_args import BatchSamplers

    embed = index.settings.embed
    if embed.backend != "sentence-transformers":
        raise ConfigError("tune embedder needs embed.backend = 'sentence-transformers'")
    train, held_out = split_pairs(synthetic_pairs(index.chunks))
    if not train:
        raise InputError(f"{index.folder}: no training pairs could be made from its chunks")
    before = recall_at_k(index, held_out)
    target = index.folder / EMBEDDER_DIR
    model = SentenceTransformer(
        str(resolve_model(embed.model)), device=embed.device, local_files_only=True
    )
    dataset = Dataset.from_dict(
        {
            "anchor": [p.query for p in train],
            "positive": [
                indexed_text(index.contexts[p.row], index.chunks[p.row].text) for p in train
            ],
        }
    )
    args = SentenceTransformerTrainingArguments(
        **training_arguments(options, checkpoints(target), embed.device),
        batch_sampler=BatchSamplers.NO_DUPLICATES,
    )
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        loss=MultipleNegativesRankingLoss(model),
        callbacks=list(callbacks),
    )
    resume = last_checkpoint(checkpoints(target))
    trainer.train(resume_from_checkpoint=resume)
    install(lambda folder: model.save(str(folder)), target)
    index.reembed(
        embed.model_copy(update={"model": str(target.resolve())}), progress=options.progress
    )
    return TuneReport(
        target, len(train), len(held_out), resume, before, recall_at_k(index, held_out)
    )
