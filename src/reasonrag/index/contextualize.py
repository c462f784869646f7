"""Situating contexts for chunks (Contextual Retrieval): prepended before embedding and BM25."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from reasonrag.ingest.records import Chunk, Document
from reasonrag.llm.base import Generator, GenParams, Message

CHARS_PER_TOKEN = 4
"""Rough English average; only used to size the document window, so precision is moot."""


def title_context(chunk: Chunk) -> str:
    """The free context: document title and the heading path above the chunk."""
    parts = [chunk.title, *chunk.headings]
    return " > ".join(p for p in parts if p)


def document_window(doc: Document, chunk: Chunk, window_tokens: int) -> str:
    """The whole document when it fits, else a window centred on the chunk.

    Small generators have short contexts, and the text nearest a chunk is what usually
    says what the chunk is about."""
    limit = window_tokens * CHARS_PER_TOKEN
    if len(doc.text) <= limit:
        return doc.text
    centre = (chunk.start + chunk.end) // 2
    start = max(0, min(centre - limit // 2, len(doc.text) - limit))
    head = "" if start == 0 else "[...] "
    tail = "" if start + limit >= len(doc.text) else " [...]"
    return f"{head}{doc.text[start : start + limit]}{tail}"


def context_prompt(doc: Document, chunk: Chunk, window_tokens: int) -> list[Message]:
    # The document comes first and is marked cacheable, so backends with prompt caching
    # pay for it once per document rather than once per chunk.
    return [
        Message(
            "user",
            f"<document title={doc.title!r}>\n{document_window(doc, chunk, window_tokens)}\n"
            "</document>",
            cache=True,
        ),
        Message(
            "user",
            f"<excerpt>\n{chunk.text}\n</excerpt>\n\n"
            "Write one or two sentences that place this excerpt within the document above: "
            "name who or what it is about and the topic of the surrounding section, so the "
            "excerpt can be found by a search. Reply with those sentences only.",
        ),
    ]


_PREAMBLE = re.compile(
    r"^(?:sure[,!.]?\s*)?(?:here is|here's)?[^:\n]{0,40}context[^:\n]{0,20}:\s*", re.I
)


def clean_context(text: str) -> str:
    """Drop chatty preambles and keep a single paragraph."""
    text = _PREAMBLE.sub("", text.strip())
    return " ".join(text.split("\n\n")[0].split())


class LLMContextualizer:
    """Writes a context for each chunk with a generator, in batches.

    Every batch goes through the generator (wrapped in the response cache by the factory),
    so a killed run resumes from its last finished batch."""

    def __init__(
        self,
        generator: Generator,
        *,
        max_tokens: int = 96,
        window_tokens: int = 1200,
        batch_size: int = 16,
    ):
        self._generator = generator
        self._params = GenParams(max_tokens=max_tokens, temperature=0.0)
        self._window_tokens = window_tokens
        self._batch_size = batch_size
        self.reused = 0
        """Contexts that came from the response cache rather than the model."""

    def contexts(
        self,
        chunks: Sequence[Chunk],
        documents: dict[str, Document],
        *,
        on_progress: Callable[[int], None] | None = None,
    ) -> list[str]:
        out: list[str] = []
        for start in range(0, len(chunks), self._batch_size):
            batch = chunks[start : start + self._batch_size]
            prompts = [context_prompt(documents[c.doc_id], c, self._window_tokens) for c in batch]
            completions = self._generator.generate(prompts, self._params)
            out.extend(clean_context(c.text) for c in completions)
            self.reused += sum(c.cached for c in completions)
            if on_progress:
                on_progress(len(batch))
        return out


def indexed_text(context: str, chunk_text: str) -> str:
    """What embeddings and BM25 see: the context, a blank line, then the chunk."""
    return f"{context}\n\n{chunk_text}" if context else chunk_text
