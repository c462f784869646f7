"""Dense and BM25 search in a Qdrant collection (``retrieval.store = "qdrant"``).

Each index generation gets a collection of its own, holding one point per chunk (the
point id is the chunk's row) with a dense vector and a sparse BM25 vector; the generation
folder keeps only ``qdrant.json``, naming that collection. Writing a generation therefore
never changes what a reader of the previous one searches, as with the local stores.

The sparse vectors hold BM25's term-frequency part, computed from the same terms as the
local BM25 store (``sparse.tokenize``); Qdrant multiplies in the inverse document frequency
at query time (``Modifier.IDF``), so scores match the local store's."""

from __future__ import annotations

import atexit
import functools
import json
import os
import uuid
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import Stemmer
from qdrant_client import QdrantClient, models

from reasonrag.config import RetrievalConfig
from reasonrag.embed.base import Vectors
from reasonrag.errors import ConfigError
from reasonrag.index.dense import Rows, Scores
from reasonrag.index.sparse import tokenize
from reasonrag.index.store import QDRANT_FILE
from reasonrag.index.tokenize import Tokenizer

DENSE = "dense"
SPARSE = "bm25"
K1 = 1.5
B = 0.75
"""BM25 as bm25s computes it by default (Lucene's variant, without the constant k1 + 1)."""
UPLOAD_BATCH = 256


@functools.cache
def _client(url: str | None, path: str | None, api_key: str | None) -> QdrantClient:
    # Embedded local mode locks its folder: one client per folder serves the whole process,
    # closed before the interpreter tears down what closing it needs.
    client = QdrantClient(url=url, api_key=api_key) if url else QdrantClient(path=path)
    atexit.register(client.close)
    return client


def connect(cfg: RetrievalConfig) -> QdrantClient:
    key = None
    if cfg.qdrant_api_key_env:
        key = os.environ.get(cfg.qdrant_api_key_env)
        if not key:
            raise ConfigError(
                f"retrieval.qdrant_api_key_env: environment variable {cfg.qdrant_api_key_env} "
                "is not set"
            )
    if cfg.qdrant_url is None and cfg.qdrant_path is None:
        raise ConfigError(
            "this index keeps its stores in Qdrant: set retrieval.qdrant_url (a server) or "
            "retrieval.qdrant_path (embedded local mode) to open it"
        )
    path = str(cfg.qdrant_path) if cfg.qdrant_path is not None else None
    return _client(cfg.qdrant_url, path, key)


def _term_id(term: str) -> int:
    """A term's sparse dimension: a stable hash, so documents and queries need no vocabulary."""
    return zlib.crc32(term.encode())


def _sparse(weights: dict[int, float]) -> models.SparseVector:
    return models.SparseVector(indices=list(weights), values=list(weights.values()))


def _document_vectors(texts: Sequence[str], tokenizer: Tokenizer) -> list[models.SparseVector]:
    tokens = tokenize(texts, tokenizer, Stemmer.Stemmer("english"))
    mean_length = max(sum(map(len, tokens)) / max(len(tokens), 1), 1e-9)
    vectors = []
    for words in tokens:
        norm = K1 * (1 - B + B * len(words) / mean_length)
        counts = Counter(_term_id(w) for w in words)
        vectors.append(_sparse({t: n / (n + norm) for t, n in counts.items()}))
    return vectors


