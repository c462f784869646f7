"""The demo training questions: they load, cite paragraphs that hold their answers, and stay
apart from the 48 evaluation questions."""

import json
import re
from collections import Counter
from fnmatch import fnmatch
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
import tomllib

from check_demo_train import all_problems, normalize_answer
from reasonrag.datasets.loaders import LoadIssue, QAExample, load_demo

DEMO = files("reasonrag") / "data" / "demo"
TRAIN = "train_questions.jsonl"


def _rows(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (DEMO / name).read_text("utf-8").splitlines() if line]


def _tokens(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


@pytest.fixture(scope="module")
def train() -> list[dict[str, Any]]:
    if not (DEMO / TRAIN).is_file():
        pytest.skip("package demo training set not present")
    return _rows(TRAIN)


@pytest.fixture(scope="module")
def held_out() -> list[dict[str, Any]]:
    return _rows("questions.jsonl")


@pytest.fixture(scope="module")
def paragraphs() -> dict[str, list[str]]:
    return {d["id"]: d["text"].split("\n\n") for d in _rows("corpus.jsonl")}


@pytest.fixture(scope="module")
def loaded(train: list[dict[str, Any]]) -> tuple[list[QAExample], list[LoadIssue]]:
    issues: list[LoadIssue] = []
    return load_demo(questions=TRAIN, on_error=issues.append), issues


def test_loads_without_issues(
    loaded: tuple[list[QAExample], list[LoadIssue]], train: list[dict[str, Any]]
) -> None:
    examples, issues = loaded
    assert issues == []
    assert len(examples) == len(train)
    multi_hop = [e for e in examples if e.metadata["type"] != "single"]
    assert len(multi_hop) >= 120
    assert len({e.id for e in examples}) == len(examples)
    assert len({e.question.lower() for e in examples}) == len(examples)
    assert all(e.dataset == "demo" and e.supporting and e.decomposition for e in examples)


def test_mix_of_types_and_documents(train: list[dict[str, Any]]) -> None:
    kinds = Counter(r["type"] for r in train)
    assert set(kinds) == {"single", "bridge", "compositional", "comparison", "arithmetic"}
    multi_hop = [r for r in train if r["type"] != "single"]
    assert sum(len(r["supporting_docs"]) >= 3 for r in multi_hop) * 3 >= len(multi_hop)
    assert all(len(r["decomposition"]) == 2 for r in train if r["type"] == "bridge")
    assert all(len(r["decomposition"]) >= 3 for r in train if r["type"] == "compositional")


def test_every_hop_answer_is_in_its_cited_paragraph(
    train: list[dict[str, Any]], paragraphs: dict[str, list[str]]
) -> None:
    missing = []
    for row in train:
        for hop in row["decomposition"]:
            if hop["doc_id"] is None:
                assert row["type"] in {"comparison", "arithmetic"}, row["id"]
                continue
            text = paragraphs[hop["doc_id"]][hop["paragraph"]]
            pattern = r"(?<!\w)" + re.escape(hop["answer"]) + r"(?!\w)"
            if not re.search(pattern, text, re.IGNORECASE):
                missing.append((row["id"], hop["answer"], hop["doc_id"], hop["paragraph"]))
    assert missing == []


def test_loaded_hops_name_the_cited_documents(
    loaded: tuple[list[QAExample], list[LoadIssue]],
    train: list[dict[str, Any]],
) -> None:
    titles = {d["id"]: d["title"] for d in _rows("corpus.jsonl")}
    for example, row in zip(loaded[0], train, strict=True):
        assert [h.title for h in example.decomposition] == [
            titles[h["doc_id"]] if h["doc_id"] else None for h in row["decomposition"]
        ]
        assert [s.title for s in example.supporting] == [titles[d] for d in row["supporting_docs"]]


def test_no_answer_and_documents_shared_with_the_evaluation_set(
    train: list[dict[str, Any]], held_out: list[dict[str, Any]]
) -> None:
    def keys(row: dict[str, Any]) -> set[tuple[str, frozenset[str]]]:
        docs = frozenset(row["supporting_docs"])
        return {(normalize_answer(a), docs) for a in row["answers"]}

    eval_keys = set().union(*(keys(e) for e in held_out))
    assert [t["id"] for t in train if keys(t) & eval_keys] == []


def test_no_question_text_close_to_an_evaluation_question(
    train: list[dict[str, Any]], held_out: list[dict[str, Any]]
) -> None:
    close = []
    for t in train:
        for e in held_out:
            a, b = _tokens(t["question"]), _tokens(e["question"])
            if len(a & b) / len(a | b) > 0.6:
                close.append((t["id"], e["id"]))
    assert close == []


def test_the_full_check_finds_nothing(
    train: list[dict[str, Any]],
    held_out: list[dict[str, Any]],
) -> None:
    assert all_problems(train, held_out, _rows("corpus.jsonl")) == []


def test_the_check_catches_an_evaluation_question_and_a_bad_citation(
    train: list[dict[str, Any]],
    held_out: list[dict[str, Any]],
) -> None:
    corpus = _rows("corpus.jsonl")
    copied = {**held_out[0], "id": "t999"}
    problems = all_problems([copied], held_out, corpus)
    assert any("same answer and supporting documents" in p for p in problems)
    assert any("Jaccard 1.00" in p for p in problems)
    assert any("whole evaluation chain" in p for p in problems)
    first_hop = {**train[0]["decomposition"][0], "answer": "Harrowmouth"}
    broken = {**train[0], "decomposition": [first_hop, *train[0]["decomposition"][1:]]}
    assert any("is not in" in p for p in all_problems([broken], held_out, corpus))


def test_the_file_ships_with_the_package() -> None:
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    patterns = tomllib.loads(pyproject.read_text())["tool"]["setuptools"]["package-data"]
    assert any(fnmatch(f"data/demo/{TRAIN}", p) for p in patterns["reasonrag"])
