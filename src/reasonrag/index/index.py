"""The index: contextual hybrid search over a folder of documents, stored on disk."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from reasonrag.config import EmbedConfig, Settings, load_settings
from reasonrag.embed.base import Embedder, Vectors
from reasonrag.embed.cache import CachedEmbedder
from reasonrag.embed.factory import make_embedder
from reasonrag.errors import (
    ConfigError,
    DocumentNotFoundError,
    EmptyIndexError,
    IndexMismatchError,
    NotAnIndexError,
)
from reasonrag.index.contextualize import LLMContextualizer, indexed_text, title_context
from reasonrag.index.dense import DenseStore, Rows, Scores
from reasonrag.index.fusion import Ranking, reciprocal_rank_fusion, single, weighted_fusion
from reasonrag.index.records import Hit
from reasonrag.index.rerank import CrossEncoderReranker, LLMReranker, Reranker
from reasonrag.index.sparse import SparseStore
from reasonrag.index.store import (
    Manifest,
    attach,
    build_stores,
    check_target,
    generation_folder,
    read_chunks,
    read_manifest,
    read_stores,
    read_vectors,
    write_generation,
    writer_lock,
)
from reasonrag.index.structure import structure_context
from reasonrag.index.tokenize import Tokenizer, choose_tokenizer
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


def _say_waiting(message: str) -> None:
    console.print(f"[yellow]{message}")


class Index:
    """Chunks with their contexts, a dense store and a BM25 store, and the search pipeline.

    ``chunks``, ``contexts`` and ``vectors`` are public so training and latent compression
    can reuse exactly what retrieval sees.

    Writes (``build``, ``upsert``, ``delete``) take the index's writer lock; with
    ``wait=False`` a busy index raises ``IndexBusyError`` instead of waiting. An open index
    that another writer has changed since is brought up to date before it is written, so
    concurrent updates merge rather than overwrite each other."""

    def __init__(
        self,
        folder: Path,
        settings: Settings,
        embedder: Embedder,
        chunks: list[Chunk],
        contexts: list[str],
        vectors: Vectors,
        *,
        dense: DenseStore | None = None,
        sparse: SparseStore | None = None,
        generator: Generator | None = None,
        manifest: Manifest | None = None,
        tokenizer: Tokenizer = "words",
        wait: bool = True,
    ):
        self.folder = folder
        self.manifest = manifest
        """None until the index has been written."""
        self.settings = settings
        self.embedder = embedder
        self.chunks = chunks
        self.contexts = contexts
        self.vectors = vectors
        self.wait = wait
        self.build_report: BuildReport | None = None
        """What the last ``build`` loaded and skipped."""
        # Opening passes the stored stores; only building needs the indexed texts.
        if dense is None or sparse is None:
            texts = [indexed_text(ctx, c.text) for ctx, c in zip(contexts, chunks, strict=True)]
            dense, sparse = build_stores(settings.retrieval, vectors, texts, tokenizer)
        self.dense: DenseStore = dense
        self.sparse: SparseStore = sparse
        self._generator = generator
        self._reranker: Reranker | None = None
        self._rows = {c.id: i for i, c in enumerate(chunks)}

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
        wait: bool = True,
    ) -> Index:
        """Load, chunk, contextualize, embed and store ``paths`` under ``out``.

        ``generator`` writes contexts in ``llm`` mode (default: the configured context LLM).
        Contexts and embeddings are cached, so re-running after an interruption only
        computes what is missing. ``out`` must be a new or empty folder or an index."""
        started = time.perf_counter()
        settings = config or load_settings()
        check_target(Path(out))
        with progress_task("Loading files", None, enabled=progress) as advance:
            report = load_documents([Path(p) for p in paths], on_skip=on_skip, on_progress=advance)
        if not report.documents:
            raise EmptyIndexError(
                f"no indexable documents in {', '.join(map(str, paths))} "
                f"({len(report.skipped)} files skipped)"
            )
        embedder = embedder or make_embedder(settings.embed)
        chunks = _chunk(report.documents, settings, embedder, progress)
        index = cls.from_chunks(
            chunks,
            report.documents,
            settings,
            out,
            embedder=embedder,
            generator=generator,
            progress=progress,
            wait=wait,
        )
        index.build_report = BuildReport(
            documents=len(report.documents),
            chunks=len(chunks),
            skipped=tuple((s.path, s.reason) for s in report.skipped),
            seconds=time.perf_counter() - started,
        )
        return index

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
        wait: bool = True,
    ) -> Index:
        """Index chunks exactly as given (benchmarks whose gold labels name chunks need this)."""
        folder = Path(out)
        check_target(folder)
        embedder = embedder or make_embedder(config.embed)
        docs = {d.id: d for d in documents}
        tokenizer = choose_tokenizer(config.retrieval.tokenizer, docs.values())
        with writer_lock(folder, wait=wait, on_wait=_say_waiting):
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
                tokenizer=tokenizer,
                wait=wait,
            )
            index._save()
        return index

    @classmethod
    def open(
        cls,
        folder: Path | str,
        config: Settings | None = None,
        *,
        embedder: Embedder | None = None,
        generator: Generator | None = None,
        wait: bool = True,
    ) -> Index:
        """Open an index; search settings come from ``config``, the embedder from the index.

        Every file is checked against the manifest before any model is loaded. Asking for
        an embedder other than the one the index was built with is an error: its vectors
        would live in another space."""
        folder = Path(folder)
        manifest = read_manifest(folder)
        settings = config or load_settings()
        stored = _read_generation(folder, manifest, settings)
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
        asked = settings.retrieval.tokenizer
        if asked not in ("auto", manifest.tokenizer):
            raise IndexMismatchError(
                f"{folder} was built with BM25 tokenizer {manifest.tokenizer!r}, "
                f"but {asked!r} was requested; use 'auto' or rebuild the index"
            )
        return cls(
            folder,
            settings,
            embedder,
            stored.chunks,
            stored.contexts,
            stored.vectors,
            dense=stored.dense,
            sparse=stored.sparse,
            generator=generator,
            manifest=manifest,
            wait=wait,
        )

    # ----------------------------------------------------------------- updating
    def upsert(self, documents: Sequence[Document], *, progress: bool = True) -> None:
        """Add documents; a document whose id is already indexed replaces the old version."""
        new_chunks = _chunk(documents, self.settings, self.embedder, progress)
        docs = {d.id: d for d in documents}
        with self._writing():
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
        with progress_task("Loading files", None, enabled=progress) as advance:
            report = load_documents([Path(p) for p in paths], on_progress=advance)
        before = len(self.chunks)
        self.upsert(report.documents, progress=progress)
        return BuildReport(
            documents=len(report.documents),
            chunks=len(self.chunks) - before,
            skipped=tuple((s.path, s.reason) for s in report.skipped),
            seconds=time.perf_counter() - started,
        )

    def reembed(
        self, embed: EmbedConfig, *, embedder: Embedder | None = None, progress: bool = True
    ) -> None:
        """Embed every chunk again with another embedder (a tuned one, say) and record it
        in the manifest, so later opens without an explicit embedder use it."""
        embedder = embedder or make_embedder(embed)
        with self._writing():
            self.settings = self.settings.model_copy(update={"embed": embed})
            self.embedder = embedder
            vectors = _embed(self.chunks, self.contexts, embedder, self.settings, progress)
            self._replace(self.chunks, self.contexts, vectors)

    def delete(self, doc_ids: Iterable[str]) -> int:
        """Remove documents by id; returns how many chunks were removed.

        An id the index does not hold raises ``DocumentNotFoundError`` and removes nothing:
        a typo must not pass for a deletion."""
        gone = set(doc_ids)
        with self._writing():
            unknown = sorted(gone - {c.doc_id for c in self.chunks})
            if unknown:
                raise DocumentNotFoundError(
                    f"{self.folder} holds no document {', '.join(map(repr, unknown))}; "
                    f"`reasonrag info {self.folder}` lists its document ids"
                )
            keep = [i for i, c in enumerate(self.chunks) if c.doc_id not in gone]
            removed = len(self.chunks) - len(keep)
            if removed:
                self._replace(
                    [self.chunks[i] for i in keep],
                    [self.contexts[i] for i in keep],
                    self.vectors[keep],
                )
        return removed

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Hold the writer lock over a base that is the index as it is on disk now."""
        with writer_lock(self.folder, wait=self.wait, on_wait=_say_waiting):
            self._refresh()
            yield

    def _refresh(self) -> None:
        """Reload from disk when another writer has swapped in a generation since."""
        try:
            current = read_manifest(self.folder)
        except NotAnIndexError:
            return  # nothing written yet: this object is the whole index
        if self.manifest is not None and current.generation == self.manifest.generation:
            return
        stored = _read_generation(self.folder, current, self.settings)
        self.chunks, self.contexts, self.vectors = stored.chunks, stored.contexts, stored.vectors
        self.dense, self.sparse = stored.dense, stored.sparse
        self._rows = {c.id: i for i, c in enumerate(self.chunks)}
        self.manifest = current

    def _replace(self, chunks: list[Chunk], contexts: list[str], vectors: Vectors) -> None:
        fresh = Index(
            self.folder,
            self.settings,
            self.embedder,
            chunks,
            contexts,
            vectors,
            generator=self._generator,
            tokenizer=self.sparse.tokenizer,
            wait=self.wait,
        )
        fresh._save()
        self.__dict__.update(fresh.__dict__)

    def _save(self) -> None:
        mode = self.settings.context.mode
        context_generator = None
        if mode == "llm":
            generator = self._generator
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
                "n_documents": len({c.doc_id for c in self.chunks}),
                "context_mode": mode,
                "context_generator": context_generator,
                "tokenizer": self.sparse.tokenizer,
                "settings": {
                    "embed": self.settings.embed.model_dump(mode="json"),
                    "chunk": self.settings.chunk.model_dump(mode="json"),
                    "context": self.settings.context.model_dump(mode="json"),
                },
            },
        )

    def attach(self, name: str, write: Callable[[Path], None], info: dict[str, Any]) -> Path:
        """Store the folder ``name`` (filled by ``write``) in a new generation of this index
        and return where it lives; it is dropped with the generation by any later write."""
        with self._writing():
            self.manifest = attach(self.folder, name, write, info)
        return self.folder / self.manifest.generation / name

    def attachment(self, name: str) -> tuple[Path, dict[str, Any]] | None:
        """Where the attachment ``name`` of the current generation lives, and its info."""
        if self.manifest is None or name not in self.manifest.attachments:
            return None
        return self.folder / self.manifest.generation / name, self.manifest.attachments[name]

    # ------------------------------------------------------------------- lookup
    def get(self, chunk_ids: Iterable[str]) -> list[Chunk]:
        """The chunks with these ids, in the order asked (a saved trace names chunks by id)."""
        ids = list(chunk_ids)
        unknown = [i for i in ids if i not in self._rows]
        if unknown:
            raise DocumentNotFoundError(
                f"{self.folder} holds no chunk {', '.join(map(repr, unknown[:5]))}"
            )
        return [self.chunks[self._rows[i]] for i in ids]

    def context_of(self, chunk_id: str) -> str:
        """The situating context indexed with ``chunk_id`` ("" when none)."""
        self.get([chunk_id])
        return self.contexts[self._rows[chunk_id]]

    def documents(self) -> dict[str, int]:
        """Document id -> number of chunks, in index order."""
        counts: dict[str, int] = {}
        for chunk in self.chunks:
            counts[chunk.doc_id] = counts.get(chunk.doc_id, 0) + 1
        return counts

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
                dense = self.dense.search(vectors, cfg.candidates or cfg.dense_k)
        if cfg.fusion != "dense":
            with stage("sparse"):
                sparse = self.sparse.search(queries, cfg.candidates or cfg.sparse_k)
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
            scores = {name: found[row] for name, found in stages.items() if row in found}
            if len(stages) > 1:
                scores["fusion"] = score
            hits.append(self.hit(row, score=score, rank=rank, stage_scores=scores))
        return hits

    def hit(self, row: int, *, score: float, rank: int, stage_scores: dict[str, float]) -> Hit:
        """The search result for chunk ``row`` (for retrievers other than the text search
        that rank this index's chunks, such as CLaRa's)."""
        chunk = self.chunks[row]
        return Hit(
            chunk_id=chunk.id,
            doc_id=chunk.doc_id,
            title=chunk.title,
            text=chunk.text,
            context=self.contexts[row],
            score=score,
            rank=rank,
            stage_scores=stage_scores,
        )

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


