"""Embedder backed by any OpenAI-compatible ``/embeddings`` endpoint."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence

import httpx
import numpy as np

from reasonrag.embed.base import Vectors
from reasonrag.llm.base import GenerationError
from reasonrag.llm.openai_compat import RetryPolicy, gather_all, open_client, post_json, run_sync

_TOKENISH = re.compile(r"\w+|[^\w\s]")
_PROBE = "dimension probe"


class OpenAIEmbedder:
    """Batches of ``batch_size`` texts, up to ``concurrency`` requests in flight.

    ``kind`` is ignored: models that want a query prefix need it added by the caller.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str,
        api_key: str | None = None,
        batch_size: int = 64,
        dim: int | None = None,
        concurrency: int = 4,
        timeout_s: float = 120.0,
        max_retries: int = 4,
        backoff_s: float = 1.0,
    ) -> None:
        self.model = model
        self.base_url = base_url
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.retry = RetryPolicy(max_retries=max_retries, backoff_s=backoff_s)
        self._api_key = api_key
        self._dim = dim

    @property
    def name(self) -> str:
        return f"openai:{self.model}"

    @property
    def dim(self) -> int:
        """Given, or discovered by embedding one probe string."""
        if self._dim is None:
            self._dim = int(self.embed([_PROBE]).shape[1])
        return self._dim

    def embed(self, texts: Sequence[str], *, kind: str = "document") -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        batches = [
            list(texts[i : i + self.batch_size]) for i in range(0, len(texts), self.batch_size)
        ]
        vectors = np.concatenate(run_sync(self._embed_batches(batches)))
        if self._dim is None:
            self._dim = vectors.shape[1]
        elif vectors.shape[1] != self._dim:
            raise GenerationError(
                f"{self.base_url}/embeddings returned {vectors.shape[1]}-dim vectors for "
                f"{self.model}, expected dim={self._dim}"
            )
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)

    def count_tokens(self, text: str) -> int:
        """Words and punctuation marks: close to a BPE count for English prose, without
        knowing the server's tokenizer (rare words split into more tokens than counted)."""
        return len(_TOKENISH.findall(text))

    async def _embed_batches(self, batches: list[list[str]]) -> list[Vectors]:
        limit = asyncio.Semaphore(self.concurrency)
        async with open_client(
            self.base_url, self._api_key, timeout_s=self.timeout_s, concurrency=self.concurrency
        ) as client:

            async def one(batch: list[str]) -> Vectors:
                async with limit:
                    return await self._embed_batch(client, batch)

            return await gather_all([one(b) for b in batches])

    async def _embed_batch(self, client: httpx.AsyncClient, batch: list[str]) -> Vectors:
        data = await post_json(
            client, "/embeddings", {"model": self.model, "input": batch}, self.retry
        )
        try:
            # The API does not promise response order; "index" does.
            rows = sorted(data["data"], key=lambda row: row["index"])
            vectors = np.asarray([row["embedding"] for row in rows], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as exc:
            raise GenerationError(
                f"{self.base_url}/embeddings returned an unexpected body: {exc!r}"
            ) from exc
        if vectors.ndim != 2 or len(vectors) != len(batch):
            raise GenerationError(
                f"{self.base_url}/embeddings returned {len(vectors)} vectors for {len(batch)} texts"
            )
        return vectors
