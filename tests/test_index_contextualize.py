from collections.abc import Sequence

from reasonrag.index.contextualize import (
    LLMContextualizer,
    clean_context,
    document_window,
    indexed_text,
    title_context,
)
from reasonrag.ingest.records import Chunk, Document
from reasonrag.llm.base import Completion, GenParams, Prompt, as_messages


class EchoTitleGenerator:
    """Answers with the document title it finds in the prompt, and records batch sizes."""

    name = "test:echo"

    def __init__(self) -> None:
        self.batches: list[int] = []

    def generate(self, prompts: Sequence[Prompt], params: GenParams) -> list[Completion]:
        self.batches.append(len(prompts))
        out = []
        for prompt in prompts:
            first = as_messages(prompt)[0].content
            title = first.split("title=")[1].split(">")[0].strip("'\"")
            out.append(Completion(text=f"Here is the context: This excerpt is about {title}."))
        return out


def _chunk(doc: Document, start: int, end: int, headings: tuple[str, ...] = ()) -> Chunk:
    return Chunk(
        id=f"{doc.id}#0",
        doc_id=doc.id,
        index=0,
        text=doc.text[start:end],
        title=doc.title,
        start=start,
        end=end,
        headings=headings,
    )


def test_title_context_joins_title_and_headings() -> None:
    doc = Document("a", "Port Quillan", "x" * 10)
    assert title_context(_chunk(doc, 0, 5, ("History", "Fire"))) == "Port Quillan > History > Fire"
    assert indexed_text("", "body") == "body"
    assert indexed_text("ctx", "body") == "ctx\n\nbody"


def test_long_documents_are_windowed_around_the_chunk() -> None:
    text = "".join(f"{i:04d} " for i in range(2000))
    doc = Document("a", "Numbers", text)
    chunk = _chunk(doc, 5000, 5100)
    window = document_window(doc, chunk, window_tokens=100)
    assert chunk.text in window
    assert window.startswith("[...] ") and window.endswith(" [...]")
    assert len(window) <= 400 + 12
    short = Document("b", "Short", "tiny text")
    assert document_window(short, _chunk(short, 0, 4), 100) == "tiny text"


def test_clean_context_strips_preamble_and_extra_paragraphs() -> None:
    assert clean_context("Here is the context: It is about X.\n\nMore.") == "It is about X."
    assert clean_context("  Plain   context\nline two ") == "Plain context line two"


def test_llm_contextualizer_batches_and_reports_progress() -> None:
    docs = {"a": Document("a", "Alpha", "alpha text " * 5), "b": Document("b", "Beta", "beta")}
    chunks = [_chunk(docs["a"], 0, 5)] * 3 + [_chunk(docs["b"], 0, 4)] * 2
    generator = EchoTitleGenerator()
    seen: list[int] = []
    contexts = LLMContextualizer(generator, batch_size=2).contexts(
        chunks, docs, on_progress=seen.append
    )
    assert generator.batches == [2, 2, 1]
    assert seen == [2, 2, 1]
    assert contexts[0] == "This excerpt is about Alpha."
    assert contexts[-1] == "This excerpt is about Beta."
