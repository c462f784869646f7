"""The single-fact questions inside a multi-hop example's gold decomposition, read the same
way by the training oracle and by CLaRa's pretraining data."""

from __future__ import annotations

import re

from reasonrag.datasets.loaders import QAExample

_PLACEHOLDER = re.compile(r"#(\d+)")


def hop_questions(example: QAExample) -> list[str]:
    """Each hop's question, in order, with MuSiQue's references to earlier answers ("Who
    founded #1?") filled in."""
    answers: list[str] = []
    questions = []
    for hop in example.decomposition:
        questions.append(
            _PLACEHOLDER.sub(
                lambda m: answers[int(m.group(1)) - 1] if int(m.group(1)) <= len(answers) else "",
                hop.question,
            )
        )
        answers.append(hop.answer)
    return questions


def evidence_parts(question: str) -> tuple[str, str] | None:
    """(subject, relation) of a hop written as ``subject >> relation`` (2Wiki's evidence
    triples, some MuSiQue hops); None for a plain question."""
    if ">>" not in question:
        return None
    subject, relation = (part.strip() for part in question.split(">>", 1))
    return subject, relation
