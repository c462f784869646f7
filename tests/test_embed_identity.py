"""Embedders are known by their weights: a different model under the same folder name is
detected by indexes and never served another model's cached vectors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from llm_fakes import build_tiny_sentence_transformer
from reasonrag.config import Settings
from reasonrag.embed.cache import CachedEmbedder
from reasonrag.embed.sentence_transformers import SentenceTransformerEmbedder
from reasonrag.errors import IndexMismatchError
from reasonrag.index import Index


@pytest.fixture(scope="module")
def two_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("models")
    return (
        build_tiny_sentence_transformer(root / "a", seed=1),
        build_tiny_sentence_transformer(root / "b", seed=2),
    )


def test_same_folder_name_different_weights_means_a_different_embedder(
    two_models: tuple[Path, Path],
) -> None:
    a, b = two_models
    assert a.name == b.name == "model"
    name_a = SentenceTransformerEmbedder(str(a)).name
    assert name_a != SentenceTransformerEmbedder(str(b)).name
    assert name_a == SentenceTransformerEmbedder(str(a)).name, "stable across loads"


def test_the_embedding_cache_never_serves_another_models_vectors(
    two_models: tuple[Path, Path], tmp_path: Path
) -> None:
    a, b = two_models
    place = tmp_path / "model"
    shutil.copytree(a, place)
    cache = tmp_path / "embeddings.sqlite"
    first = CachedEmbedder(SentenceTransformerEmbedder(str(place)), cache)
    old = first.embed(["the quick brown fox"])
    first.close()
    shutil.rmtree(place)
    shutil.copytree(b, place, copy_function=shutil.copy2)  # keeps b's timestamps
    second = CachedEmbedder(SentenceTransformerEmbedder(str(place)), cache)
    new = second.embed(["the quick brown fox"])
    second.close()
    assert second.misses == 1 and not np.allclose(old, new)
    assert np.allclose(new, SentenceTransformerEmbedder(str(b)).embed(["the quick brown fox"]))


def test_an_index_detects_a_swapped_model_in_its_embedder_folder(
    two_models: tuple[Path, Path], corpus_dir: Path, settings: Settings, tmp_path: Path
) -> None:
    a, b = two_models
    place = tmp_path / "model"
    shutil.copytree(a, place)
    configured = settings.model_copy(
        update={"embed": settings.embed.model_copy(update={"model": str(place)})}
    )
    Index.build([corpus_dir], configured, tmp_path / "idx", progress=False)
    shutil.rmtree(place)
    shutil.copytree(b, place)
    with pytest.raises(IndexMismatchError, match="was built with embedder"):
        Index.open(tmp_path / "idx", settings)
