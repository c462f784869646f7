"""The identifier-aware BM25 tokeniser, its choice by corpus, and its place in the manifest."""

import json
from pathlib import Path

import pytest
import Stemmer

from conftest import HashEmbedder
from reasonrag.config import Settings
from reasonrag.index import Index, IndexMismatchError
from reasonrag.index.sparse import tokenize
from reasonrag.index.tokenize import choose_tokenizer, identifier_parts, is_code
from reasonrag.ingest.records import Document


@pytest.mark.parametrize(
    ("token", "parts"),
    [
        ("get_user_name", ["get_user_name", "get", "user", "name"]),
        ("HTTPServerError", ["httpservererror", "http", "server", "error"]),
        ("os.path.join", ["os.path.join", "os", "path", "join"]),
        ("camelCase", ["camelcase", "camel", "case"]),
        ("kebab-case", ["kebab-case", "kebab", "case"]),
        ("parseHTML5Doc", ["parsehtml5doc", "parse", "html", "5", "doc"]),
        ("utf8", ["utf8", "utf", "8"]),
        ("__init__", ["__init__", "init"]),
        ("plain", ["plain"]),
        ("URL", ["url"]),
    ],
)
def test_identifier_parts(token: str, parts: list[str]) -> None:
    assert identifier_parts(token) == parts


def test_identifier_tokens_keep_words_like_the_word_tokenizer() -> None:
    stemmer = Stemmer.Stemmer("english")
    text = "The running servers call get_user_name."
    words = tokenize([text], "words", stemmer)[0]
    identifiers = tokenize([text], "identifiers", stemmer)[0]
    assert words == ["run", "server", "call", "get_user_nam"]
    assert identifiers == ["run", "server", "call", "get_user_name", "get", "user", "name"]


def _doc(source: str, text: str = "x", title: str = "") -> Document:
    return Document(id=source, title=title or source, text=text, source=source)


def test_code_is_told_by_extension_or_by_its_lines() -> None:
    assert is_code(_doc("src/app.py"))
    assert is_code(_doc("data.jsonl#3", title="rich/console.py"))
    assert not is_code(_doc("notes.md", "Some prose.\nMore prose."))
    snippet = "def main():\n    run()\n    return 0\n"
    assert is_code(_doc("records.jsonl#1", snippet, title="a record"))


def test_auto_picks_identifiers_for_mostly_code() -> None:
    code = [_doc("a.py"), _doc("b.ts"), _doc("c.md", "prose")]
    assert choose_tokenizer("auto", code) == "identifiers"
    assert choose_tokenizer("auto", code[1:]) == "words"  # one of two is not most
    assert choose_tokenizer("words", code) == "words"
    assert choose_tokenizer("identifiers", []) == "identifiers"


def _with_tokenizer(settings: Settings, tokenizer: str) -> Settings:
    retrieval = settings.retrieval.model_copy(update={"tokenizer": tokenizer})
    return settings.model_copy(update={"retrieval": retrieval})


@pytest.fixture
def code_dir(tmp_path: Path) -> Path:
    """Three source files as JSONL records titled by their paths (how code is indexed)."""
    folder = tmp_path / "code"
    folder.mkdir()
    files = {
        "users.py": "def get_user_name(user_id):\n    return lookup(user_id).display\n",
        "errors.py": "class HTTPServerError(Exception):\n    code = 500\n",
        "paths.py": "import os\nroot = os.path.join(base, 'x')\n",
    }
    records = [{"id": name, "title": name, "text": text} for name, text in files.items()]
    (folder / "code.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder


def test_auto_index_of_code_finds_identifier_parts(
    code_dir: Path, settings: Settings, hash_embedder: HashEmbedder, tmp_path: Path
) -> None:
    out = tmp_path / "idx"
    Index.build([code_dir], settings, out, embedder=hash_embedder, progress=False)
    assert json.loads((out / "manifest.json").read_text())["tokenizer"] == "identifiers"
    sparse = _with_tokenizer(settings, "auto").model_copy(
        update={"retrieval": settings.retrieval.model_copy(update={"fusion": "sparse"})}
    )
    index = Index.open(out, sparse, embedder=hash_embedder)
    assert index.search("server error", k=1)[0].doc_id == "errors.py"
    assert index.search("user name", k=1)[0].doc_id == "users.py"
    assert index.search("path join", k=1)[0].doc_id == "paths.py"


def test_words_index_does_not_split_identifiers(
    code_dir: Path, settings: Settings, hash_embedder: HashEmbedder, tmp_path: Path
) -> None:
    words = _with_tokenizer(settings, "words")
    words = words.model_copy(update={"context": words.context.model_copy(update={"mode": "none"})})
    out = tmp_path / "idx"
    Index.build([code_dir], words, out, embedder=hash_embedder, progress=False)
    sparse = words.model_copy(
        update={"retrieval": words.retrieval.model_copy(update={"fusion": "sparse"})}
    )
    assert Index.open(out, sparse, embedder=hash_embedder).search("server error", k=1) == []


def test_another_explicit_tokenizer_is_a_mismatch_naming_both(
    code_dir: Path, settings: Settings, hash_embedder: HashEmbedder, tmp_path: Path
) -> None:
    out = tmp_path / "idx"
    Index.build([code_dir], settings, out, embedder=hash_embedder, progress=False)
    with pytest.raises(IndexMismatchError, match=r"'identifiers'.*'words'"):
        Index.open(out, _with_tokenizer(settings, "words"), embedder=hash_embedder)
    Index.open(out, _with_tokenizer(settings, "identifiers"), embedder=hash_embedder)


def test_a_manifest_without_tokenizer_reads_as_words(
    corpus_dir: Path, settings: Settings, hash_embedder: HashEmbedder, tmp_path: Path
) -> None:
    out = tmp_path / "idx"
    Index.build([corpus_dir], settings, out, embedder=hash_embedder, progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest.pop("tokenizer") == "words"
    (out / "manifest.json").write_text(json.dumps(manifest))
    index = Index.open(out, _with_tokenizer(settings, "words"), embedder=hash_embedder)
    assert index.manifest is not None and index.manifest.tokenizer == "words"
    assert index.search("smoked eel barges", k=1)[0].doc_id == "harbour.md"
