"""Structural contexts: where a chunk sits in its file, found without a language model.

For code that is the file path, the classes and functions enclosing the chunk and the
module docstring's first line: the names a developer searches by, which a chunk from the
middle of a long function never mentions. Other documents get the title context (title and
heading path), since the chunker already records each chunk's Markdown heading path."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import PurePosixPath

from reasonrag.index.contextualize import title_context
from reasonrag.index.tokenize import CODE_EXTENSIONS, is_code
from reasonrag.ingest.records import Chunk, Document

_DEFINITION = re.compile(
    r"^(?P<indent>\s*)(?:(?:export|public|private|protected|internal|static|async|abstract|"
    r"final|pub|override|open|default)\s+)*"
    r"(?P<kind>class|struct|interface|enum|trait|impl|fn|func|function|def|module|namespace|"
    r"object)\s+(?:\([^)]*\)\s*)?(?P<name>[A-Za-z_$][\w$]*)"
)


@dataclass(frozen=True)
class Outline:
    """The definitions of a Python module, as (label, first line, last line), and the
    first line of its docstring."""

    spans: tuple[tuple[str, int, int], ...]
    docstring: str


@lru_cache(maxsize=16)
def python_outline(text: str) -> Outline | None:
    """The outline of Python source, or None when it does not parse. Cached: a document's
    chunks are contextualized one after another."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    spans = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            kind = "class" if isinstance(node, ast.ClassDef) else "def"
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            spans.append((f"{kind} {node.name}", first, node.end_lineno or node.lineno))
    doc = ast.get_docstring(tree) or ""
    return Outline(tuple(sorted(spans, key=lambda s: s[1])), doc.strip().split("\n")[0])


def _enclosing_by_indent(lines: list[str], line: int) -> list[str]:
    """Definitions above line ``line`` (1-based) indented less than it and than each other:
    a fair reading of nesting for any language written with conventional indentation."""
    current = lines[line - 1] if line <= len(lines) else ""
    limit = len(current) - len(current.lstrip())
    found: list[str] = []
    for text in reversed(lines[: line - 1]):
        if limit == 0:
            break
        match = _DEFINITION.match(text)
        if match and len(match["indent"]) < limit:
            found.insert(0, f"{match['kind']} {match['name']}")
            limit = len(match["indent"])
    return found


def code_path(doc: Document) -> str:
    """The file path of a code document: its source path, or a title that is a path (as
    in JSONL records of source files)."""
    source = doc.source.split("#", 1)[0]
    return source if PurePosixPath(source).suffix.lower() in CODE_EXTENSIONS else doc.title


def structure_context(chunk: Chunk, doc: Document) -> str:
    """``path > class A > def b`` and the module docstring's first line, for code."""
    if not is_code(doc):
        return title_context(chunk)
    line = doc.text.count("\n", 0, chunk.start) + 1
    path = code_path(doc)
    outline = python_outline(doc.text) if path.endswith((".py", ".pyi")) else None
    if outline is None:
        names, summary = _enclosing_by_indent(doc.text.splitlines(), line), ""
    else:
        names = [label for label, first, last in outline.spans if first <= line <= last]
        summary = outline.docstring
    heading = " > ".join(p for p in (path, *names) if p)
    return f"{heading}\n{summary}" if summary else heading
