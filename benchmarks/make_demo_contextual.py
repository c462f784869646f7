"""Convert the package's demo set into Anthropic's contextual-retrieval layout.

Each document's chunks are its paragraphs (its text split on blank lines), exactly; each
decomposition hop that names a document becomes a query (the sub-question) whose golden
chunk is the hop's paragraph. A sub-question asked by several questions is kept once, with
the union of their golden paragraphs.

    python benchmarks/make_demo_contextual.py [--demo DIR] [--out DIR]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel

from contextual_format import GoldQuery, SourceDocument, write_contextual
from reasonrag.datasets.loaders import LoadIssue, describe_error, read_records

DEMO = Path(__file__).resolve().parents[1] / "src" / "reasonrag" / "data" / "demo"
PARAGRAPH_BREAK = "\n\n"


class _Doc(BaseModel):
    id: str
    title: str
    text: str


class _Hop(BaseModel):
    question: str
    answer: str
    doc_id: str | None = None
    paragraph: int | None = None


class _Question(BaseModel):
    decomposition: list[_Hop] = []


def _fail(issue: LoadIssue) -> None:
    raise ValueError(str(issue))


def read_documents(path: Path) -> list[SourceDocument]:
    docs = []
    for record in read_records(path, str(path), _fail):
        try:
            doc = _Doc.model_validate(record.value)
        except ValueError as exc:
            raise ValueError(f"{record.location}: {describe_error(exc)}") from None
        paragraphs = tuple(doc.text.split(PARAGRAPH_BREAK))
        docs.append(SourceDocument(doc.id, doc.title, doc.text, paragraphs))
    return docs


def read_queries(path: Path, docs: dict[str, SourceDocument]) -> list[GoldQuery]:
    """One query per distinct sub-question, golden paragraphs merged in first-seen order."""
    golden: dict[str, dict[tuple[str, int], None]] = {}
    answers: dict[str, str] = {}
    for record in read_records(path, str(path), _fail):
        try:
            question = _Question.model_validate(record.value)
        except ValueError as exc:
            raise ValueError(f"{record.location}: {describe_error(exc)}") from None
        for i, hop in enumerate(question.decomposition):
            if hop.doc_id is None:
                continue
            where = f"{record.location}: decomposition.{i}"
            if hop.doc_id not in docs:
                raise ValueError(f"{where}.doc_id: unknown document {hop.doc_id!r}")
            if hop.paragraph is None or not 0 <= hop.paragraph < len(docs[hop.doc_id].chunks):
                raise ValueError(f"{where}.paragraph: {hop.paragraph} is not a paragraph index")
            golden.setdefault(hop.question, {})[(hop.doc_id, hop.paragraph)] = None
            answers.setdefault(hop.question, hop.answer)
    return [GoldQuery(q, tuple(pairs), answers[q]) for q, pairs in golden.items()]


def convert(demo: Path, out: Path) -> tuple[int, int, int]:
    """Write the contextual layout; returns (documents, chunks, queries)."""
    docs = read_documents(demo / "corpus.jsonl")
    queries = read_queries(demo / "questions.jsonl", {d.uuid: d for d in docs})
    write_contextual(out, docs, queries)
    return len(docs), sum(len(d.chunks) for d in docs), len(queries)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--demo", type=Path, default=DEMO)
    parser.add_argument("--out", type=Path, default=DEMO / "contextual")
    args = parser.parse_args(argv)
    documents, chunks, queries = convert(args.demo, args.out)
    print(f"wrote {args.out}: {documents} documents, {chunks} chunks, {queries} queries")


if __name__ == "__main__":
    main()
