"""Loading a folder of mixed files: formats, ids, titles, and every kind of skip."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from unittest.mock import ANY

import pytest
from pypdf import PdfWriter

from conftest import HashEmbedder
from reasonrag.ingest import Document, LoadReport, Skipped, load_documents, normalize_text


def minimal_pdf(pages: list[str], title: str) -> bytes:
    """A valid PDF written by hand: one Helvetica text line per page, and an /Info title."""
    n = len(pages)
    page_ids = [4 + 2 * i for i in range(n)]
    objects = {
        1: "<< /Type /Catalog /Pages 2 0 R >>",
        2: f"<< /Type /Pages /Kids [{' '.join(f'{p} 0 R' for p in page_ids)}] /Count {n} >>",
        3: "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    }
    for page_id, text in zip(page_ids, pages, strict=True):
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET"
        objects[page_id] = (
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {page_id + 1} 0 R >>"
        )
        objects[page_id + 1] = f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream"
    info_id = 4 + 2 * n
    objects[info_id] = f"<< /Title ({title}) >>"
    out = bytearray(b"%PDF-1.4\n")
    offsets = {}
    for obj_id in sorted(objects):
        offsets[obj_id] = len(out)
        out += f"{obj_id} 0 obj\n{objects[obj_id]}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {info_id + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{offsets[i]:010d} 00000 n \n" for i in range(1, info_id + 1)).encode()
    out += (
        f"trailer\n<< /Size {info_id + 1} /Root 1 0 R /Info {info_id} 0 R >>\n"
        f"startxref\n{xref}\n%%EOF\n"
    ).encode()
    return bytes(out)


def encrypted_pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(200, 200)
    writer.encrypt(user_password="secret", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


HTML = """<!doctype html>
<html><head><title>  Garden   Guide </title>
<style>body { color: red }</style>
<script>var tracking = "do not index";</script></head>
<body>
<nav><a href="/">Home</a> <a href="/about">About us</a></nav>
<h1>Growing tomatoes</h1>
<p>Tomatoes need   <b>full</b> sun &amp; steady water.</p>
<h2>Pests</h2>
<ul><li>Aphids</li><li>Hornworms</li></ul>
<pre>
  water(daily)
