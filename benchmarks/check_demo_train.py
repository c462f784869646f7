"""Check the demo training questions against the corpus and keep them apart from the eval set.

    python benchmarks/check_demo_train.py [train.jsonl]

Reads ``corpus.jsonl``, ``questions.jsonl`` (the 48 held-out evaluation questions) and
``train_questions.jsonl`` from the package's demo folder and prints one line per problem:

- a record that is malformed: unknown type, wrong number of steps for its type, a cited document
  or paragraph that does not exist, ``supporting_docs`` that differ from the documents the steps
  cite, a repeated id or question;
- a step whose answer is not written (as a whole word or phrase, ignoring case) in the
  paragraph it cites;
- a final answer that does not follow from the steps: the last step's answer is not among the
  question's answers, or an arithmetic step (``What is A minus B?``) does not compute;
- a training question that asks what an evaluation question asks: the same answer and the same
  set of supporting documents, question text with token-overlap Jaccard above 0.6, or a
  decomposition that contains every retrieval step of an evaluation question.

It exits with status 1 when there is a problem, and prints how many training questions reuse
at least one retrieval step (document, paragraph, answer) of an evaluation question.
"""

from __future__ import annotations

import json
import re
import string
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

DEMO = Path(__file__).resolve().parents[1] / "src" / "reasonrag" / "data" / "demo"
TYPES = {"single", "bridge", "compositional", "comparison", "arithmetic"}
JACCARD_LIMIT = 0.6
_OPS = {"plus": "+", "minus": "-", "times": "*", "multiplied by": "*", "divided by": "/"}
_ARITH = re.compile(
    r"^what is (?P<a>[\d,.]+) (?P<op>plus|minus|times|multiplied by|divided by) (?P<b>[\d,.]+)\??$",
    re.IGNORECASE,
)

Record = Mapping[str, Any]
Fact = tuple[str, int, str]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def paragraphs_by_doc(corpus: Iterable[Record]) -> dict[str, list[str]]:
    return {d["id"]: d["text"].split("\n\n") for d in corpus}


