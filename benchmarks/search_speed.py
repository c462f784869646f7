"""Query latency of hybrid search on synthetic collections, against faiss + bm25s called
directly, and embedding throughput of the embedded MiniLM.

    python benchmarks/search_speed.py [--sizes 10000,100000] [--queries 200] [--out FILE]
        [--embed-chunks 2000] [--faiss-threads N]

Chunks are random words from a fixed Zipf-distributed vocabulary (so BM25 has real postings)
with random unit vectors as their embeddings. Queries carry precomputed vectors too, so the
timings cover dense search, BM25, fusion and building hits, not the query embedding. The
direct baseline loads the very faiss and bm25s files the index wrote, runs the same
tokenization and a minimal RRF; overhead = reasonrag p50 / direct p50 - 1.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bm25s
import faiss
import numpy as np
import numpy.typing as npt
import Stemmer
from rich.console import Console
from rich.table import Table

from reasonrag.config import load_settings
from reasonrag.embed.base import Vectors
from reasonrag.index import Index
from reasonrag.index.dense import FAISS_FILE, HNSW_EF_SEARCH
from reasonrag.index.sparse import SPARSE_DIR
from reasonrag.ingest.records import Chunk, Document
from reasonrag.progress import make_console
from retrieval_pass_at_k import HERE, report_header

DIM = 384
VOCABULARY = 30_000
WORDS_PER_CHUNK = 120
WORDS_PER_QUERY = 6
ZIPF_EXPONENT = 1.1
TOP_K = 10
WARMUP_QUERIES = 10
EMBED_CHUNKS = 2_000
EMBED_WORDS = 150
STAGES = ("dense", "sparse", "fusion")
HOTPOTQA = Path("/work/shared/data/hotpotqa/dev.jsonl")


class LookupEmbedder:
    """Returns vectors fixed in advance for known texts, so search is timed without a model."""

    def __init__(self, texts: Sequence[str], vectors: Vectors):
        self._rows = {text: row for row, text in enumerate(texts)}
        self._vectors = vectors

    @property
    def name(self) -> str:
        return f"synthetic:lookup{self.dim}"

    @property
    def dim(self) -> int:
        return int(self._vectors.shape[1])

    def embed(self, texts: Sequence[str], *, kind: str = "document") -> Vectors:
        return self._vectors[[self._rows[t] for t in texts]]

    def count_tokens(self, text: str) -> int:
        return len(text.split())


# --- synthetic data ------------------------------------------------------------------------


def vocabulary(rng: np.random.Generator) -> npt.NDArray[np.str_]:
    """Distinct pronounceable-enough words of 4 to 9 letters."""
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words: set[str] = set()
    while len(words) < VOCABULARY:
        lengths = rng.integers(4, 10, size=VOCABULARY)
        draws = rng.choice(letters, size=(VOCABULARY, 9))
        words.update("".join(row[:n]) for row, n in zip(draws, lengths, strict=True))
    return np.array(sorted(words)[:VOCABULARY])


def texts(rng: np.random.Generator, words: npt.NDArray[np.str_], n: int, length: int) -> list[str]:
    ranks = np.arange(1, len(words) + 1, dtype=np.float64)
    weights = ranks**-ZIPF_EXPONENT
    ids = rng.choice(len(words), size=(n, length), p=weights / weights.sum())
    lookup = words.tolist()  # indexing a Python list beats building a numpy string array
    return [" ".join([lookup[i] for i in row]) for row in ids.tolist()]


def unit_vectors(rng: np.random.Generator, n: int) -> Vectors:
    vectors = rng.standard_normal((n, DIM), dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@dataclass(frozen=True)
class Collection:
    chunks: list[Chunk]
    queries: list[str]
    embedder: LookupEmbedder


def collection(size: int, n_queries: int, seed: int = 0) -> Collection:
    rng = np.random.default_rng(seed)
    words = vocabulary(rng)
    chunk_texts = texts(rng, words, size, WORDS_PER_CHUNK)
    queries = texts(rng, words, n_queries, WORDS_PER_QUERY)
    chunks = [Chunk(f"d{i}#0", f"d{i}", 0, t, "", 0, len(t)) for i, t in enumerate(chunk_texts)]
    embedder = LookupEmbedder(chunk_texts + queries, unit_vectors(rng, size + n_queries))
    return Collection(chunks, queries, embedder)


# --- timing --------------------------------------------------------------------------------


class DirectSearch:
    """faiss + bm25s + RRF with no reasonrag code, on the files the index wrote."""

    def __init__(self, index: Index):
        assert index.manifest is not None
        generation = index.folder / index.manifest.generation
        self.faiss = faiss.read_index(str(generation / FAISS_FILE))
        if isinstance(self.faiss, faiss.IndexHNSWFlat):
            self.faiss.hnsw.efSearch = HNSW_EF_SEARCH
        self.bm25 = bm25s.BM25.load(str(generation / SPARSE_DIR))
        self.stemmer = Stemmer.Stemmer("english")
        cfg = index.settings.retrieval
        self.dense_k, self.sparse_k, self.rrf_k = cfg.dense_k, cfg.sparse_k, cfg.rrf_k

    def search(self, query: str, vector: Vectors, k: int, timings: dict[str, float]) -> list[int]:
        """Top ``k`` rows; ``timings`` gets the seconds of each stage, named as reasonrag's."""
        started = time.perf_counter()
        _, dense_rows = self.faiss.search(vector[None, :], self.dense_k)
        dense_done = time.perf_counter()
        tokens = bm25s.tokenize(
            [query], stopwords="en", stemmer=self.stemmer, return_ids=False, show_progress=False
        )
        rows, scores = self.bm25.retrieve(tokens, k=self.sparse_k, show_progress=False)
        sparse_done = time.perf_counter()
        fused: dict[int, float] = {}
        for ranked in (dense_rows[0], rows[0][scores[0] > 0]):
            for rank, row in enumerate(ranked.tolist(), start=1):
                fused[row] = fused.get(row, 0.0) + 1.0 / (self.rrf_k + rank)
        top = sorted(fused, key=lambda row: -fused[row])[:k]
        timings["dense"] = dense_done - started
        timings["sparse"] = sparse_done - dense_done
        timings["fusion"] = time.perf_counter() - sparse_done
        return top


