"""An LLM judge for answer correctness (the ACC_L metric of ReaRAG-style evaluations).

String metrics miss correct answers phrased differently from the gold ("JFK" vs "John F.
Kennedy"); the judge asks a model whether the prediction means the same as a gold answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from reasonrag.llm.base import GenerationError, Generator, GenParams, Message

_SYSTEM = (
    "You grade answers to questions. A prediction is correct when it gives the same answer as "
    "one of the gold answers, even if worded differently, abbreviated, or more specific. It is "
    "incorrect when it gives a different answer, hedges between several answers, or gives none."
)

_POSITIVE = frozenset({"yes", "correct", "true"})
_NEGATIVE = frozenset({"no", "incorrect", "wrong", "false"})
_NEGATORS = frozenset({"not", "isn't", "isnt", "never"})
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


def judge_prompt(question: str, golds: Sequence[str], prediction: str) -> list[Message]:
    gold_lines = "\n".join(f"- {g}" for g in golds)
    user = (
        f"Question: {question}\n"
        f"Gold answers:\n{gold_lines}\n"
        f"Prediction: {prediction}\n\n"
        "Is the prediction correct? Reply with one word: Yes or No."
    )
    return [Message("system", _SYSTEM), Message("user", user)]


def parse_verdict(text: str) -> bool | None:
    """Read a judge's reply: ``True`` correct, ``False`` incorrect, ``None`` unreadable.

    A reply that starts with a verdict word is decided by it; otherwise every verdict word
    (flipped when "not" precedes it within two words) must agree.
    """
    words = _WORD.findall(text.lower().replace("\u2019", "'"))
    verdicts = []
    for i, word in enumerate(words):
        if word in _POSITIVE or word in _NEGATIVE:
            negated = any(w in _NEGATORS for w in words[max(0, i - 2) : i])
            verdicts.append((word in _POSITIVE) != negated)
    if not verdicts:
        return None
    if words[0] in _POSITIVE or words[0] in _NEGATIVE or len(set(verdicts)) == 1:
        return verdicts[0]
    return None


@dataclass(frozen=True)
class JudgeItem:
    question: str
    golds: tuple[str, ...]
    prediction: str


class LLMJudge:
    """Judges many predictions with one batched ``generate`` call."""

    def __init__(self, generator: Generator, params: GenParams | None = None) -> None:
        self.generator = generator
        self.params = params or GenParams(max_tokens=16, temperature=0.0)

    def judge_many(self, items: Sequence[JudgeItem]) -> list[bool | None]:
        """One verdict per item; an empty prediction is incorrect without asking the model."""
        verdicts: list[bool | None] = [False] * len(items)
        asked = [i for i, item in enumerate(items) if item.prediction.strip()]
        if not asked:
            return verdicts
        prompts = [
            judge_prompt(items[i].question, items[i].golds, items[i].prediction) for i in asked
        ]
        completions = self.generator.generate(prompts, self.params)
        if len(completions) != len(prompts):
            raise GenerationError(
                f"{self.generator.name}: {len(completions)} completions for {len(prompts)} prompts"
            )
        for i, completion in zip(asked, completions, strict=True):
            verdicts[i] = parse_verdict(completion.text)
        return verdicts
