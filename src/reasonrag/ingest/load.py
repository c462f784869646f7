"""Load documents from files and folders: plain text, Markdown, HTML, JSONL and PDF.

Nothing here raises on bad input: a file (or JSONL line) that cannot become a document is
reported as :class:`Skipped` with the reason, and loading goes on with the rest.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from pypdf import PdfReader

from reasonrag.ingest.chunk import Progress, headings
from reasonrag.ingest.records import Document
from reasonrag.ingest.untrusted import parse_json, unicode_problem

SkipHandler = Callable[[Path, str], None]


@dataclass(frozen=True)
class Skipped:
    path: str
    """The file, or ``file:line`` for a JSONL record."""
    reason: str


@dataclass(frozen=True)
class LoadReport:
    documents: tuple[Document, ...]
    skipped: tuple[Skipped, ...]


class _Unloadable(Exception):
    """Raised by readers; the message is the skip reason."""


_BLANK_RUN = re.compile(r"\n{3,}")


def normalize_text(text: str) -> str:
    """Unify newlines, strip trailing spaces, keep at most one blank line in a row, trim."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return _BLANK_RUN.sub("\n\n", "\n".join(line.rstrip() for line in lines)).strip()


def load_documents(
    paths: Sequence[Path],
    *,
    on_skip: SkipHandler | None = None,
    on_progress: Progress | None = None,
) -> LoadReport:
    """Load every supported file in ``paths`` (files, or folders walked recursively).

    Folders are walked in sorted order, skipping hidden entries. A file document's id is
    its path relative to the folder argument it was found under (posix style), or its name
    when the file was passed directly; JSONL records keep their own ``id``. A repeated id
    is skipped, and so is a document holding text that is not valid Unicode. ``on_skip(path,
    reason)`` is called for each skip as it happens, ``on_progress(1)`` after each file."""
    documents: list[Document] = []
    skipped: list[Skipped] = []
    first_source: dict[str, str] = {}

    def skip(where: str, reason: str) -> None:
        skipped.append(Skipped(where, reason))
        if on_skip is not None:
            on_skip(Path(where), reason)

    for path, doc_id in _discover(paths, skip):
        for item in map(_checked, _read(path, doc_id)):
            if isinstance(item, Skipped):
                skip(item.path, item.reason)
            elif item.id in first_source:
                skip(item.source, f"duplicate id {item.id!r} (first in {first_source[item.id]})")
            else:
                first_source[item.id] = item.source
                documents.append(item)
        if on_progress is not None:
            on_progress(1)
    return LoadReport(tuple(documents), tuple(skipped))


def _discover(
    paths: Sequence[Path], skip: Callable[[str, str], None]
) -> Iterator[tuple[Path, str]]:
    """Files to read with their document ids."""
    for root in map(Path, paths):
        if not root.exists():
            skip(str(root), "no such file or directory")
            continue
        found: Iterable[tuple[Path, str]] = (
            ((file, file.relative_to(root).as_posix()) for file in _walk(root))
            if root.is_dir()
            else [(root, root.name)]
        )
        for file, doc_id in found:
            if unicode_problem(str(file)) is None:
                yield file, doc_id
            else:  # its id, title and source could not be stored or tokenized
                skip(str(file), "file name is not valid UTF-8; rename the file")


def _walk(root: Path) -> Iterator[Path]:
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(folder, name)


def _read(path: Path, doc_id: str) -> Iterator[Document | Skipped]:
    suffix = path.suffix.lower()
    try:
        if not path.is_file():
            raise _Unloadable("not a regular file")
        if suffix == ".jsonl":
            yield from _read_jsonl(path)
            return
        if suffix not in _FORMATS:
            raise _Unloadable("unsupported extension " + (repr(suffix) if suffix else "(none)"))
        fmt, parse = _FORMATS[suffix]
        title, text = parse(path)
    except _Unloadable as exc:
        yield Skipped(str(path), str(exc))
        return
    text = normalize_text(text)
    if not text:
        yield Skipped(str(path), "empty document")
        return
    yield Document(
        id=doc_id,
        title=(title or "").strip() or path.stem,
        text=text,
        source=str(path),
        metadata={"format": fmt},
    )