def percentiles(samples: Sequence[float]) -> dict[str, float]:
    p50, p95 = np.percentile(np.asarray(samples) * 1000, [50, 95])
    return {"p50_ms": round(float(p50), 3), "p95_ms": round(float(p95), 3)}


@dataclass
class Latencies:
    totals: list[float] = field(default_factory=list)
    stages: dict[str, list[float]] = field(default_factory=dict)

    def add(self, total: float, timings: dict[str, float]) -> None:
        self.totals.append(total)
        for stage, seconds in timings.items():
            self.stages.setdefault(stage, []).append(seconds)

    def summary(self) -> dict[str, Any]:
        stages = {s: percentiles(v)["p50_ms"] for s, v in self.stages.items()}
        return percentiles(self.totals) | {"stages_p50_ms": stages}


def time_search(index: Index, direct: DirectSearch, data: Collection) -> dict[str, Any]:
    """Per-query latency, reasonrag and direct interleaved in random order so that load from
    other processes hits both alike. The first queries only warm up."""
    vectors = data.embedder.embed(data.queries, kind="query")
    measured = {"reasonrag": Latencies(), "direct": Latencies()}
    order = random.Random(0)
    for q, query in enumerate(data.queries[:WARMUP_QUERIES] + data.queries):
        vector = vectors[(q - WARMUP_QUERIES) % len(data.queries)]
        names = list(measured)
        order.shuffle(names)
        for name in names:
            timings: dict[str, float] = {}
            started = time.perf_counter()
            if name == "reasonrag":
                index.search_many([query], TOP_K, timings=timings)
            else:
                direct.search(query, vector, TOP_K, timings)
            elapsed = time.perf_counter() - started - timings.pop("embed", 0.0)
            if q >= WARMUP_QUERIES:
                measured[name].add(elapsed, timings)
    ours, theirs = measured["reasonrag"].summary(), measured["direct"].summary()
    return {
        "reasonrag": ours,
        "direct": theirs,
        "overhead_p50": round(ours["p50_ms"] / theirs["p50_ms"] - 1, 4),
    }


def measure_size(size: int, n_queries: int, threads: int, console: Console) -> dict[str, Any]:
    data = collection(size, n_queries)
    with tempfile.TemporaryDirectory() as tmp:
        base = load_settings(cache_dir=Path(tmp) / "cache")
        settings = base.model_copy(
            update={
                "context": base.context.model_copy(update={"mode": "none"}),
                "retrieval": base.retrieval.model_copy(
                    update={"fusion": "rrf", "rerank": "none", "search_threads": threads}
                ),
            }
        )
        docs = [Document(c.doc_id, "", c.text) for c in data.chunks]
        started = time.perf_counter()
        index = Index.from_chunks(
            data.chunks, docs, settings, Path(tmp) / "index", embedder=data.embedder
        )
        build = time.perf_counter() - started
        console.print(f"{size} chunks indexed in {build:.1f}s; timing {n_queries} queries")
        result = time_search(index, DirectSearch(index), data)
    dense = "HNSW" if size >= settings.retrieval.hnsw_threshold else "exact (flat)"
    return {
        "chunks": size,
        "dense_index": dense,
        "faiss_threads": threads,
        "build_seconds": round(build, 1),
    } | result


