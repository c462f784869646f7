"""The shipped code-base retrieval set (benchmarks/data/codebase) and the script that builds it."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from contextual_format import QUERIES_FILE, RetrievalSet, SourceDocument, load_retrieval_set
from make_codebase_set import (
    MAX_LINES,
    OUT,
    QUERIES,
    chunk_lines,
    mentions_identifier,
    read_queries,
)
from reasonrag.datasets.loaders import LoadIssue


def _fail(issue: LoadIssue) -> None:
    raise AssertionError(str(issue))


@pytest.fixture(scope="module")
def shipped() -> RetrievalSet:
    return load_retrieval_set(OUT, on_error=_fail)


@pytest.fixture(scope="module")
def sources() -> list[dict[str, object]]:
    """The hand-written queries.jsonl, in order."""
    lines = (OUT / QUERIES).read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _documents(data: RetrievalSet) -> list[SourceDocument]:
    chunks = defaultdict(list)
    for chunk in data.chunks:
        chunks[chunk.doc_id].append(chunk)
    return [
        SourceDocument(
            doc.id,
            doc.title,
            doc.text,
            tuple(c.text for c in sorted(chunks[doc.id], key=lambda c: c.index)),
        )
        for doc in data.documents
    ]


def test_size(shipped: RetrievalSet) -> None:
    assert len(shipped.documents) >= 80
    assert len(shipped.queries) >= 220
    assert not shipped.issues
    assert len({d.title for d in shipped.documents}) == len(shipped.documents)


def test_chunks_reassemble_each_file(shipped: RetrievalSet) -> None:
    for doc in _documents(shipped):
        assert "".join(doc.chunks) == doc.content, doc.title
        assert all(chunk.strip() for chunk in doc.chunks), doc.title


def test_every_query_kept_with_existing_golden_chunks(
    shipped: RetrievalSet, sources: list[dict[str, object]]
) -> None:
    written = (OUT / QUERIES_FILE).read_text().splitlines()
    assert len(shipped.queries) == len(written) == len(sources)
    known = {c.id for c in shipped.chunks}
    for query, source in zip(shipped.queries, sources, strict=True):
        assert query.text == source["query"]
        assert 1 <= len(query.golden) <= 3
        assert set(query.golden) <= known


def test_golden_chunks_contain_their_reference_line(
    shipped: RetrievalSet, sources: list[dict[str, object]]
) -> None:
    by_title = {d.title: d.id for d in shipped.documents}
    text = {c.id: c.text for c in shipped.chunks}
    for query, source in zip(shipped.queries, sources, strict=True):
        golden = source["golden"]
        assert isinstance(golden, list)
        assert len(golden) == len(query.golden)
        for (path, code), chunk in zip(golden, query.golden, strict=True):
            assert chunk.startswith(by_title[path] + "#"), source["query"]
            assert code in text[chunk], source["query"]


def test_queries_resolve_to_the_shipped_golden_chunks(shipped: RetrievalSet) -> None:
    """Resolving queries.jsonl against the shipped chunks gives the shipped evaluation set, so
    the two files agree and every reference is in exactly one chunk."""
    resolved = read_queries(OUT / QUERIES, _documents(shipped))
    assert [q.query for q in resolved] == [q.text for q in shipped.queries]
    assert [[f"{u}#{i}" for u, i in q.golden] for q in resolved] == [
        q.golden for q in shipped.queries
    ]


def test_query_mix(shipped: RetrievalSet) -> None:
    naming = sum(mentions_identifier(q.text) for q in shipped.queries)
    assert 0.25 <= naming / len(shipped.queries) <= 0.5
    assert len({q.text.lower() for q in shipped.queries}) == len(shipped.queries)


SOURCE = '''"""A module."""

import os


@decorator
def short() -> None:
    pass


class Big:
    """Many methods."""

{methods}

# a comment above a function
def tail() -> int:
    return 1
'''
METHOD = "    def m{n}(self) -> int:\n        x = {n}\n        y = x + 1\n        return y\n\n"


def test_chunk_lines_cuts_at_statements_and_keeps_the_text() -> None:
    source = SOURCE.format(methods="".join(METHOD.format(n=n) for n in range(60)))
    chunks = chunk_lines(source)
    assert "".join(chunks) == source
    assert len(chunks) > 3
    for chunk in chunks[1:]:
        first = chunk.splitlines()[0]
        assert first.startswith(("    def m", "# a comment", "@", "class ")), first
    assert max(c.count("\n") for c in chunks) <= MAX_LINES + 15


def test_chunk_lines_short_file_is_one_chunk() -> None:
    assert chunk_lines("x = 1\n\ny = 2\n") == ["x = 1\n\ny = 2\n"]


def test_read_queries_fails_loudly(tmp_path: Path) -> None:
    doc = SourceDocument("u1", "pkg/mod.py", "a = 1\nb = 1\n", ("a = 1\n", "b = 1\n"))

    def write(*rows: dict[str, object]) -> Path:
        path = tmp_path / "queries.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return path

    ok = {"query": "Where is a set?", "answer": "first line", "golden": [["pkg/mod.py", "a ="]]}
    assert read_queries(write(ok), [doc])[0].golden == (("u1", 0),)
    with pytest.raises(ValueError, match="chunks \\[0, 1\\]"):
        read_queries(write({**ok, "golden": [["pkg/mod.py", "= 1"]]}), [doc])
    with pytest.raises(ValueError, match="no chunk"):
        read_queries(write({**ok, "golden": [["pkg/mod.py", "c = 1"]]}), [doc])
    with pytest.raises(ValueError, match="not in the corpus"):
        read_queries(write({**ok, "golden": [["other.py", "a ="]]}), [doc])
    with pytest.raises(ValueError, match="duplicate"):
        read_queries(write(ok, {**ok, "query": "where is A set?"}), [doc])
    with pytest.raises(ValueError, match="same chunk"):
        read_queries(write({**ok, "golden": [["pkg/mod.py", "a"], ["pkg/mod.py", "a = 1"]]}), [doc])
    with pytest.raises(ValueError, match="piece of one line"):
        read_queries(write({**ok, "golden": [["pkg/mod.py", "1\nb"]]}), [doc])
