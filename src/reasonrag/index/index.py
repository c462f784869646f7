"""The index: contextual hybrid search over a folder of documents, stored on disk."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reasonrag.config import Settings, load_settings
from reasonrag.embed.base import Embedder, Vectors
from reasonrag.embed.cache import CachedEmbedder
from reasonrag.embed.factory import make_embedder
from reasonrag.errors import ConfigError, EmptyIndexError, IndexMismatchError
from reasonrag.index.contextualize import LLMContextualizer, indexed_text, title_context
from reasonrag.index.dense import FaissStore, Rows, Scores
from reasonrag.index.fusion import Ranking, reciprocal_rank_fusion, single, weighted_fusion
from reasonrag.index.records import Hit
from reasonrag.index.rerank import CrossEncoderReranker, LLMReranker, Reranker
from reasonrag.index.sparse import BM25Store
from reasonrag.index.store import (
    Manifest,
    read_chunks,
    read_manifest,
    read_vectors,
    write_generation,
)
from reasonrag.ingest.chunk import chunk_documents
from reasonrag.ingest.load import load_documents
from reasonrag.ingest.records import Chunk, Document
from reasonrag.llm.base import Generator
from reasonrag.progress import console, progress_task


@dataclass(frozen=True)
class BuildReport:
    documents: int
    chunks: int
    skipped: tuple[tuple[str, str], ...]
    """(path, reason) for each input that was not indexed."""
    seconds: float


class Index:
    """Chunks with their contexts, a dense store and a BM25 store, and the search pipeline.

    ``chunks``, ``contexts`` and ``vectors`` are public so training and latent compression
    can reuse exactly what retrieval sees."""

    def __init__(
        self,
        folder: Path,
        settings: Settings,
        embedder: Embedder,
        chunks: list[Chunk],
        contexts: list[str],
        vectors: Vectors,
        *,
        dense: FaissStore | None = None,
        sparse: BM25Store | None = None,
        generator: Generator | None = None,
        manifest: Manifest | None = None,
    ):
        self.folder = folder
        self.manifest = manifest
        """None until the index has been written."""
        self.settings = settings
        self.embedder = embedder
        self.chunks = chunks
        self.contexts = contexts
        self.vectors = vectors
        cfg = settings.retrieval
        self.dense = dense or FaissStore.build(
            vectors, hnsw_threshold=cfg.hnsw_threshold, threads=cfg.search_threads
        )
        # Opening passes the stored BM25 index; only building needs the indexed texts.
        self.sparse = sparse or BM25Store.build(
            [indexed_text(ctx, c.text) for ctx, c in zip(contexts, chunks, strict=True)]
        )
        self._generator = generator
        self._reranker: Reranker | None = None

    # ----------------------------------------------------------------- building
    @classmethod
    def build(
        cls,
        paths: Sequence[Path | str],
        config: Settings | None = None,
        out: Path | str = "index",
        *,
        embedder: Embedder | None = None,
        generator: Generator | None = None,
        progress: bool = True,
        on_skip: Callable[[Path, str], None] | None = None,
    ) -> Index:
        """Load, chunk, contextualize, embed and store ``paths`` under ``out``.

        ``generator`` writes contexts in ``llm`` mode (default: the configured context LLM).
        Contexts and embeddings are cached, so re-running after an interruption only
        computes what is missing."""
        settings = config or load_settings()
        report = load_documents([Path(p) for p in paths], on_skip=on_skip)
        if not report.documents:
            raise EmptyIndexError(
                f"no indexable documents in {', '.join(map(str, paths))} "
                f"({len(report.skipped)} files skipped)"
            )
        embedder = embedder or make_embedder(settings.embed)
        chunks = chunk_documents(
            report.documents,
            max_tokens=settings.chunk.max_tokens,
            overlap_tokens=settings.chunk.overlap_tokens,
            count_tokens=embedder.count_tokens,
        )
        return cls.from_chunks(
            chunks,
            report.documents,
            settings,
            out,
            embedder=embedder,
            generator=generator,
            progress=progress,
        )

    @classmethod
    def from_chunks(
        cls,
        chunks: Sequence[Chunk],
        documents: Iterable[Document],
        config: Settings,
        out: Path | str,
        *,
        embedder: Embedder | None = None,
        generator: Generator | None = None,
        progress: bool = True,
    ) -> Index:
        """Index chunks exactly as given (benchmarks whose gold labels name chunks need this)."""
        folder = Path(out)
        embedder = embedder or make_embedder(config.embed)
        docs = {d.id: d for d in documents}
        contexts = _contexts(chunks, docs, config, generator, progress)
        vectors = _embed(chunks, contexts, embedder, config, progress)
        index = cls(
            folder,
            config,
            embedder,
            list(chunks),
            contexts,
            vectors,
            generator=generator,
        )
        index._save(n_documents=len({c.doc_id for c in chunks}), generator=generator)
        return index

    @classmethod
    def open(
        cls,
        folder: Path | str,
        config: Settings | None = None,
        *,
        embedder: Embedder | None = None,
        generator: Generator | None = None,
    ) -> Index:
        """Open an index; search settings come from ``config``, the embedder from the index.

        Asking for an embedder other than the one the index was built with is an error:
        its vectors would live in another space."""
        folder = Path(folder)
        manifest = read_manifest(folder)
        settings = config or load_settings()
        explicit = embedder is not None or "embed" in settings.model_fields_set
        if not explicit:
            settings = settings.model_copy(
                update={"embed": type(settings.embed)(**manifest.settings["embed"])}
            )
        embedder = embedder or make_embedder(settings.embed)
        if embedder.name != manifest.embedder:
            raise IndexMismatchError(
                f"{folder} was built with embedder {manifest.embedder!r}, "
                f"but {embedder.name!r} was requested"
            )
        generation = folder / manifest.generation
        chunks, contexts = read_chunks(generation)
        size = len(chunks)
        return cls(
            folder,
            settings,
            embedder,
            chunks,
            contexts,
            read_vectors(generation),
            dense=FaissStore.load(generation, threads=settings.retrieval.search_threads),
            sparse=BM25Store.load(generation, size),
            generator=generator,
            manifest=manifest,
        )

    # ----------------------------------------------------------------- updating
    def upsert(self, documents: Sequence[Document], *, progress: bool = True) -> None:
        """Add documents; a document whose id is already indexed replaces the old version."""
        new_chunks = chunk_documents(
            documents,
            max_tokens=self.settings.chunk.max_tokens,
            overlap_tokens=self.settings.chunk.overlap_tokens,
            count_tokens=self.embedder.count_tokens,
        )
        docs = {d.id: d for d in documents}
        contexts = _contexts(new_chunks, docs, self.settings, self._generator, progress)
        vectors = _embed(new_chunks, contexts, self.embedder, self.settings, progress)
        keep = [i for i, c in enumerate(self.chunks) if c.doc_id not in docs]
        self._replace(
            [self.chunks[i] for i in keep] + new_chunks,
            [self.contexts[i] for i in keep] + contexts,
            np.concatenate([self.vectors[keep], vectors]),
        )

    def add(self, paths: Sequence[Path | str], *, progress: bool = True) -> BuildReport:
        """Load files and upsert their documents."""
        started = time.perf_counter()
        report = load_documents([Path(p) for p in paths])
        before = len(self.chunks)
        self.upsert(report.documents, progress=progress)
        return BuildReport(
            documents=len(report.documents),
            chunks=len(self.chunks) - before,
            skipped=tuple((s.path, s.reason) for s in report.skipped),
            seconds=time.perf_counter() - started,
        )

    def delete(self, doc_ids: Iterable[str]) -> int:
        """Remove documents by id; returns how many chunks were removed."""
        gone = set(doc_ids)
        keep = [i for i, c in enumerate(self.chunks) if c.doc_id not in gone]
        removed = len(self.chunks) - len(keep)
        if removed:
            self._replace(
                [self.chunks[i] for i in keep],
                [self.contexts[i] for i in keep],
                self.vectors[keep],
            )
        return removed

    def _replace(self, chunks: list[Chunk], contexts: list[str], vectors: Vectors) -> None:
        fresh = Index(
            self.folder,
            self.settings,
            self.embedder,
            chunks,
            contexts,
            vectors,
            generator=self._generator,
        )
        fresh._save(n_documents=len({c.doc_id for c in chunks}), generator=self._generator)
        self.__dict__.update(fresh.__dict__)

    def _save(self, *, n_documents: int, generator: Generator | None) -> None:
        mode = self.settings.context.mode
        context_generator = None
        if mode == "llm":
            context_generator = generator.name if generator else self.settings.context_llm.model
        self.manifest = write_generation(
            self.folder,
            chunks=self.chunks,
            contexts=self.contexts,
            vectors=self.vectors,
            dense=self.dense,
            sparse=self.sparse,
            manifest_fields={
                "embedder": self.embedder.name,
                "dim": int(self.vectors.shape[1]) if self.vectors.ndim == 2 else 0,
                "n_documents": n_documents,
                "context_mode": mode,
                "context_generator": context_generator,
                "settings": {
                    "embed": self.settings.embed.model_dump(mode="json"),
                    "chunk": self.settings.chunk.model_dump(mode="json"),
                    "context": self.settings.context.model_dump(mode="json"),
                },
            },
        )

    # ------------------------------------------------------------------ search
    def search(self, query: str, k: int = 10) -> list[Hit]:
        return self.search_many([query], k)[0]

    def search_many(
        self, queries: Sequence[str], k: int = 10, *, timings: dict[str, float] | None = None
    ) -> list[list[Hit]]:
        """Hybrid search for several queries at once (one embedding batch).

        ``timings``, when given, receives the seconds spent in each stage."""
        cfg = self.settings.retrieval
        stage = _StageTimer(timings)
        dense: tuple[Scores, Rows] | None = None
        sparse: tuple[Scores, Rows] | None = None
        if cfg.fusion != "sparse":
            with stage("embed"):
                vectors = self.embedder.embed(queries, kind="query")
            with stage("dense"):
                dense = self.dense.search(vectors, cfg.dense_k)
        if cfg.fusion != "dense":
            with stage("sparse"):
                sparse = self.sparse.search(queries, cfg.sparse_k)
        depth = max(k, cfg.rerank_top) if cfg.rerank != "none" else k
        results = []
        for q, query in enumerate(queries):
            with stage("fusion"):
                hits = self._hits(self._fuse(dense, sparse, q)[:depth], dense, sparse, q)
            if cfg.rerank != "none":
                with stage("rerank"):
                    reranked = self.reranker.rerank(query, hits[: cfg.rerank_top])
                hits = reranked + hits[cfg.rerank_top :]
            results.append(hits[:k])
        return results

    def _fuse(
        self, dense: tuple[Scores, Rows] | None, sparse: tuple[Scores, Rows] | None, q: int
    ) -> Ranking:
        cfg = self.settings.retrieval
        if sparse is None and dense is not None:
            return single(dense[0][q], dense[1][q])
        if dense is None and sparse is not None:
            return single(sparse[0][q], sparse[1][q])
        assert dense is not None and sparse is not None
        if cfg.fusion == "weighted":
            return weighted_fusion(
                [(dense[0][q], dense[1][q]), (sparse[0][q], sparse[1][q])],
                [cfg.dense_weight, 1.0 - cfg.dense_weight],
            )
        return reciprocal_rank_fusion([dense[1][q], sparse[1][q]], k=cfg.rrf_k)

    def _hits(
        self,
        ranking: Ranking,
        dense: tuple[Scores, Rows] | None,
        sparse: tuple[Scores, Rows] | None,
        q: int,
    ) -> list[Hit]:
        stages: dict[str, dict[int, float]] = {}
        for name, result in (("dense", dense), ("sparse", sparse)):
            if result is not None:
                stages[name] = dict(zip(result[1][q].tolist(), result[0][q].tolist(), strict=True))
        hits = []
        for rank, (row, score) in enumerate(ranking):
            chunk = self.chunks[row]
            scores = {name: found[row] for name, found in stages.items() if row in found}
            if len(stages) > 1:
                scores["fusion"] = score
            hits.append(
                Hit(
                    chunk_id=chunk.id,
                    doc_id=chunk.doc_id,
                    title=chunk.title,
                    text=chunk.text,
                    context=self.contexts[row],
                    score=score,
                    rank=rank,
                    stage_scores=scores,
                )
            )
        return hits

    @property
    def reranker(self) -> Reranker:
        if self._reranker is None:
            cfg = self.settings.retrieval
            if cfg.rerank == "cross-encoder":
                if not cfg.cross_encoder_model:
                    raise ConfigError(
                        "retrieval.rerank = 'cross-encoder' needs retrieval.cross_encoder_model: "
                        "a local sentence-transformers CrossEncoder folder"
                    )
                self._reranker = CrossEncoderReranker(cfg.cross_encoder_model)
            else:
                self._reranker = LLMReranker(self.generator)
        return self._reranker

    @property
    def generator(self) -> Generator:
        """The answering generator (used by the LLM reranker), created on first use."""
        if self._generator is None:
            from reasonrag.llm.factory import make_generator

            self._generator = make_generator(self.settings.llm, self.settings.cache_dir)
        return self._generator

    def __len__(self) -> int:
        return len(self.chunks)


class _StageTimer:
    """Adds each stage's seconds into ``timings``; does nothing when it is None."""

    def __init__(self, timings: dict[str, float] | None):
        self._timings = timings

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        if self._timings is None:
            yield
            return
        started = time.perf_counter()
        yield
        self._timings[name] = self._timings.get(name, 0.0) + time.perf_counter() - started