# --- embedding throughput ------------------------------------------------------------------


def real_looking_chunks(n: int, words: int) -> tuple[list[str], str]:
    """``n`` texts of ``words`` words cut from HotpotQA paragraphs, or synthetic ones."""
    if HOTPOTQA.is_file():
        from reasonrag.datasets.loaders import load_hotpotqa

        seen: dict[str, None] = {}
        for example in load_hotpotqa(HOTPOTQA, on_error=lambda issue: None):
            seen.update(dict.fromkeys(p.text for p in example.paragraphs))
        stream = " ".join(seen).split()
        out = [" ".join(stream[i : i + words]) for i in range(0, len(stream) - words, words)]
        if len(out) >= n:
            return out[:n], "hotpotqa dev paragraphs"
    rng = np.random.default_rng(1)
    return texts(rng, vocabulary(rng), n, words), "synthetic words"


def measure_embedding(n: int, console: Console) -> dict[str, Any]:
    from reasonrag.embed.sentence_transformers import SentenceTransformerEmbedder

    chunks, source = real_looking_chunks(n, EMBED_WORDS)
    embedder = SentenceTransformerEmbedder()
    embedder.embed(chunks[:64])  # first call pays for lazy initialisation
    console.print(f"embedding {len(chunks)} chunks of {EMBED_WORDS} words ({source})")
    started = time.perf_counter()
    embedder.embed(chunks)
    seconds = time.perf_counter() - started
    tokens = [min(embedder.count_tokens(c), embedder.max_tokens) for c in chunks]
    return {
        "model": embedder.name,
        "source": source,
        "chunks": len(chunks),
        "mean_tokens": round(float(np.mean(tokens)), 1),
        "seconds": round(seconds, 2),
        "chunks_per_second": round(len(chunks) / seconds, 1),
    }


def render(results: list[dict[str, Any]], embedding: dict[str, Any] | None) -> list[Table]:
    table = Table(title=f"Hybrid search latency (RRF, top {TOP_K}, no rerank, no query embedding)")
    for column in ("chunks", "dense index", "faiss threads", "search", "p50 ms", "p95 ms"):
        table.add_column(column, justify="right")
    for stage in STAGES:
        table.add_column(f"{stage} p50", justify="right")
    table.add_column("overhead p50", justify="right")
    for r in results:
        for name in ("reasonrag", "direct"):
            row = r[name]
            overhead = f"{100 * r['overhead_p50']:+.1f}%" if name == "reasonrag" else ""
            table.add_row(
                f"{r['chunks']:,}",
                r["dense_index"],
                str(r["faiss_threads"]),
                name,
                f"{row['p50_ms']:.2f}",
                f"{row['p95_ms']:.2f}",
                *(f"{row['stages_p50_ms'].get(s, 0.0):.2f}" for s in STAGES),
                overhead,
            )
    tables = [table]
    if embedding:
        emb = Table(title="Embedding throughput")
        for column in ("model", "chunks", "mean tokens", "seconds", "chunks/s"):
            emb.add_column(column, justify="right")
        emb.add_row(
            embedding["model"],
            str(embedding["chunks"]),
            str(embedding["mean_tokens"]),
            str(embedding["seconds"]),
            str(embedding["chunks_per_second"]),
        )
        tables.append(emb)
    return tables


def main(argv: Sequence[str] | None = None) -> None:
    started = time.perf_counter()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--embed-chunks", type=int, default=EMBED_CHUNKS, help="0 to skip")
    parser.add_argument(
        "--faiss-threads",
        type=int,
        default=1,
        help="OpenMP threads for faiss, in both reasonrag and the direct calls (default 1)",
    )
    parser.add_argument("--out", type=Path, default=HERE / "results" / "search_speed.json")
    args = parser.parse_args(argv)
    console = make_console()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    faiss.omp_set_num_threads(args.faiss_threads)
    results = [measure_size(size, args.queries, args.faiss_threads, console) for size in sizes]
    embedding = measure_embedding(args.embed_chunks, console) if args.embed_chunks else None
    for table in render(results, embedding):
        console.print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = report_header(started) | {"search": results, "embedding": embedding}
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
