"""Build a code-base retrieval set in Anthropic's contextual-retrieval layout from Rich.

The corpus is the hand-written Python of `Textualize/rich <https://github.com/Textualize/rich>`_
(MIT) at one pinned commit: every module of the ``rich`` package except the generated data
tables, and a few test modules. Each file is one document whose chunks are its exact lines, cut
at natural boundaries (see ``chunk_lines``), so the chunks joined in order give the file back.

The queries are hand-written in ``benchmarks/data/codebase/queries.jsonl``, one per line::

    {"query": "...", "answer": "...", "golden": [["rich/text.py", "a line of that chunk"], ...]}

Each golden reference names a file and a distinctive piece of code (a substring of one line);
it resolves to the one chunk of that file that contains it, so the set survives re-chunking and
a reference that matches no chunk, or several, fails loudly.

    python benchmarks/make_codebase_set.py --git-dir /path/to/rich.git [--commit SHA] [--out DIR]

``--git-dir`` is a clone of the repository (bare or not) that has the pinned commit, for
instance the directory the project's ``fetch github:Textualize/rich`` tool returns.
"""

from __future__ import annotations

import argparse
import ast
import itertools
import re
import subprocess
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, Field

from contextual_format import GoldQuery, SourceDocument, write_contextual

REPOSITORY = "Textualize/rich"
COMMIT = "42899d8a0a96b121a514516f4be9db44ff7aeaf3"
LICENSE_FILE = "LICENSE"
OUT = Path(__file__).resolve().parent / "data" / "codebase"
QUERIES = "queries.jsonl"
UUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, f"https://github.com/{REPOSITORY}")

PACKAGE = "rich/"
GENERATED = (
    "rich/_unicode_data/unicode",  # cell-width tables written by tools/make_width_tables.py
    "rich/_emoji_codes.py",  # emoji name table
    "rich/_spinners.py",  # spinner frames copied from cli-spinners
    "rich/_palettes.py",  # colour tables
)
TESTS = (
    "tests/test_ansi.py",
    "tests/test_cells.py",
    "tests/test_color.py",
    "tests/test_containers.py",
    "tests/test_control.py",
    "tests/test_filesize.py",
    "tests/test_logging.py",
    "tests/test_markup.py",
    "tests/test_prompt.py",
    "tests/test_ratio.py",
    "tests/test_repr.py",
    "tests/test_segment.py",
    "tests/test_style.py",
    "tests/test_theme.py",
    "tests/test_traceback.py",
    "tests/test_tree.py",
)

MAX_LINES = 80
ALONE_LINES = 15
"""A chunk shorter than this is merged with the next unit even past ``MAX_LINES``."""


# --- reading the repository ----------------------------------------------------------------