@dataclass(frozen=True)
class Collection:
    """One generation's collection; both stores of the generation search it."""

    client: QdrantClient
    name: str
    size: int
    """Points in the collection, fixed once it is built."""

    @classmethod
    def build(
        cls, cfg: RetrievalConfig, vectors: Vectors, texts: Sequence[str], tokenizer: Tokenizer
    ) -> Collection:
        collection = cls(
            connect(cfg), f"{cfg.qdrant_collection}-{uuid.uuid4().hex[:12]}", len(texts)
        )
        collection.client.create_collection(
            collection.name,
            vectors_config={
                DENSE: models.VectorParams(size=vectors.shape[1], distance=models.Distance.DOT)
            },
            sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
        )
        sparse = _document_vectors(texts, tokenizer)
        for start in range(0, len(texts), UPLOAD_BATCH):
            rows = range(start, min(start + UPLOAD_BATCH, len(texts)))
            points = [
                models.PointStruct(
                    id=row, vector={DENSE: vectors[row].tolist(), SPARSE: sparse[row]}
                )
                for row in rows
            ]
            collection.client.upsert(collection.name, points, wait=True)
        return collection

    @classmethod
    def load(cls, client: QdrantClient, generation: Path) -> Collection:
        name = json.loads((generation / QDRANT_FILE).read_text(encoding="utf-8"))["collection"]
        if not client.collection_exists(name):
            raise ValueError(f"Qdrant has no collection {name!r}")
        return cls(client, name, int(client.count(name, exact=True).count))

    def __len__(self) -> int:
        return self.size

    def save(self, folder: Path) -> None:
        """Name this collection in the new generation ``folder`` and drop the collection
        that the current generation replaced: the current one stays for its readers."""
        current = [
            json.loads(p.read_text(encoding="utf-8"))
            for p in folder.parent.glob(f"gen-*/{QDRANT_FILE}")
            if p.parent != folder
        ]
        live = {self.name} | {c["collection"] for c in current}
        for replaced in {c.get("previous") for c in current} - live - {None}:
            if self.client.collection_exists(replaced):
                self.client.delete_collection(replaced)
        previous = current[0]["collection"] if len(current) == 1 else None
        pointer = {"collection": self.name, "previous": previous}
        (folder / QDRANT_FILE).write_text(json.dumps(pointer) + "\n", encoding="utf-8")

    def search(self, queries: list[models.QueryRequest | None], k: int) -> tuple[Scores, Rows]:
        """Best ``k`` rows per query, padded with row -1 like the local stores; a None
        query matches nothing."""
        k = min(k, self.size)
        scores = np.zeros((len(queries), k), dtype=np.float32)
        rows = np.full((len(queries), k), -1, dtype=np.int64)
        asked = [(q, request) for q, request in enumerate(queries) if request is not None]
        if k == 0 or not asked:
            return scores, rows
        replies = self.client.query_batch_points(self.name, [request for _, request in asked])
        for (q, _), reply in zip(asked, replies, strict=True):
            for rank, point in enumerate(reply.points[:k]):
                scores[q, rank] = point.score
                rows[q, rank] = int(point.id)
        return scores, rows


class QdrantDenseStore:
    def __init__(self, collection: Collection):
        self.collection = collection

    def search(self, queries: Vectors, k: int) -> tuple[Scores, Rows]:
        requests: list[models.QueryRequest | None] = [
            models.QueryRequest(query=q.tolist(), using=DENSE, limit=k, with_payload=False)
            for q in np.asarray(queries, dtype=np.float32)
        ]
        return self.collection.search(requests, k)

    def save(self, folder: Path) -> None:
        self.collection.save(folder)

    def __len__(self) -> int:
        return self.collection.size


class QdrantSparseStore:
    def __init__(self, collection: Collection, tokenizer: Tokenizer):
        self.collection = collection
        self.tokenizer: Tokenizer = tokenizer
        self._stemmer = Stemmer.Stemmer("english")

    def search(self, queries: Sequence[str], k: int) -> tuple[Scores, Rows]:
        requests: list[models.QueryRequest | None] = []
        for words in tokenize(queries, self.tokenizer, self._stemmer):
            counts = Counter(_term_id(w) for w in words)
            # A query of stopwords only matches nothing, and Qdrant refuses an empty vector.
            weights = {t: float(n) for t, n in counts.items()}
            request = models.QueryRequest(
                query=_sparse(weights), using=SPARSE, limit=k, with_payload=False
            )
            requests.append(request if weights else None)
        scores, rows = self.collection.search(requests, k)
        return scores, np.where(scores > 0, rows, -1)

    def save(self, folder: Path) -> None:
        self.collection.save(folder)

    def __len__(self) -> int:
        return self.collection.size