def _contexts(
    chunks: Sequence[Chunk],
    docs: dict[str, Document],
    settings: Settings,
    generator: Generator | None,
    progress: bool,
) -> list[str]:
    mode = settings.context.mode
    if mode == "none":
        return [""] * len(chunks)
    if mode == "title":
        return [title_context(c) for c in chunks]
    if generator is None:
        from reasonrag.llm.factory import make_generator

        generator = make_generator(settings.context_llm, settings.cache_dir)
    contextualizer = LLMContextualizer(
        generator,
        max_tokens=settings.context.max_tokens,
        window_tokens=settings.context.window_tokens,
        batch_size=settings.context.batch_size,
    )
    with progress_task("Contextualizing chunks", len(chunks), enabled=progress) as advance:
        contexts = contextualizer.contexts(chunks, docs, on_progress=advance)
    if progress:
        fresh = len(chunks) - contextualizer.reused
        console.print(f"contexts: {contextualizer.reused} reused from cache, {fresh} written")
    return contexts


def _embed(
    chunks: Sequence[Chunk],
    contexts: Sequence[str],
    embedder: Embedder,
    settings: Settings,
    progress: bool,
) -> Vectors:
    cached = CachedEmbedder(
        embedder, settings.cache_dir / "embeddings.sqlite", batch_size=settings.embed.batch_size
    )
    texts = [indexed_text(ctx, c.text) for ctx, c in zip(contexts, chunks, strict=True)]
    try:
        with progress_task("Embedding chunks", len(texts), enabled=progress) as advance:
            vectors = cached.embed(texts, on_progress=advance)
    finally:
        cached.close()
    if progress:
        console.print(f"embeddings: {cached.hits} reused from cache, {cached.misses} computed")
    if not len(vectors):
        return np.zeros((0, embedder.dim), dtype=np.float32)
    return vectors
