from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from llm_fakes import FakeAPI, fake_api_server, fake_vector
from reasonrag.embed.base import Embedder
from reasonrag.embed.openai_compat import OpenAIEmbedder
from reasonrag.llm import GenerationError


@pytest.fixture
def api() -> Iterator[FakeAPI]:
    with fake_api_server() as server:
        yield server


def test_vectors_are_normalised_batched_and_in_order(api: FakeAPI) -> None:
    embedder = OpenAIEmbedder("emb", base_url=api.openai_url, api_key="k", batch_size=3, dim=8)
    assert isinstance(embedder, Embedder)
    assert embedder.name == "openai:emb"
    texts = [f"text number {i}" for i in range(7)]
    vectors = embedder.embed(texts)
    assert vectors.shape == (7, 8)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-6)
    expected = np.asarray([fake_vector(t) for t in texts], dtype=np.float32)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(vectors, expected, rtol=1e-6)
    sizes = sorted(len(b["input"]) for b in api.state.bodies("/v1/embeddings"))
    assert sizes == [1, 3, 3]
    assert all(b["model"] == "emb" for b in api.state.bodies("/v1/embeddings"))


def test_dim_is_discovered_with_one_probe(api: FakeAPI) -> None:
    embedder = OpenAIEmbedder("emb", base_url=api.openai_url)
    assert embedder.dim == 8
    assert embedder.dim == 8
    assert len(api.state.bodies("/v1/embeddings")) == 1
    assert embedder.embed([]).shape == (0, 8)


def test_wrong_dim_is_reported(api: FakeAPI) -> None:
    embedder = OpenAIEmbedder("emb", base_url=api.openai_url, dim=16)
    with pytest.raises(GenerationError, match=r"8-dim.*dim=16"):
        embedder.embed(["x"])


def test_http_errors_name_the_endpoint(api: FakeAPI) -> None:
    embedder = OpenAIEmbedder("emb", base_url=f"{api.base_url}/nowhere", dim=8)
    with pytest.raises(GenerationError, match=r"/nowhere/embeddings failed with HTTP 404"):
        embedder.embed(["x"])


def test_count_tokens_counts_words_and_punctuation() -> None:
    embedder = OpenAIEmbedder("emb", base_url="http://unused", dim=8)
    assert embedder.count_tokens("Hello, world! It's 2024.") == 9
    assert embedder.count_tokens("") == 0
