"""A retrieval corpus built from the paragraphs the benchmark questions ship with.

Evaluating over the union of the shipped paragraphs (gold and distractors) lets a run work
offline, without a Wikipedia dump, while keeping every question's gold paragraphs findable.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from reasonrag.config import Settings
from reasonrag.datasets.loaders import QAExample
from reasonrag.embed.base import Embedder
from reasonrag.errors import IndexStoreError
from reasonrag.ingest.records import Chunk, Document
from reasonrag.llm.base import Generator

if TYPE_CHECKING:
    from reasonrag.index import Index


def doc_id(title: str, text: str) -> str:
    """Stable id of a paragraph: the same title and text give the same id in every run."""
    # A separator that cannot occur in titles keeps ("ab", "c") apart from ("a", "bc").
    return hashlib.sha256(f"{title}\x1f{text}".encode()).hexdigest()[:16]


def corpus_from_examples(examples: Iterable[QAExample]) -> list[Document]:
    """Shipped paragraphs of ``examples``, deduplicated by (title, text), in first-seen order."""
    docs: dict[str, Document] = {}
    for example in examples:
        for paragraph in example.paragraphs:
            key = doc_id(paragraph.title, paragraph.text)
            if key not in docs:
                docs[key] = Document(
                    id=key, title=paragraph.title, text=paragraph.text, source=example.dataset
                )
    return list(docs.values())


def title_index(documents: Iterable[Document]) -> dict[str, list[str]]:
    """Title -> ids of the documents with that title (titles are not unique, e.g. in MuSiQue)."""
    index: dict[str, list[str]] = {}
    for doc in documents:
        index.setdefault(doc.title, []).append(doc.id)
    return index


def gold_doc_ids(example: QAExample, corpus_index: Mapping[str, Sequence[str]]) -> set[str]:
    """Corpus ids of ``example``'s supporting documents, for supporting-document recall.

    A supporting document whose text is known maps to exactly its own paragraph; one known
    only by title maps to every document with that title. A title absent from the corpus
    raises ``KeyError``: silently dropping it would inflate recall.
    """
    gold: set[str] = set()
    for doc in example.supporting:
        ids = corpus_index.get(doc.title)
        if not ids:
            raise KeyError(f"question {example.id}: supporting title {doc.title!r} not in corpus")
        exact = doc_id(doc.title, doc.text) if doc.text is not None else ""
        gold.update([exact] if exact in ids else ids)
    return gold


def corpus_documents(
    examples: Sequence[QAExample], dataset: str, path: Path | None
) -> list[Document]:
    """The retrieval corpus of a run: the demo corpus for ``demo``, otherwise the paragraphs
    the chosen questions ship with."""
    if not dataset.lower().startswith("demo"):
        return corpus_from_examples(examples)
    from reasonrag.demo import demo_corpus
    from reasonrag.ingest.load import load_documents

    source = path / "corpus.jsonl" if path is not None else demo_corpus()
    return list(load_documents([source]).documents)


def _reusable(
    folder: Path, documents: Sequence[Document], settings: Settings, embedder: Embedder
) -> bool:
    from reasonrag.index.store import read_manifest

    try:
        manifest = read_manifest(folder)
    except IndexStoreError:
        return False
    built_with = manifest.settings
    return (
        manifest.embedder == embedder.name
        and built_with.get("chunk") == settings.chunk.model_dump(mode="json")
        and built_with.get("context") == settings.context.model_dump(mode="json")
        and manifest.n_documents == len(documents)
    )


def prepare_index(
    documents: Sequence[Document],
    settings: Settings,
    folder: Path,
    *,
    embedder: Embedder | None = None,
    generator: Generator | None = None,
    progress: bool = True,
) -> Index:
    """The index of ``documents`` at ``folder``: reused when it was built from the same
    documents with the same embedder, chunking and contexts, else (re)built."""
    from reasonrag.embed.factory import make_embedder
    from reasonrag.index import Index
    from reasonrag.ingest.chunk import chunk_documents

    embedder = embedder or make_embedder(settings.embed)
    if _reusable(folder, documents, settings, embedder):
        index = Index.open(folder, settings, embedder=embedder, generator=generator)
        if {c.doc_id for c in index.chunks} == {d.id for d in documents}:
            return index
    chunks = chunk_documents(
        documents,
        max_tokens=settings.chunk.max_tokens,
        overlap_tokens=settings.chunk.overlap_tokens,
        count_tokens=embedder.count_tokens,
    )
    return Index.from_chunks(
        chunks,
        documents,
        settings,
        folder,
        embedder=embedder,
        generator=generator,
        progress=progress,
    )


def chunk_titles(chunks: Iterable[Chunk]) -> dict[str, list[str]]:
    """Title -> ids of the indexed documents with that title."""
    titles: dict[str, dict[str, None]] = {}
    for chunk in chunks:
        titles.setdefault(chunk.title, {})[chunk.doc_id] = None
    return {title: list(ids) for title, ids in titles.items()}


def gold_documents(
    examples: Iterable[QAExample], titles: Mapping[str, Sequence[str]]
) -> dict[str, frozenset[str] | None]:
    """Gold document ids per question; None where a supporting title is not indexed (an
    external index), so recall is left out rather than understated."""
    gold: dict[str, frozenset[str] | None] = {}
    for example in examples:
        try:
            gold[example.id] = frozenset(gold_doc_ids(example, titles)) or None
        except KeyError:
            gold[example.id] = None
    return gold
