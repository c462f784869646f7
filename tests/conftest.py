"""Shared fixtures: a tiny corpus written per test, settings with a private cache."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from reasonrag.config import Settings, load_settings
from reasonrag.embed.base import Vectors

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

CORPUS = {
    "harbour.md": """# Port Quillan

Port Quillan is a harbour town on the Ostrel estuary, founded in 1788 by salt traders.

## Economy

Its main trade is smoked eel, shipped upriver on flat barges every spring.
""",
    "mill.md": """# Tessaly Mill

Tessaly Mill grinds barley for the brewers of the northern valleys.

## History

It burned down in 1902 and was rebuilt in stone by the engineer Oda Farrant.
""",
    "notes.txt": "Oda Farrant was born in Port Quillan and trained as a shipwright before "
    "turning to mills.",
}


class HashEmbedder:
    """Bag-of-words hashing into 64 dimensions: deterministic, instant, and lexical enough
    for tests to predict rankings. A real embedder (MiniLM) is exercised separately."""

    def __init__(self, dim: int = 64, name: str = "test:hash64"):
        self._dim = dim
        self._name = name
        self.calls = 0
        self.texts_embedded = 0

    @property
    def name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: Sequence[str], *, kind: str = "document") -> Vectors:
        self.calls += 1
        self.texts_embedded += len(texts)
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"[a-z0-9]+", text.lower()):
                bucket = int(hashlib.md5(word.encode()).hexdigest(), 16) % self._dim
                out[i, bucket] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-9)

    def count_tokens(self, text: str) -> int:
        return len(text.split())


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in CORPUS.items():
        (folder / name).write_text(text)
    return folder


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for var in [v for v in os.environ if v.startswith("REASONRAG_")]:
        monkeypatch.delenv(var)
    return load_settings(cache_dir=tmp_path / "cache")


@pytest.fixture
def hash_embedder() -> HashEmbedder:
    return HashEmbedder()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--ui-screenshot",
        default=None,
        help="where the browser test saves its screenshot of the web UI "
        "(docs/img/server-ui.png is made this way)",
    )