def git(git_dir: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", f"--git-dir={git_dir}", *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def select_files(paths: Iterable[str]) -> list[str]:
    """The package's modules minus generated tables, then the chosen tests, in that order."""
    paths = set(paths)
    package = sorted(
        p
        for p in paths
        if p.startswith(PACKAGE) and p.endswith(".py") and not p.startswith(GENERATED)
    )
    missing = [t for t in TESTS if t not in paths]
    if missing:
        raise SystemExit(f"not in the commit: {', '.join(missing)}")
    return package + list(TESTS)


# --- chunking ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    """Lines ``start`` to ``end`` (0-based, end exclusive) and the statements inside that may
    start a smaller unit (class methods, statements of a function body)."""

    start: int
    end: int
    inner: tuple[ast.stmt, ...] = ()

    @property
    def size(self) -> int:
        return self.end - self.start


def _first_line(node: ast.stmt, lines: Sequence[str]) -> int:
    """0-based first line of a statement: its decorators, and the comment lines right above."""
    decorators = getattr(node, "decorator_list", [])
    first = min([node.lineno, *(d.lineno for d in decorators)]) - 1
    while first > 0 and lines[first - 1].strip().startswith("#"):
        first -= 1
    return first


def _units(body: Sequence[ast.stmt], start: int, end: int, lines: Sequence[str]) -> list[Unit]:
    """Lines ``start:end`` cut before each statement of ``body`` (after the first)."""
    starts = [start] + [max(_first_line(n, lines), start) for n in body[1:]]
    starts = sorted(set(starts))
    bounds = [*starts, end]
    units = []
    for a, b in itertools.pairwise(bounds):
        inside = [n for n in body if a <= n.lineno - 1 < b]
        units.append(Unit(a, b, _children(inside[0]) if len(inside) == 1 else ()))
    return units


def _children(node: ast.stmt) -> tuple[ast.stmt, ...]:
    """The statements directly inside a compound statement (a class or function body, the
    branches of an ``if``, a loop, ``with`` or ``try``), in order."""
    children: list[ast.stmt] = []
    for name in ("body", "orelse", "finalbody"):
        value = getattr(node, name, None)
        if isinstance(value, list):
            children.extend(n for n in value if isinstance(n, ast.stmt))
    return tuple(sorted(children, key=lambda n: n.lineno))


def _split(unit: Unit, lines: Sequence[str]) -> list[Unit]:
    """A unit longer than ``MAX_LINES`` cut at its inner statements, recursively."""
    if unit.size <= MAX_LINES or len(unit.inner) < 2:
        return [unit]
    pieces = _units(unit.inner, unit.start, unit.end, lines)
    return [small for piece in pieces for small in _split(piece, lines)]


def chunk_lines(source: str) -> list[str]:
    """The file cut into chunks of at most about ``MAX_LINES`` lines (most are 40-80).

    Cuts fall only before a top-level statement (with its decorators and the comment lines
    right above it); a unit longer than ``MAX_LINES`` (a long class, function or ``if`` block)
    is cut before the statements directly inside it (methods, body statements), recursively.
    Units are then packed greedily: a unit joins the current chunk while the chunk stays
    within ``MAX_LINES``, or while the chunk is shorter than ``ALONE_LINES``; a short last
    chunk joins the one before. Blank lines stay at the end of the chunk they follow, and a
    single statement longer than ``MAX_LINES`` (a data table) stays whole. Joined in order,
    the chunks are the file."""
    lines = source.splitlines(keepends=True)
    if len(lines) <= MAX_LINES:
        return [source]
    tree = ast.parse(source)
    units = [
        small for unit in _units(tree.body, 0, len(lines), lines) for small in _split(unit, lines)
    ]
    chunks: list[tuple[int, int]] = []
    for unit in units:
        if chunks:
            start, end = chunks[-1]
            size = end - start
            if size + unit.size <= MAX_LINES or size < ALONE_LINES:
                chunks[-1] = (start, unit.end)
                continue
        chunks.append((unit.start, unit.end))
    # A short tail (a `__main__` demo, a last helper) joins the chunk before it.
    if len(chunks) > 1 and chunks[-1][1] - chunks[-1][0] < ALONE_LINES:
        (start, _), (_, end) = chunks[-2], chunks[-1]
        chunks[-2:] = [(start, end)]
    return ["".join(lines[a:b]) for a, b in chunks]


def doc_uuid(path: str) -> str:
    return str(uuid.uuid5(UUID_NAMESPACE, path))


def read_corpus(git_dir: Path, commit: str) -> list[SourceDocument]:
    files = select_files(git(git_dir, "ls-tree", "-r", "--name-only", commit).splitlines())
    docs = []
    for path in files:
        content = git(git_dir, "show", f"{commit}:{path}")
        if not content.strip():
            continue  # empty __init__ files
        chunks = tuple(chunk_lines(content))
        assert "".join(chunks) == content, path
        docs.append(SourceDocument(doc_uuid(path), path, content, chunks))
    return docs


# --- queries -------------------------------------------------------------------------------


class QueryRow(BaseModel):
    query: str = Field(min_length=10)
    answer: str = Field(min_length=1)
    golden: list[tuple[str, str]] = Field(min_length=1, max_length=3)


IDENTIFIER = re.compile(r"`[^`]+`")


def mentions_identifier(query: str) -> bool:
    """Queries that name code write the name in backticks."""
    return bool(IDENTIFIER.search(query))


def resolve(
    ref: tuple[str, str], by_path: dict[str, SourceDocument], where: str
) -> tuple[str, int]:
    path, code = ref
    doc = by_path.get(path)
    if doc is None:
        raise ValueError(f"{where}: {path} is not in the corpus")
    if not code.strip() or "\n" in code:
        raise ValueError(f"{where}: a golden reference is a piece of one line, got {code!r}")
    hits = [i for i, text in enumerate(doc.chunks) if code in text]
    if len(hits) != 1:
        found = "no chunk" if not hits else f"chunks {hits}"
        raise ValueError(f"{where}: {code!r} is in {found} of {path}, not exactly one")
    return doc.uuid, hits[0]


def read_queries(path: Path, docs: Sequence[SourceDocument]) -> list[GoldQuery]:
    by_path = {d.title: d for d in docs}
    queries: list[GoldQuery] = []
    seen: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = QueryRow.model_validate_json(line)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        key = " ".join(row.query.lower().split())
        if key in seen:
            raise ValueError(f"{where}: duplicate of the query at {seen[key]}")
        seen[key] = where
        golden = [resolve(ref, by_path, where) for ref in row.golden]
        if len(set(golden)) != len(golden):
            raise ValueError(f"{where}: two golden references name the same chunk")
        queries.append(GoldQuery(row.query, tuple(golden), row.answer))
    return queries


# --- writing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Counts:
    files: int
    package_files: int
    test_files: int
    chunks: int
    lines: int
    queries: int
    with_identifier: int
    golden_chunks: int
    multi_golden: int
    chunk_lines: tuple[int, int, float]
    """min, max, mean lines per chunk."""


def count(docs: Sequence[SourceDocument], queries: Sequence[GoldQuery]) -> Counts:
    sizes = [text.count("\n") for d in docs for text in d.chunks]
    return Counts(
        files=len(docs),
        package_files=sum(d.title.startswith(PACKAGE) for d in docs),
        test_files=sum(not d.title.startswith(PACKAGE) for d in docs),
        chunks=len(sizes),
        lines=sum(sizes),
        queries=len(queries),
        with_identifier=sum(mentions_identifier(q.query) for q in queries),
        golden_chunks=len({g for q in queries for g in q.golden}),
        multi_golden=sum(len(q.golden) > 1 for q in queries),
        chunk_lines=(min(sizes), max(sizes), sum(sizes) / len(sizes)),
    )


README = """# Code-base retrieval set: Rich

A retrieval evaluation set in Anthropic's contextual-retrieval layout (`codebase_chunks.json`,
`evaluation_set.jsonl`), like the code-base set of Anthropic's contextual-retrieval cookbook:
the documents are Python files, the chunks are pieces of them, and each query is a question a
developer might ask about the code, with the chunk or chunks that answer it.

