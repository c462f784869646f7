"""Tuning on the index's own corpus: synthetic pairs, a resumable embedder run that raises
held-out recall, and a reranker usable as the cross-encoder."""

import random
from pathlib import Path
from typing import Any

import pytest
from transformers import TrainerCallback

from llm_fakes import build_tiny_sentence_transformer
from reasonrag.config import Settings
from reasonrag.index import Index
from reasonrag.index.rerank import CrossEncoderReranker
from reasonrag.ingest.records import Chunk
from reasonrag.tune.embedder import EMBEDDER_DIR, recall_at_k, tune_embedder
from reasonrag.tune.pairs import chunk_queries, split_pairs, synthetic_pairs
from reasonrag.tune.reranker import RERANKER_DIR, tune_reranker
from reasonrag.tune.training import TuneOptions, checkpoints

WORDS = [
    "falcon",
    "cliff",
    "river",
    "valley",
    "bread",
    "dough",
    "oven",
    "flour",
    "tide",
    "harbour",
    "pilot",
    "voyage",
    "glass",
    "pipe",
    "furnace",
    "bee",
    "comb",
    "hive",
    "clock",
    "pendulum",
    "spring",
    "map",
    "compass",
    "coast",
    "cheese",
    "cave",
    "wheel",
    "kite",
    "wind",
    "string",
    "ink",
    "quill",
    "paper",
    "loom",
    "shuttle",
    "thread",
    "salt",
    "pan",
    "brine",
    "lamp",
    "wick",
    "oil",
    "rope",
    "knot",
    "sail",
    "anchor",
    "mill",
    "stone",
    "grain",
    "bell",
    "tower",
    "chime",
    "forge",
    "anvil",
    "hammer",
    "garden",
    "rose",
    "thorn",
    "barrel",
    "cask",
    "cellar",
    "candle",
    "wax",
    "bridge",
    "arch",
    "beam",
    "lantern",
    "copper",
    "kettle",
]


def _topics(n: int = 24) -> dict[str, tuple[str, str]]:
    """``n`` documents of distinct made-up facts: a two-word heading and a sentence."""
    rng = random.Random(0)
    topics = {}
    for i in range(n):
        words = rng.sample(WORDS, 8)
        topics[f"doc{i}"] = (f"{words[0]} {words[1]}", f"The {' '.join(words[2:])} stay near.")
    return topics


@pytest.fixture
def tiny_index(tmp_path: Path, settings: Settings) -> Index:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, (heading, sentence) in _topics().items():
        (docs / f"{name}.md").write_text(f"# {heading}\n\n{sentence} More notes follow.\n")
    model = build_tiny_sentence_transformer(tmp_path / "st")
    tiny = settings.model_copy(
        update={
            "embed": settings.embed.model_copy(update={"model": str(model)}),
            "context": settings.context.model_copy(update={"mode": "none"}),
        }
    )
    return Index.build([docs], tiny, tmp_path / "idx", progress=False)


def test_queries_come_from_headings_names_docstrings_and_sentences() -> None:
    text = 'def get_user_name(uid):\n    """Look the user up by id."""\n    return x\n'
    chunk = Chunk("a#0", "a", 0, text, "a.py", 0, len(text), headings=("Users",))
    assert chunk_queries(chunk) == ["Users", "get user name", "Look the user up by id."]
    shared = Chunk("b#0", "b", 0, "x", "b", 0, 1, headings=("Users",))
    assert synthetic_pairs([chunk, shared])[0].query == "get user name"  # 'Users' is ambiguous


class _StopAtFirstSave(TrainerCallback):  # type: ignore[misc]
    def on_save(self, *args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt


def test_tuning_the_embedder_raises_held_out_recall_and_resumes(
    tiny_index: Index, settings: Settings
) -> None:
    train, held_out = split_pairs(synthetic_pairs(tiny_index.chunks))
    assert len(train) >= 30 and len(held_out) >= 8
    before_train = recall_at_k(tiny_index, train, k=1)
    options = TuneOptions(
        epochs=40, batch_size=8, learning_rate=3e-3, save_steps=20, progress=False
    )
    with pytest.raises(KeyboardInterrupt):
        tune_embedder(tiny_index, options, callbacks=[_StopAtFirstSave()])
    target = tiny_index.folder / EMBEDDER_DIR
    assert (checkpoints(target) / "checkpoint-20").is_dir() and not target.exists()

    report = tune_embedder(tiny_index, options)
    assert report.resumed_from is not None and report.resumed_from.endswith("checkpoint-20")
    assert target.is_dir() and not checkpoints(target).exists()
    reopened = Index.open(tiny_index.folder, settings)
    assert reopened.embedder.name.startswith(f"sentence-transformers:{EMBEDDER_DIR}@")
    # The tiny model reads characters, so it learns the corpus' pairs but generalises
    # too little to held-out queries for a stable assertion; those are only measured.
    after_train = recall_at_k(reopened, train, k=1)
    assert before_train < 0.6 and after_train >= 0.9, (before_train, after_train)
    assert 0.0 <= recall_at_k(reopened, held_out, k=1) <= 1.0


def test_tuned_reranker_is_a_usable_cross_encoder(tiny_index: Index, tmp_path: Path) -> None:
    base = tmp_path / "st" / "raw"  # the tiny BERT: a cross-encoder gets a fresh head
    options = TuneOptions(epochs=1, batch_size=8, save_steps=1000, progress=False)
    report = tune_reranker(tiny_index, base, options)
    assert report.model == tiny_index.folder / RERANKER_DIR
    hits = tiny_index.search("the falcon", k=3)
    reranked = CrossEncoderReranker(report.model).rerank("the falcon", hits)
    assert sorted(h.chunk_id for h in reranked) == sorted(h.chunk_id for h in hits)


def test_tune_command_writes_the_model_and_the_index_uses_it(
    tiny_index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from reasonrag.cli import app

    monkeypatch.setenv("REASONRAG_CACHE_DIR", str(tmp_path / "cache"))
    args = ["tune", "embedder", str(tiny_index.folder), "--epochs", "1", "--batch-size", "8"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "tuned" in result.output and "held-out recall@5" in result.output
    manifest = Index.open(tiny_index.folder).manifest
    assert manifest is not None and manifest.embedder.startswith("sentence-transformers:tuned")
