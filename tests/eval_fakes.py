"""Test doubles for evaluation runs: a tiny HotpotQA-format file, a generator that dies after
some calls (a simulated kill), and hand-made prediction records."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reasonrag.datasets.corpus import doc_id
from reasonrag.eval.runner import RUN_FILE, Prediction, PredictionLog
from reasonrag.llm.base import Completion, Generator, GenParams, Prompt


@dataclass(frozen=True)
class FakeQuestion:
    id: str
    question: str
    answer: str
    gold: tuple[tuple[str, str], ...]
    distractor: tuple[str, str]

    def chunk(self, title: str) -> str:
        """Chunk id of this question's paragraph ``title`` (one chunk per paragraph)."""
        text = dict((*self.gold, self.distractor))[title]
        return f"{doc_id(title, text)}#0"


QUESTIONS = (
    FakeQuestion(
        "h1",
        "In which town was the designer of the Orlen Bridge born?",
        "Pellmoor",
        (
            ("Orlen Bridge", "The Orlen Bridge was designed by Mara Quill and opened in 1923."),
            ("Mara Quill", "Mara Quill was an engineer born in Pellmoor on the river Aske."),
        ),
        ("Dunmere", "Dunmere is a market town known for its wool fairs."),
    ),
    FakeQuestion(
        "h2",
        "Which river flows past the birthplace of the founder of the Mirefield Gazette?",
        "River Aske",
        (
            ("Mirefield Gazette", "The Mirefield Gazette was founded by Tobin Vell in 1881."),
            ("Tobin Vell", "Tobin Vell was born in Harrowgate, a village on the River Aske."),
        ),
        ("Gazette printing", "Printing a gazette needed lead type and strong paper."),
    ),
    FakeQuestion(
        "h3",
        "What instrument did the teacher of the composer Ilse Brand play?",
        "viola",
        (
            ("Ilse Brand", "Ilse Brand studied composition with Aurel Wend in Kessin."),
            ("Aurel Wend", "Aurel Wend was a teacher who played the viola in the court band."),
        ),
        ("Kessin", "Kessin is a port city with a large conservatory."),
    ),
    FakeQuestion(
        "h4",
        "How many arches has the bridge built by the mayor of Tessaly?",
        "seven",
        (
            ("Tessaly", "The mayor of Tessaly, Oda Farrant, built the Tessaly Causeway."),
            ("Tessaly Causeway", "The Tessaly Causeway is a stone bridge with seven arches."),
        ),
        ("Oda Farrant (ship)", "The Oda Farrant is a ferry named after the former mayor."),
    ),
    FakeQuestion(
        "h5",
        "In what year did the school attended by the painter Rune Soll close?",
        "1950",
        (
            ("Rune Soll", "Rune Soll was a painter who attended the Brightwater Academy."),
            ("Brightwater Academy", "The Brightwater Academy opened in 1870 and closed in 1950."),
        ),
        ("Brightwater", "Brightwater is a lake in the northern hills."),
    ),
)


def hotpot_record(q: FakeQuestion) -> dict[str, object]:
    paragraphs = [*q.gold, q.distractor]
    return {
        "_id": q.id,
        "question": q.question,
        "answer": q.answer,
        "supporting_facts": [[title, 0] for title, _ in q.gold],
        "context": [[title, [text]] for title, text in paragraphs],
        "type": "bridge",
        "level": "easy",
    }


def write_hotpot(path: Path, questions: Sequence[FakeQuestion] = QUESTIONS) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(hotpot_record(q)) + "\n" for q in questions))
    return path


class Killed(RuntimeError):
    """Stands for the process dying mid-run (not a GenerationError, which a method absorbs)."""


class KillAfter:
    """Passes ``calls`` generate calls to ``inner``, then dies."""

    def __init__(self, inner: Generator, calls: int):
        self.inner = inner
        self.left = calls

    @property
    def name(self) -> str:
        return self.inner.name

    def generate(self, prompts: Sequence[Prompt], params: GenParams) -> list[Completion]:
        if self.left == 0:
            raise Killed("killed")
        self.left -= 1
        return self.inner.generate(prompts, params)


def prediction(
    qid: str, em: float, f1: float, *, status: str = "finished", steps: int = 1, **extra: float
) -> Prediction:
    return Prediction(
        id=qid,
        question=f"question {qid}?",
        golds=("gold",),
        prediction="gold" if em else "other",
        status=status,
        metrics={"em": em, "f1": f1, "cover_em": em, "finished": float(status == "finished")}
        | extra,
        steps=steps,
        prompt_tokens=100,
        completion_tokens=10,
        latency_s=0.5,
        wall_s=0.25,
    )


def write_run(
    run_dir: Path, predictions: Sequence[Prediction], *, dataset: str = "toy", method: str = "rag"
) -> Path:
    """A run folder as the runner leaves it, from hand-made predictions."""
    run_dir.mkdir(parents=True, exist_ok=True)
    info = {"config": {"dataset": dataset, "method": method}, "machine": {"cpus": 2}}
    (run_dir / RUN_FILE).write_text(json.dumps(info))
    PredictionLog(run_dir / "predictions.jsonl").append(predictions)
    return run_dir
