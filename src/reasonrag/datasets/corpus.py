"""A retrieval corpus built from the paragraphs the benchmark questions ship with.

Evaluating over the union of the shipped paragraphs (gold and distractors) lets a run work
offline, without a Wikipedia dump, while keeping every question's gold paragraphs findable.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

from reasonrag.datasets.loaders import QAExample
from reasonrag.ingest.records import Document


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