Generated by `benchmarks/make_codebase_set.py` from `queries.jsonl`; do not edit the two set
files by hand.

## Source

- Repository: https://github.com/{repository}
- Commit: `{commit}`
- Licence: MIT (the full text is below). The chunk and document texts are Rich's code,
  copyright (c) 2020 Will McGugan, unchanged. The queries and answers in `queries.jsonl` were
  written for this set by reading that code.

## Contents

- Documents: {files} files, {lines} lines: {package_files} modules of the `rich` package and
  {test_files} of its test modules. Left out: empty `__init__.py` files and the generated data
  tables ({generated}).
- Chunks: {chunks}, of {min_lines} to {max_lines} lines (mean {mean_lines:.0f}). A file is cut
  only before a top-level statement, or, inside a class, function or `if` block longer than
  {max_chunk} lines, before one of its statements; the pieces are packed into chunks of up to
  about {max_chunk} lines. Files of up to {max_chunk} lines are one chunk, and a single long
  statement (a data table) stays whole. A chunk's text is the file's exact lines, so a
  document's chunks joined in order give the file back.
- Queries: {queries}. {with_identifier} name a function, class, attribute or setting (written
  in backticks); the other {without_identifier} describe behaviour only. {multi_golden} have two
  or three golden chunks; {golden_chunks} distinct chunks are golden.

Each document's `original_uuid` is the UUIDv5 of its file path (namespace: the UUIDv5 of the
repository URL) and its `title` is the file path.

## Rebuilding

```bash
git clone https://github.com/{repository} rich && git -C rich checkout {commit}
python benchmarks/make_codebase_set.py --git-dir rich/.git
```

Each `golden` reference in `queries.jsonl` is `[file path, a piece of one line of code]`; the
script resolves it to the one chunk of that file that contains it, and stops if it is in no
chunk or in several, if a query repeats, or if two references name the same chunk.

## Licence of the source code

```
{license}```
"""


def write_readme(out: Path, counts: Counts, license_text: str, commit: str) -> None:
    low, high, mean = counts.chunk_lines
    text = README.format(
        repository=REPOSITORY,
        commit=commit,
        files=counts.files,
        package_files=counts.package_files,
        test_files=counts.test_files,
        lines=counts.lines,
        generated=", ".join(f"`{g}*`" if g.endswith("unicode") else f"`{g}`" for g in GENERATED),
        chunks=counts.chunks,
        min_lines=low,
        max_lines=high,
        mean_lines=mean,
        max_chunk=MAX_LINES,
        queries=counts.queries,
        with_identifier=counts.with_identifier,
        without_identifier=counts.queries - counts.with_identifier,
        multi_golden=counts.multi_golden,
        golden_chunks=counts.golden_chunks,
        license=license_text,
    )
    (out / "README.md").write_text(text)


def build(git_dir: Path, commit: str, out: Path) -> Counts:
    docs = read_corpus(git_dir, commit)
    queries = read_queries(out / QUERIES, docs)
    write_contextual(out, docs, queries)
    counts = count(docs, queries)
    write_readme(out, counts, git(git_dir, "show", f"{commit}:{LICENSE_FILE}"), commit)
    return counts


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--git-dir", type=Path, required=True, help="a clone of Rich")
    parser.add_argument("--commit", default=COMMIT)
    parser.add_argument("--out", type=Path, default=OUT, help=f"holds {QUERIES}; written to")
    args = parser.parse_args(argv)
    counts = build(args.git_dir, args.commit, args.out)
    low, high, mean = counts.chunk_lines
    print(
        f"wrote {args.out}: {counts.files} files ({counts.package_files} package, "
        f"{counts.test_files} tests), {counts.chunks} chunks ({low}-{high} lines, mean "
        f"{mean:.0f}), {counts.queries} queries ({counts.with_identifier} naming code, "
        f"{counts.multi_golden} with several golden chunks, {counts.golden_chunks} golden chunks)"
    )
    size = sum(f.stat().st_size for f in args.out.iterdir() if f.is_file())
    print(f"{size / 1e6:.2f} MB in {args.out}")


if __name__ == "__main__":
    main()