def normalize_answer(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces (the SQuAD normalisation)."""
    text = "".join(c for c in text.lower() if c not in string.punctuation)
    return " ".join(w for w in text.split() if w not in {"a", "an", "the"})


def tokens(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


def jaccard(a: str, b: str) -> float:
    ta, tb = tokens(a), tokens(b)
    return len(ta & tb) / len(ta | tb) if ta | tb else 0.0


def in_paragraph(answer: str, paragraph: str) -> bool:
    pattern = r"(?<!\w)" + re.escape(answer) + r"(?!\w)"
    return re.search(pattern, paragraph, re.IGNORECASE) is not None


def retrieval_facts(record: Record) -> set[Fact]:
    return {
        (h["doc_id"], h["paragraph"], normalize_answer(h["answer"]))
        for h in record["decomposition"]
        if h.get("doc_id") is not None
    }


_UNITS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_WORDS = {w: i for i, w in enumerate(_UNITS)} | {w: 20 + 10 * i for i, w in enumerate(_TENS)}


def _number(text: str) -> float | None:
    """The first number in ``text``, in digits ("1,206") or in words up to 99 ("twenty-two")."""
    match = re.search(r"\d[\d,]*(?:\.\d+)?", text)
    if match:
        return float(match.group().replace(",", ""))
    for word in re.findall(r"[a-z]+(?:-[a-z]+)?", text.lower()):
        tens, _, unit = word.partition("-")
        if tens in _WORDS and (not unit or (tens in _TENS and unit in _UNITS[1:10])):
            return float(_WORDS[tens] + (_WORDS[unit] if unit else 0))
    return None


def _arithmetic_problem(step: Record, earlier: Sequence[Record]) -> str | None:
    match = _ARITH.match(step["question"].strip())
    if not match:
        return f"arithmetic step {step['question']!r} is not 'What is A <op> B?'"
    a, b = (float(match.group(k).replace(",", "")) for k in ("a", "b"))
    known = {_number(h["answer"]) for h in earlier}
    if a not in known or b not in known:
        return f"arithmetic step {step['question']!r} uses a number no earlier step found"
    value = {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else float("nan")}[
        _OPS[match.group("op").lower()]
    ]
    if _number(step["answer"]) != value:
        return f"arithmetic step {step['question']!r} answers {step['answer']!r}, not {value:g}"
    return None


def record_problems(record: Record, paragraphs: Mapping[str, Sequence[str]]) -> list[str]:
    """Problems with one record on its own (format, citations, the answer following)."""
    where = record.get("id", "?")
    kind = record.get("type")
    steps = record.get("decomposition") or []
    answers = record.get("answers") or []
    if kind not in TYPES:
        return [f"{where}: unknown type {kind!r}"]
    if not answers or not steps or not record.get("question"):
        return [f"{where}: missing question, answers or decomposition"]
    problems = []
    wanted = {"single": (1, 1), "bridge": (2, 2), "compositional": (3, 99)}.get(kind, (3, 99))
    if not wanted[0] <= len(steps) <= wanted[1]:
        problems.append(f"{where}: a {kind} question with {len(steps)} steps")
    cited = []
    for i, step in enumerate(steps):
        doc_id, number = step.get("doc_id"), step.get("paragraph")
        if doc_id is None:
            if kind not in {"comparison", "arithmetic"} or i != len(steps) - 1:
                problems.append(f"{where}: step {i} cites no paragraph")
            continue
        if doc_id not in paragraphs or not 0 <= number < len(paragraphs[doc_id]):
            problems.append(f"{where}: step {i} cites a missing paragraph {doc_id}/{number}")
            continue
        cited.append(doc_id)
        if not in_paragraph(step["answer"], paragraphs[doc_id][number]):
            problems.append(
                f"{where}: step {i} answer {step['answer']!r} is not in {doc_id} paragraph {number}"
            )
    support = list(record.get("supporting_docs") or [])
    if set(support) != set(cited) or len(support) != len(set(support)):
        problems.append(f"{where}: supporting_docs {support} != cited documents {cited}")
    last = steps[-1]
    if kind == "arithmetic":
        problem = _arithmetic_problem(last, steps[:-1])
        if problem:
            problems.append(f"{where}: {problem}")
        if _number(last["answer"]) != _number(answers[0]):
            problems.append(f"{where}: answer {answers[0]!r} != computed {last['answer']!r}")
    elif normalize_answer(last["answer"]) not in {normalize_answer(a) for a in answers}:
        problems.append(f"{where}: last step answer {last['answer']!r} not among {answers}")
    return problems


def overlap_problems(train: Sequence[Record], held_out: Sequence[Record]) -> list[str]:
    """Training questions that ask what an evaluation question asks."""
    problems = []
    for t in train:
        t_answers = {normalize_answer(a) for a in t["answers"]}
        t_facts = retrieval_facts(t)
        for e in held_out:
            label = f"{t['id']} vs {e['id']}"
            same_docs = set(t["supporting_docs"]) == set(e["supporting_docs"])
            if same_docs and t_answers & {normalize_answer(a) for a in e["answers"]}:
                problems.append(f"{label}: same answer and supporting documents")
            score = jaccard(t["question"], e["question"])
            if score > JACCARD_LIMIT:
                problems.append(f"{label}: question text Jaccard {score:.2f}")
            e_facts = retrieval_facts(e)
            if e_facts and e_facts <= t_facts:
                problems.append(f"{label}: decomposition contains the whole evaluation chain")
    return problems


def duplicate_problems(train: Sequence[Record]) -> list[str]:
    problems = []
    for label, key in (("id", "id"), ("question", "question")):
        counts = Counter(str(r[key]).strip().lower() for r in train)
        problems += [f"repeated {label}: {k!r}" for k, n in counts.items() if n > 1]
    return problems


def all_problems(
    train: Sequence[Record], held_out: Sequence[Record], corpus: Iterable[Record]
) -> list[str]:
    paragraphs = paragraphs_by_doc(corpus)
    problems = duplicate_problems(train)
    for record in train:
        problems += record_problems(record, paragraphs)
    return problems + overlap_problems(train, held_out)


def reusing_eval_facts(train: Sequence[Record], held_out: Sequence[Record]) -> list[str]:
    """Ids of training questions with a retrieval step that an evaluation question also has."""
    eval_facts = set().union(*(retrieval_facts(e) for e in held_out))
    return [t["id"] for t in train if retrieval_facts(t) & eval_facts]


def main(argv: Sequence[str]) -> int:
    train_path = Path(argv[0]) if argv else DEMO / "train_questions.jsonl"
    train = read_jsonl(train_path)
    held_out = read_jsonl(DEMO / "questions.jsonl")
    problems = all_problems(train, held_out, read_jsonl(DEMO / "corpus.jsonl"))
    for problem in problems:
        print(problem)
    reuse = reusing_eval_facts(train, held_out)
    kinds = Counter(r["type"] for r in train)
    docs = Counter(len(r["supporting_docs"]) for r in train)
    print(f"{len(train)} questions; by type {dict(sorted(kinds.items()))}")
    print(f"by number of supporting documents {dict(sorted(docs.items()))}")
    closest = max(
        (jaccard(t["question"], e["question"]), t["id"], e["id"]) for t in train for e in held_out
    )
    print(f"closest question texts: {closest[1]} and {closest[2]}, Jaccard {closest[0]:.2f}")
    print(f"{len(reuse)} reuse an evaluation step: {' '.join(reuse)}")
    print(f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
