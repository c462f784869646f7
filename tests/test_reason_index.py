"""The agent over the real contextual hybrid index (hash embedder, scripted generator)."""

from __future__ import annotations

from pathlib import Path

from conftest import HashEmbedder
from reason_fakes import ScriptedGenerator, action
from reasonrag.config import Settings
from reasonrag.index import Index
from reasonrag.reason import Agent


def test_agent_searches_the_index_and_cites_its_chunks(
    corpus_dir: Path, settings: Settings, hash_embedder: HashEmbedder, tmp_path: Path
) -> None:
    index = Index.build(
        [corpus_dir], settings, tmp_path / "idx", embedder=hash_embedder, progress=False
    )
    mill = next(c.id for c in index.chunks if "Oda Farrant" in c.text and c.doc_id == "mill.md")
    generator = ScriptedGenerator(
        [
            action("search", query="who rebuilt Tessaly Mill in stone"),
            action("search", query="Oda Farrant born"),
            action("finish", answer=f"Port Quillan [{mill}]"),
        ]
    )
    cfg = settings.model_copy(update={"agent": settings.agent.model_copy(update={"top_k": 2})})
    answer = Agent.from_config(cfg, retriever=index, generator=generator).ask(
        "Where was the engineer who rebuilt Tessaly Mill born?"
    )
    first = answer.trace.steps[0]
    assert first.hits[0].doc_id == "mill.md" and len(first.hits) == 2
    assert f"[{mill}] " in first.observation
    assert {"dense", "sparse", "fusion"} <= set(first.hits[0].stage_scores)
    assert answer.answer == "Port Quillan"
    assert [(c.chunk_id, c.doc_id) for c in answer.citations] == [(mill, "mill.md")]