</pre>
</body></html>
"""

JSONL_LINES = [
    json.dumps({"id": "q1", "title": "Quillan", "text": "Port Quillan trades eel.", "url": "u1"}),
    '{"id": "q2", "text": "broken',
    json.dumps({"id": "q3", "title": "No text"}),
    "",
    json.dumps({"id": "q1", "text": "A second record reusing id q1."}),
    json.dumps({"id": 7, "text": "Integer ids become strings."}),
    json.dumps(["not", "an", "object"]),
]


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    (root / "guides").mkdir(parents=True)
    (root / ".hidden").mkdir()
    (root / ".hidden" / "secret.txt").write_text("never loaded")
    (root / ".notes.txt").write_text("never loaded either")
    (root / "readme.txt").write_text(
        "Plain notes.\r\nSecond line.   \r\n\r\n\r\n\r\nLast paragraph.\n"
    )
    (root / "guides" / "setup.md").write_text(
        "Intro before any heading.\n\n# Setting up\n\nInstall the tool.\n\n## Details\n\nMore."
    )
    (root / "guides" / "untitled.markdown").write_text("## Only a subsection\n\nBody text.")
    (root / "garden.html").write_text(HTML)
    (root / "records.jsonl").write_text("\n".join(JSONL_LINES) + "\n")
    (root / "report.pdf").write_bytes(minimal_pdf(["First page text", "Second page text"], "Q3"))
    (root / "locked.pdf").write_bytes(encrypted_pdf())
    (root / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf")
    (root / "empty.md").write_text(" \n\n \t\n")
    (root / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (root / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    (root / "bom.txt").write_bytes("\ufeffText after a byte order mark.".encode())
    (root / "data.csv").write_text("a,b\n1,2\n")
    return root


@pytest.fixture
def loaded(mixed: Path) -> tuple[LoadReport, list[tuple[Path, str]]]:
    calls: list[tuple[Path, str]] = []
    report = load_documents([mixed], on_skip=lambda path, reason: calls.append((path, reason)))
    return report, calls


def by_id(report: LoadReport) -> dict[str, Document]:
    return {doc.id: doc for doc in report.documents}


def skip_reason(report: LoadReport, path: Path | str) -> str:
    matches = [s.reason for s in report.skipped if s.path == str(path)]
    assert len(matches) == 1, f"expected one skip for {path}, got {report.skipped}"
    return matches[0]


def test_loads_supported_documents_with_stable_ids_in_sorted_order(loaded, mixed: Path):
    report, _ = loaded
    assert [d.id for d in report.documents] == [
        "bom.txt",
        "garden.html",
        "readme.txt",
        "q1",
        "7",
        "report.pdf",
        "guides/setup.md",
        "guides/untitled.markdown",
    ]
    docs = by_id(report)
    assert docs["guides/setup.md"].source == str(mixed / "guides" / "setup.md")
    assert {d.metadata["format"] for d in report.documents} == {
        "text",
        "html",
        "jsonl",
        "pdf",
        "markdown",
    }


def test_text_is_normalised(loaded):
    docs = by_id(loaded[0])
    assert docs["readme.txt"].text == "Plain notes.\nSecond line.\n\nLast paragraph."
    assert docs["readme.txt"].title == "readme"
    assert docs["bom.txt"].text == "Text after a byte order mark."
    assert normalize_text("a \r\rb\t\n\n\n\n\nc\n") == "a\n\nb\n\nc"


def test_markdown_title_is_first_h1_else_stem(loaded):
    docs = by_id(loaded[0])
    assert docs["guides/setup.md"].title == "Setting up"
    assert docs["guides/setup.md"].text.startswith("Intro before any heading.\n\n# Setting up")
    assert docs["guides/untitled.markdown"].title == "untitled"


def test_html_keeps_visible_text_and_headings(loaded):
    doc = by_id(loaded[0])["garden.html"]
    assert doc.title == "Garden Guide"
    assert doc.text == (
        "# Growing tomatoes\n\n"
        "Tomatoes need full sun & steady water.\n\n"
        "## Pests\n\n"
        "Aphids\nHornworms\n\n"
        "  water(daily)"  # <pre> keeps its indentation
    )


def test_html_title_falls_back_to_first_h1(tmp_path: Path):
    page = tmp_path / "page.htm"
    page.write_text("<h2>Sub</h2><h1>Main <i>title</i></h1><p>Body</p>")
    (doc,) = load_documents([page]).documents
    assert (doc.id, doc.title) == ("page.htm", "Main title")
    assert doc.text == "## Sub\n\n# Main title\n\nBody"


def test_jsonl_records(loaded, mixed: Path):
    docs = by_id(loaded[0])
    assert docs["q1"].title == "Quillan"
    assert docs["q1"].text == "Port Quillan trades eel."
    assert docs["q1"].source == f"{mixed / 'records.jsonl'}:1"
    assert docs["q1"].metadata == {"url": "u1", "format": "jsonl"}
    assert docs["7"].title == ""
    assert docs["7"].source.endswith("records.jsonl:6")


def test_jsonl_bad_lines_are_skipped_with_file_line_and_field(loaded, mixed: Path):
    report, _ = loaded
    where = mixed / "records.jsonl"
    assert "malformed JSON" in skip_reason(report, f"{where}:2")
    assert "'text'" in skip_reason(report, f"{where}:3")
    assert "duplicate id 'q1'" in skip_reason(report, f"{where}:5")
    assert f"{where}:1" in skip_reason(report, f"{where}:5")
    assert "JSON object" in skip_reason(report, f"{where}:7")


def test_pdf_pages_are_joined_and_titled(loaded):
    doc = by_id(loaded[0])["report.pdf"]
    assert doc.title == "Q3"
    assert doc.text == "First page text\n\nSecond page text"


def test_unloadable_files_are_skipped_with_reasons(loaded, mixed: Path):
    report, calls = loaded
    assert "encrypted" in skip_reason(report, mixed / "locked.pdf")
    assert "unreadable PDF" in skip_reason(report, mixed / "broken.pdf")
    assert "empty" in skip_reason(report, mixed / "empty.md")
    assert "binary" in skip_reason(report, mixed / "image.txt")
    assert "UTF-8" in skip_reason(report, mixed / "latin1.txt")
    assert skip_reason(report, mixed / "data.csv") == "unsupported extension '.csv'"
    assert len(report.skipped) == 10
    assert calls == [(Path(s.path), s.reason) for s in report.skipped]
    assert not any("hidden" in s.path or ".notes" in s.path for s in report.skipped)


def test_files_passed_directly_use_their_name_and_missing_paths_are_skipped(tmp_path: Path):
    one, two = tmp_path / "a" / "notes.md", tmp_path / "b" / "notes.md"
    for path in (one, two):
        path.parent.mkdir()
        path.write_text(f"Text of {path.parent.name}.")
    missing = tmp_path / "nope.txt"
    report = load_documents([one, missing, two])
    assert [(d.id, d.text) for d in report.documents] == [("notes.md", "Text of a.")]
    assert report.skipped == (
        Skipped(str(missing), "no such file or directory"),
        Skipped(str(two), f"duplicate id 'notes.md' (first in {one})"),
    )


def test_loading_is_deterministic(mixed: Path):
    assert load_documents([mixed]) == load_documents([mixed])


def test_records_that_are_not_valid_unicode_are_skipped_naming_file_line_and_field(
    tmp_path: Path,
):
    path = tmp_path / "surrogates.jsonl"
    path.write_text(
        "\n".join(
            [
                r'{"id": "s1", "text": "bad \ud800 text"}',
                r'{"id": "\udfff", "text": "x"}',
                r'{"id": "s3", "text": "ok", "title": "\udc80"}',
                r'{"id": "s4", "text": "ok", "url": "\ud800"}',
                r'{"id": "s5", "text": "ok", "\ud800": "key"}',
                r'{"id": "s6", "text": "a pair \ud83d\ude00 is fine"}',
            ]
        )
    )
    report = load_documents([path])
    assert [(d.id, d.text) for d in report.documents] == [("s6", "a pair \U0001f600 is fine")]
    assert [(s.path, s.reason) for s in report.skipped] == [
        (f"{path}:1", "field 'text' is not valid Unicode (lone surrogate U+D800 at character 4)"),
        (f"{path}:2", "field 'id' is not valid Unicode (lone surrogate U+DFFF at character 0)"),
        (f"{path}:3", "field 'title' is not valid Unicode (lone surrogate U+DC80 at character 0)"),
        (f"{path}:4", "field 'url' is not valid Unicode (lone surrogate U+D800 at character 0)"),
        (
            f"{path}:5",
            r"field '\ud800' is not valid Unicode (lone surrogate U+D800 at character 0)",
        ),
    ]


def test_file_names_that_are_not_utf8_are_skipped(tmp_path: Path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "good.txt").write_text("Fine.")
    bad = Path(os.fsdecode(bytes(folder) + b"/caf\xe9.txt"))  # a Latin-1 file name
    bad.write_text("Unreachable by UTF-8 tools.")
    report = load_documents([folder])
    assert [d.id for d in report.documents] == ["good.txt"]
    assert [s.path for s in report.skipped] == [str(bad)]
    assert "file name is not valid UTF-8" in report.skipped[0].reason


def test_html_character_references_never_yield_invalid_text(tmp_path: Path):
    page = tmp_path / "entity.html"
    page.write_text("<title>&#xD800;T</title><p>bad &#xD800; &#55296; and &#0; &#x110000;</p>")
    (doc,) = load_documents([page]).documents
    assert (doc.title, doc.text) == ("\ufffdT", "bad \ufffd \ufffd and \ufffd \ufffd")


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("[" * 100_000, "nested too deeply"),
        ('{"a": ' * 100_000, "nested too deeply"),
        ('{"id": "d", "text": ' + "[" * 50_000, "nested too deeply"),
        ('{"id": ' + "1" * 5000 + ', "text": "x"}', "a number longer than 4300 digits"),
    ],
)
def test_a_jsonl_line_json_cannot_read_is_one_malformed_line(
    tmp_path: Path, line: str, problem: str
):
    path = tmp_path / "deep.jsonl"
    path.write_text(json.dumps({"id": "ok", "text": "Still loaded."}) + "\n" + line + "\n")
    report = load_documents([path])
    assert [d.id for d in report.documents] == ["ok"]
    assert report.skipped == (Skipped(f"{path}:2", f"malformed JSON: {problem} at column 1"),)


def test_on_progress_is_told_one_per_file_read(mixed: Path):
    files: list[int] = []
    load_documents([mixed, mixed / "missing.txt"], on_progress=files.append)
    assert files == [1] * 13  # every visible file, loaded or skipped; not the missing path


def test_a_document_the_tokenizer_cannot_encode_never_reaches_the_index(
    tmp_path: Path, corpus_dir: Path, settings
):
    from reasonrag.index import Index

    class StrictEmbedder(HashEmbedder):
        """Counts tokens the way real tokenizers see text: as UTF-8."""

        def count_tokens(self, text: str) -> int:
            return len(text.encode("utf-8").split())

    (corpus_dir / "records.jsonl").write_text(
        r'{"id": "bad", "text": "bad \ud800 text"}' + "\n" + r'{"id": "good", "text": "Fine."}'
    )
    skips: list[tuple[Path, str]] = []
    index = Index.build(
        [corpus_dir],
        settings,
        tmp_path / "idx",
        embedder=StrictEmbedder(),
        progress=False,
        on_skip=lambda path, reason: skips.append((path, reason)),
    )
    assert {c.doc_id for c in index.chunks} == {"harbour.md", "mill.md", "notes.txt", "good"}
    assert skips == [(Path(f"{corpus_dir / 'records.jsonl'}:1"), ANY)]
    assert "not valid Unicode" in skips[0][1]
