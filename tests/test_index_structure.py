"""Structural contexts: enclosing definitions for code, heading paths for Markdown."""

from pathlib import Path

from conftest import HashEmbedder
from reasonrag.config import Settings
from reasonrag.index import Index
from reasonrag.index.structure import structure_context
from reasonrag.ingest.records import Chunk, Document

PYTHON = '''"""Console output for the terminal.

More detail here."""

import sys


class Console:
    """Writes styled text."""

    @property
    def width(self) -> int:
        return 80

    def print(self, *objects):
        text = " ".join(map(str, objects))
        sys.stdout.write(text)


def main():
    Console().print("hi")
'''

GO = """package server

type Server struct {
    port int
}

func (s *Server) Serve() error {
    listener := listen(s.port)
    return listener.Accept()
}
"""


def _chunk_at(doc: Document, snippet: str) -> Chunk:
    start = doc.text.index(snippet)
    end = start + len(snippet)
    return Chunk(f"{doc.id}#0", doc.id, 0, snippet, doc.title, start, end, source=doc.source)


def _doc(title: str, text: str, source: str = "set.jsonl#1") -> Document:
    return Document(id=title, title=title, text=text, source=source)


def test_python_chunks_name_their_enclosing_class_and_function() -> None:
    doc = _doc("rich/console.py", PYTHON)
    inside = _chunk_at(doc, "        sys.stdout.write(text)")
    assert structure_context(inside, doc) == (
        "rich/console.py > class Console > def print\nConsole output for the terminal."
    )
    decorated = _chunk_at(doc, "    @property")
    assert structure_context(decorated, doc).split("\n")[0].endswith("class Console > def width")
    top = _chunk_at(doc, "import sys")
    assert structure_context(top, doc).split("\n")[0] == "rich/console.py"
    last = _chunk_at(doc, '    Console().print("hi")')
    assert structure_context(last, doc).split("\n")[0] == "rich/console.py > def main"


def test_other_code_finds_definitions_on_preceding_lines() -> None:
    doc = _doc("server.go", GO)
    body = _chunk_at(doc, "    return listener.Accept()")
    assert structure_context(body, doc) == "server.go > func Serve"  # past the receiver
    top = _chunk_at(doc, "package server")
    assert structure_context(top, doc) == "server.go"


def test_python_that_does_not_parse_falls_back_to_indentation() -> None:
    doc = _doc("broken.py", "class A:\n    def f(self):\n        return (\n")
    chunk = _chunk_at(doc, "        return (")
    assert structure_context(chunk, doc) == "broken.py > class A > def f"


def test_markdown_gets_its_heading_path(
    tmp_path: Path, settings: Settings, hash_embedder: HashEmbedder
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    intro = "Intro text that says what the guide covers."
    (docs / "guide.md").write_text(
        f"# Guide\n\n{intro}\n\n## Install\n\nRun pip install reasonrag in a fresh venv.\n"
    )
    structure = settings.model_copy(
        update={
            "context": settings.context.model_copy(update={"mode": "structure"}),
            "chunk": settings.chunk.model_copy(update={"max_tokens": 16, "overlap_tokens": 0}),
        }
    )
    index = Index.build([docs], structure, tmp_path / "idx", embedder=hash_embedder, progress=False)
    assert index.manifest is not None and index.manifest.context_mode == "structure"
    contexts = set(index.contexts)
    assert any(c.endswith("Guide > Install") for c in contexts), contexts
