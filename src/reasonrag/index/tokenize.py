"""BM25 tokenisers: plain words, or words plus the parts of code identifiers.

BM25 only matches whole tokens, so a query for "user name" never finds ``get_user_name``
and one for "server error" never finds ``HTTPServerError``. The ``identifiers`` tokeniser
indexes each identifier whole *and* split at its ``_ . -``, case and digit boundaries."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import PurePosixPath
from typing import Literal

from reasonrag.config import SparseTokenizer
from reasonrag.ingest.records import Document

Tokenizer = Literal["words", "identifiers"]
"""The tokeniser an index was built with (``auto`` resolves to one of these)."""

CODE_EXTENSIONS = frozenset(
    [
        ".py",
        ".pyi",
        ".js",
        ".jsx",
        ".mjs",
        ".ts",
        ".tsx",
        ".java",
        ".go",
        ".rs",
        ".c",
        ".cc",
        ".cpp",
        ".cxx",
        ".h",
        ".hpp",
        ".rb",
        ".kt",
        ".kts",
        ".swift",
        ".scala",
        ".cs",
        ".php",
        ".lua",
        ".pl",
        ".r",
        ".jl",
        ".m",
        ".dart",
        ".ex",
        ".exs",
        ".erl",
        ".hs",
        ".ml",
        ".sh",
        ".sql",
    ]
)
"""File extensions (of a document's source or title) that mark it as code."""

_IDENTIFIER = re.compile(r"\w+(?:[.\-]\w+)*")
_SEPARATORS = re.compile(r"[._\-]+")
_CASE_PARTS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_CODE_LINE = re.compile(
    r"^\s*(?:def |class |import |from \S+ import |function |const |let |var |return\b|"
    r"public |private |#include|fn |func |package |@\w)|[;{}):]\s*$"
)
CODE_LINE_SHARE = 0.3
"""Share of non-blank lines that must look like code for a record with no code extension
(a JSONL record, say) to count as code."""


def identifier_parts(token: str) -> list[str]:
    """``token`` lowercased, then its parts when it has more than one, lowercased.

    >>> identifier_parts("HTTPServerError")
    ['httpservererror', 'http', 'server', 'error']"""
    parts = [
        part.lower() for piece in _SEPARATORS.split(token) for part in _CASE_PARTS.findall(piece)
    ]
    whole = token.lower()
    return [whole] if parts in ([], [whole]) else [whole, *parts]


def split_identifiers(text: str) -> list[str]:
    """Every identifier-like token of ``text`` with its parts, before stemming."""
    return [part for token in _IDENTIFIER.findall(text) for part in identifier_parts(token)]


def is_code(doc: Document) -> bool:
    """Whether ``doc`` is source code: by the extension of its source path or title, or,
    for a document with neither (a JSONL record), by the share of lines that look like code."""
    for name in (doc.source.split("#", 1)[0], doc.title):
        if PurePosixPath(name).suffix.lower() in CODE_EXTENSIONS:
            return True
    lines = [line for line in doc.text.splitlines() if line.strip()]
    coded = sum(1 for line in lines if _CODE_LINE.search(line))
    return bool(lines) and coded >= CODE_LINE_SHARE * len(lines)


def choose_tokenizer(setting: SparseTokenizer, documents: Iterable[Document]) -> Tokenizer:
    """The tokeniser for an index of ``documents``: ``auto`` means identifiers when more
    than half of the documents are code."""
    if setting != "auto":
        return setting
    docs: Sequence[Document] = list(documents)
    return "identifiers" if 2 * sum(map(is_code, docs)) > len(docs) else "words"
