"""Second-stage rerankers: an LLM judging relevance by its own logprobs, or a cross-encoder."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from reasonrag.errors import NotFoundError
from reasonrag.index.records import Hit
from reasonrag.llm.base import Completion, Generator, GenParams, Message

RERANK_SNIPPET_CHARS = 1500


class Reranker(Protocol):
    def rerank(self, query: str, hits: Sequence[Hit]) -> list[Hit]:
        """The same hits, reordered, each with a ``rerank`` stage score."""
        ...


def _reorder(hits: Sequence[Hit], scores: Sequence[float]) -> list[Hit]:
    order = sorted(range(len(hits)), key=lambda i: -scores[i])
    return [
        replace(
            hits[i],
            score=scores[i],
            rank=rank,
            stage_scores={**hits[i].stage_scores, "rerank": scores[i]},
        )
        for rank, i in enumerate(order)
    ]


def relevance_prompt(query: str, hit: Hit) -> list[Message]:
    passage = f"{hit.context}\n{hit.text}".strip()[:RERANK_SNIPPET_CHARS]
    return [
        Message(
            "system",
            "You judge whether a passage helps answer a search query. "
            "Reply with one word: yes or no.",
        ),
        Message(
            "user",
            f"Query: {query}\n\nPassage:\n<passage>\n{passage}\n</passage>\n\n"
            "Does the passage contain information that helps answer the query? yes or no?",
        ),
    ]


def yes_probability(completion: Completion) -> float:
    """P(yes) / (P(yes) + P(no)) over the first generated token's alternatives.

    Normalising by yes+no ignores mass the model puts on other tokens (punctuation, "The"),
    which would otherwise make scores depend on phrasing rather than relevance."""
    if not completion.logprobs:
        word = completion.text.strip().lower()
        return 1.0 if word.startswith("yes") else 0.0
    first = completion.logprobs[0]
    mass = {"yes": 0.0, "no": 0.0}
    for token, logprob in first.top or ((first.token, first.logprob),):
        word = token.strip().lower()
        if word in mass:
            mass[word] += math.exp(logprob)
    total = mass["yes"] + mass["no"]
    return mass["yes"] / total if total > 0 else 0.0


class LLMReranker:
    """Pointwise relevance from any generator that returns logprobs (all hits in one batch)."""

    def __init__(self, generator: Generator, *, top_logprobs: int = 20):
        self._generator = generator
        self._params = GenParams(max_tokens=1, temperature=0.0, logprobs=top_logprobs)

    def rerank(self, query: str, hits: Sequence[Hit]) -> list[Hit]:
        if not hits:
            return []
        prompts = [relevance_prompt(query, hit) for hit in hits]
        completions = self._generator.generate(prompts, self._params)
        return _reorder(hits, [yes_probability(c) for c in completions])


def cross_encoder_passage(context: str, text: str) -> str:
    """What a cross-encoder reads of a chunk, in training and in reranking alike."""
    return f"{context}\n{text}".strip()


class CrossEncoderReranker:
    """A sentence-transformers CrossEncoder from a local folder."""

    def __init__(self, model: str | Path, *, device: str = "cpu"):
        from sentence_transformers import CrossEncoder

        path = Path(model).expanduser()
        if not path.is_dir():
            raise NotFoundError(f"cross-encoder folder not found: {path}")
        self._model: Any = CrossEncoder(str(path), device=device, local_files_only=True)

    def rerank(self, query: str, hits: Sequence[Hit]) -> list[Hit]:
        if not hits:
            return []
        pairs = [(query, cross_encoder_passage(h.context, h.text)) for h in hits]
        scores = self._model.predict(pairs, show_progress_bar=False)
        return _reorder(hits, [float(s) for s in scores])