def _decode(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _Unloadable(f"unreadable: {exc.strerror or exc}") from exc
    if b"\x00" in data:
        raise _Unloadable("binary file (NUL bytes; UTF-16 text must be re-encoded as UTF-8)")
    try:
        return data.decode("utf-8-sig")  # plain UTF-8 too; only drops a leading BOM
    except UnicodeDecodeError as exc:
        raise _Unloadable(
            f"not UTF-8 text (invalid byte at offset {exc.start}); re-encode it as UTF-8"
        ) from exc


def _parse_text(path: Path) -> tuple[str | None, str]:
    return None, _decode(path)


def _parse_markdown(path: Path) -> tuple[str | None, str]:
    text = _decode(path)
    return next((title for level, title in headings(text) if level == 1), None), text


def _parse_html(path: Path) -> tuple[str | None, str]:
    parser = _HtmlText()
    parser.feed(_decode(path))
    parser.close()
    return parser.title or parser.first_h1, "".join(parser.parts)


def _parse_pdf(path: Path) -> tuple[str | None, str]:
    try:
        reader = PdfReader(path)
        locked = reader.is_encrypted and not reader.decrypt("")
        pages = [] if locked else [page.extract_text() or "" for page in reader.pages]
        title = None if locked or reader.metadata is None else reader.metadata.title
    except Exception as exc:  # pypdf reports damaged files through many exception types
        raise _Unloadable(f"unreadable PDF ({type(exc).__name__}: {exc})") from exc
    if locked:
        raise _Unloadable("encrypted PDF (needs a password)")
    return title, "\n\n".join(pages)


def _checked(item: Document | Skipped) -> Document | Skipped:
    """``item``, or a skip if one of its strings is not valid Unicode: one such record
    must not abort a whole build later on, in the tokenizer."""
    if isinstance(item, Skipped):
        return item
    fields = [("id", item.id), ("title", item.title), ("text", item.text)]
    fields += [(key, value) for key, value in item.metadata.items()]
    for name, value in fields:
        problem = unicode_problem(name) or unicode_problem(value)
        if problem is not None:
            return Skipped(item.source, f"field {name!r} is not valid Unicode ({problem})")
    return item


_FORMATS: dict[str, tuple[str, Callable[[Path], tuple[str | None, str]]]] = {
    ".txt": ("text", _parse_text),
    ".md": ("markdown", _parse_markdown),
    ".markdown": ("markdown", _parse_markdown),
    ".html": ("html", _parse_html),
    ".htm": ("html", _parse_html),
    ".pdf": ("pdf", _parse_pdf),
}


def _read_jsonl(path: Path) -> Iterator[Document | Skipped]:
    # Split on \n only: JSON strings may legally hold U+2028 and other line separators.
    for lineno, line in enumerate(_decode(path).split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            yield _jsonl_document(line, where)
        except _Unloadable as exc:
            yield Skipped(where, str(exc))


def _jsonl_document(line: str, where: str) -> Document:
    """One ``{"id", "text", "title"?}`` record; other string fields go to metadata."""
    try:
        record = parse_json(line)
    except json.JSONDecodeError as exc:
        raise _Unloadable(f"malformed JSON: {exc.msg} at column {exc.colno}") from exc
    if not isinstance(record, dict):
        raise _Unloadable("expected a JSON object")
    doc_id = record.get("id")
    if isinstance(doc_id, bool) or not isinstance(doc_id, str | int) or doc_id == "":
        raise _Unloadable("missing field 'id' (a non-empty string or integer)")
    text, title = record.get("text"), record.get("title")
    title = "" if title is None else title
    if not isinstance(text, str):
        raise _Unloadable("missing field 'text' (a string)")
    if not isinstance(title, str):
        raise _Unloadable("field 'title' must be a string")
    text = normalize_text(text)
    if not text:
        raise _Unloadable("empty field 'text'")
    extra = {
        key: value
        for key, value in record.items()
        if key not in ("id", "text", "title") and isinstance(value, str)
    }
    return Document(
        id=str(doc_id),
        title=title.strip(),
        text=text,
        source=where,
        metadata={**extra, "format": "jsonl"},
    )


_DROPPED = frozenset({"script", "style", "nav", "noscript", "template"})
_HEADING_LEVELS = {f"h{level}": level for level in range(1, 7)}
_LINE_TAGS = frozenset({"br", "li", "tr", "dt", "dd"})
_BLOCK_TAGS = frozenset(
    {
        *("p", "div", "section", "article", "main", "header", "footer", "aside", "address"),
        *("blockquote", "pre", "ul", "ol", "dl", "table", "figure", "figcaption", "form"),
        *("details", "summary", "hr"),
    }
)
_CLOSES_CAPTURE = frozenset({"title", *_HEADING_LEVELS, *_LINE_TAGS, *_BLOCK_TAGS})
_SPACES = re.compile(r"\s+")


class _HtmlText(HTMLParser):
    """Visible text of a page; headings become ``#`` lines so the chunker sees sections."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title: str | None = None
        self.first_h1: str | None = None
        self._dropping = 0
        self._pre = 0
        self._capture: list[str] | None = None  # text of the open <title> or heading
        self._heading = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROPPED:
            self._dropping += 1
        if self._dropping:
            return
        if self._capture is not None and tag in _CLOSES_CAPTURE:
            self._close_capture()  # an unclosed <title> or heading must not swallow the page
        if tag == "title" or tag in _HEADING_LEVELS:
            self._capture, self._heading = [], _HEADING_LEVELS.get(tag, 0)
        elif tag == "pre":
            self._pre += 1
        if tag in _LINE_TAGS or tag in _BLOCK_TAGS:
            self.parts.append("\n" if tag in _LINE_TAGS else "\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROPPED:
            self._dropping = max(0, self._dropping - 1)
            return
        if self._dropping:
            return
        if self._capture is not None and (tag == "title" or tag in _HEADING_LEVELS):
            self._close_capture()
        elif tag == "pre":
            self._pre = max(0, self._pre - 1)
        if tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self._dropping:
            return
        if self._capture is not None:
            self._capture.append(data)
        elif self._pre:
            self.parts.append(data)
        else:
            text = _SPACES.sub(" ", data)
            if not self.parts or self.parts[-1].endswith("\n"):
                text = text.lstrip()
            if text:
                self.parts.append(text)

    def close(self) -> None:
        super().close()
        if self._capture is not None:
            self._close_capture()

    def _close_capture(self) -> None:
        text = _SPACES.sub(" ", "".join(self._capture or [])).strip()
        if not self._heading:
            self.title = self.title or text or None
        elif text:
            self.parts.append(f"\n\n{'#' * self._heading} {text}\n\n")
            if self._heading == 1 and self.first_h1 is None:
                self.first_h1 = text
        self._capture, self._heading = None, 0
