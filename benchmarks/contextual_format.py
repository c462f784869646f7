"""Retrieval evaluation sets: Anthropic's contextual-retrieval layout (read and write) and BEIR.

Anthropic's layout is a folder with

- ``codebase_chunks.json``: a JSON array of documents
  ``{original_uuid, content, chunks: [{chunk_id?, original_index, content}]}``;
- ``evaluation_set.jsonl``: one query per line,
  ``{query, golden_chunk_uuids: [[doc uuid, chunk index], ...], golden_documents?, answer?}``.

List fields may also arrive as JSON or Python-literal text (``"[['uuid', 0]]"``), as CSV and
parquet round trips leave them. A document's title is its ``title`` field when present (an
extension this module writes), else its first line when that line looks like a heading (short,
no sentence or code punctuation at the end, followed by more text), else "".

A BEIR folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/test.tsv``) becomes one chunk per
corpus entry, keeping the graded relevance for nDCG.

Malformed records are reported through ``on_error`` with ``file:line`` (or ``file[index]``) and
the field, then skipped; they are also listed in ``RetrievalSet.issues``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from reasonrag.datasets.loaders import (
    LiteralList,
    LoadIssue,
    OnError,
    Text,
    describe_error,
    load_beir,
    read_records,
    warn_issue,
)
from reasonrag.ingest.records import Chunk, Document

CHUNKS_FILE = "codebase_chunks.json"
QUERIES_FILE = "evaluation_set.jsonl"
TITLE_MAX_CHARS = 80
_NOT_A_TITLE_END = tuple(".,;:!?{}()[]=<>")


class DatasetError(ValueError):
    """Nothing usable could be read; the message names the file."""


@dataclass(frozen=True)
class EvalQuery:
    id: str
    text: str
    relevance: dict[str, int]
    """Chunk id -> graded relevance; the golden chunks are those graded above 0."""

    @property
    def golden(self) -> list[str]:
        return [chunk for chunk, grade in self.relevance.items() if grade > 0]


@dataclass(frozen=True)
class RetrievalSet:
    name: str
    """``parent/folder`` of the set's folder."""
    documents: list[Document]
    chunks: list[Chunk]
    queries: list[EvalQuery]
    graded: bool
    """True when relevance is graded (BEIR): nDCG is meaningful."""
    issues: list[LoadIssue] = field(default_factory=list)


def chunk_id(doc_id: str, index: int) -> str:
    return f"{doc_id}#{index}"


def guess_title(content: str) -> str:
    """The first line when it reads like a heading ("# Foo" counts), else ""."""
    first, _, rest = content.strip().partition("\n")
    first = first.strip().lstrip("#").strip()
    if not rest.strip() or not first or len(first) > TITLE_MAX_CHARS:
        return ""
    return "" if first.endswith(_NOT_A_TITLE_END) else first


def locate(content: str, texts: Sequence[str]) -> list[tuple[int, int]]:
    """Character spans of ``texts`` in ``content``, searched in order.

    A text that does not occur in the document is placed right after the previous span, so
    offsets stay monotonic (only the context window of LLM contextualization uses them)."""
    spans = []
    cursor = 0
    for text in texts:
        at = content.find(text, cursor)
        if at < 0:
            at = content.find(text)
        if at < 0:
            at = cursor
        spans.append((at, at + len(text)))
        cursor = at + len(text)
    return spans


# --- Anthropic's layout --------------------------------------------------------------------


class _ChunkRow(BaseModel):
    original_index: int
    content: str
    chunk_id: str | None = None


class _DocRow(BaseModel):
    model_config = ConfigDict(coerce_numbers_to_str=True)
    original_uuid: Text
    content: str
    title: str | None = None
    chunks: LiteralList[_ChunkRow] = Field(min_length=1)


class _QueryRow(BaseModel):
    query: Text
    golden_chunk_uuids: LiteralList[tuple[str, int]] = Field(min_length=1)


def _document_chunks(row: _DocRow, source: str) -> tuple[Document, list[Chunk]]:
    indexes = [c.original_index for c in row.chunks]
    if len(set(indexes)) != len(indexes):
        raise ValueError("chunks: duplicate original_index")
    ordered = sorted(row.chunks, key=lambda c: c.original_index)
    title = row.title if row.title is not None else guess_title(row.content)
    doc = Document(id=row.original_uuid, title=title, text=row.content, source=source)
    spans = locate(row.content, [c.content for c in ordered])
    chunks = [
        Chunk(
            id=chunk_id(doc.id, c.original_index),
            doc_id=doc.id,
            index=c.original_index,
            text=c.content,
            title=title,
            start=start,
            end=end,
            source=source,
        )
        for c, (start, end) in zip(ordered, spans, strict=True)
    ]
    return doc, chunks


def _read_documents(path: Path, report: OnError) -> tuple[list[Document], list[Chunk]]:
    documents: list[Document] = []
    chunks: list[Chunk] = []
    seen: set[str] = set()
    for record in read_records(path, str(path), report):
        try:
            row = _DocRow.model_validate(record.value)
            if row.original_uuid in seen:
                raise ValueError(f"original_uuid: duplicate {row.original_uuid!r}")
            doc, doc_chunks = _document_chunks(row, record.location)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            report(LoadIssue(record.location, describe_error(exc)))
            continue
        seen.add(doc.id)
        documents.append(doc)
        chunks.extend(doc_chunks)
    return documents, chunks