@dataclass(frozen=True)
class _Stored:
    """One generation as read from disk, every file checked."""

    chunks: list[Chunk]
    contexts: list[str]
    vectors: Vectors
    dense: DenseStore
    sparse: SparseStore


def _read_generation(folder: Path, manifest: Manifest, settings: Settings) -> _Stored:
    generation = generation_folder(folder, manifest)
    n = manifest.n_chunks
    chunks, contexts = read_chunks(folder, generation, n)
    vectors = read_vectors(folder, generation, n, manifest.dim)
    dense, sparse = read_stores(folder, generation, n, settings.retrieval, manifest.tokenizer)
    return _Stored(chunks, contexts, vectors, dense, sparse)


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


CHUNKING_BAR_CHARS = 1_000_000
"""Below this much text chunking takes about a second: a bar would only be noise."""


def _chunk(
    documents: Sequence[Document], settings: Settings, embedder: Embedder, progress: bool
) -> list[Chunk]:
    total = sum(len(d.text) for d in documents)
    enabled = progress and total >= CHUNKING_BAR_CHARS
    with progress_task("Chunking (characters)", total, enabled=enabled) as advance:
        return chunk_documents(
            documents,
            max_tokens=settings.chunk.max_tokens,
            overlap_tokens=settings.chunk.overlap_tokens,
            count_tokens=embedder.count_tokens,
            on_progress=advance,
        )


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
    if mode == "structure":
        return [structure_context(c, docs[c.doc_id]) for c in chunks]
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