def _read_queries(path: Path, known: set[str], report: OnError) -> list[EvalQuery]:
    queries = []
    for record in read_records(path, str(path), report):
        try:
            row = _QueryRow.model_validate(record.value)
        except ValidationError as exc:
            report(LoadIssue(record.location, describe_error(exc)))
            continue
        golden = [chunk_id(uuid, index) for uuid, index in row.golden_chunk_uuids]
        missing = [g for g in golden if g not in known]
        if missing:
            report(LoadIssue(record.location, f"golden_chunk_uuids: unknown chunk {missing[0]}"))
            continue
        queries.append(EvalQuery(record.location, row.query, dict.fromkeys(golden, 1)))
    return queries


def load_contextual(folder: str | Path, *, on_error: OnError | None = None) -> RetrievalSet:
    """Anthropic's contextual-retrieval evaluation folder."""
    root = Path(folder)
    issues: list[LoadIssue] = []
    report = _collecting(issues, on_error or warn_issue)
    documents, chunks = _read_documents(root / CHUNKS_FILE, report)
    if not chunks:
        raise DatasetError(f"{root / CHUNKS_FILE}: no readable document with chunks")
    queries = _read_queries(root / QUERIES_FILE, {c.id for c in chunks}, report)
    if not queries:
        raise DatasetError(f"{root / QUERIES_FILE}: no readable query")
    return RetrievalSet(_name(root), documents, chunks, queries, graded=False, issues=issues)


def _name(root: Path) -> str:
    """Folder and parent (``demo/contextual``): the folder alone is often a generic word."""
    resolved = root.resolve()
    return f"{resolved.parent.name}/{resolved.name}"


def _collecting(issues: list[LoadIssue], report: OnError) -> OnError:
    def collect(issue: LoadIssue) -> None:
        issues.append(issue)
        report(issue)

    return collect


@dataclass(frozen=True)
class SourceDocument:
    """A document to write: its text and its chunks' texts, in order."""

    uuid: str
    title: str
    content: str
    chunks: tuple[str, ...]


@dataclass(frozen=True)
class GoldQuery:
    query: str
    golden: tuple[tuple[str, int], ...]
    """(document uuid, chunk index) pairs."""
    answer: str = ""


def write_contextual(
    folder: str | Path, documents: Sequence[SourceDocument], queries: Sequence[GoldQuery]
) -> None:
    """Write both files. ``golden_documents`` lists each golden chunk's text under its
    document (``{uuid, chunks: [{index, content}]}``), where Anthropic's notebook looks golden
    texts up; the whole document text is left out to keep the file small."""
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    by_uuid = {d.uuid: d for d in documents}
    rows = [
        {
            "doc_id": f"doc_{i}",
            "original_uuid": doc.uuid,
            "title": doc.title,
            "content": doc.content,
            "chunks": [
                {"chunk_id": f"doc_{i}_chunk_{j}", "original_index": j, "content": text}
                for j, text in enumerate(doc.chunks)
            ],
        }
        for i, doc in enumerate(documents)
    ]
    (root / CHUNKS_FILE).write_text(json.dumps(rows, ensure_ascii=False, indent=1) + "\n")
    with (root / QUERIES_FILE).open("w") as out:
        for q in queries:
            line = {
                "query": q.query,
                "answer": q.answer,
                "golden_chunk_uuids": [list(pair) for pair in q.golden],
                "golden_documents": _golden_documents(q, by_uuid),
            }
            out.write(json.dumps(line, ensure_ascii=False) + "\n")


def _golden_documents(
    query: GoldQuery, by_uuid: dict[str, SourceDocument]
) -> list[dict[str, object]]:
    grouped: dict[str, list[int]] = {}
    for uuid, index in query.golden:
        grouped.setdefault(uuid, []).append(index)
    return [
        {
            "uuid": uuid,
            "chunks": [{"index": i, "content": by_uuid[uuid].chunks[i]} for i in indexes],
        }
        for uuid, indexes in grouped.items()
    ]


# --- BEIR ----------------------------------------------------------------------------------


def load_beir_set(
    folder: str | Path, split: str = "test", *, on_error: OnError | None = None
) -> RetrievalSet:
    """A BEIR folder, one chunk per corpus entry; queries without a relevant document that is
    in the corpus are dropped (nDCG is undefined for them) and reported."""
    root = Path(folder)
    issues: list[LoadIssue] = []
    report = _collecting(issues, on_error or warn_issue)
    beir = load_beir(root, split, on_error=report)
    corpus_file = str(root / "corpus.jsonl")
    documents = beir.documents(source=corpus_file)
    chunks = [
        Chunk(chunk_id(d.id, 0), d.id, 0, d.text, d.title, 0, len(d.text), source=corpus_file)
        for d in documents
    ]
    queries = []
    for query_id, text in beir.queries.items():
        relevance = {
            chunk_id(doc, 0): grade
            for doc, grade in beir.qrels[query_id].items()
            if doc in beir.corpus
        }
        if not any(grade > 0 for grade in relevance.values()):
            report(LoadIssue(f"{root}/qrels/{split}.tsv", f"query {query_id}: no relevant doc"))
            continue
        queries.append(EvalQuery(query_id, text, relevance))
    if not chunks or not queries:
        raise DatasetError(f"{root}: no corpus entry or no judged query could be read")
    return RetrievalSet(_name(root), documents, chunks, queries, graded=True, issues=issues)


def load_retrieval_set(folder: str | Path, *, on_error: OnError | None = None) -> RetrievalSet:
    """Either layout, recognised by its files."""
    root = Path(folder)
    if (root / CHUNKS_FILE).is_file():
        return load_contextual(root, on_error=on_error)
    if (root / "corpus.jsonl").is_file():
        return load_beir_set(root, on_error=on_error)
    raise DatasetError(f"{root}: no {CHUNKS_FILE} (Anthropic's layout) or corpus.jsonl (BEIR)")
