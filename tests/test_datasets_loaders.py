"""Benchmark loaders on small fixtures (with malformed records), sampling and the eval corpus."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reasonrag.datasets.corpus import corpus_from_examples, doc_id, gold_doc_ids, title_index
from reasonrag.datasets.loaders import (
    DatasetWarning,
    LoadIssue,
    Paragraph,
    QAExample,
    SupportingDoc,
    load_2wiki,
    load_beir,
    load_dataset,
    load_demo,
    load_flashrag,
    load_hotpotqa,
    load_musique,
    load_nq,
)
from reasonrag.errors import DatasetError

FIXTURES = Path(__file__).parent / "fixtures" / "eval"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _issues_at(issues: list[LoadIssue]) -> list[str]:
    """Issue locations relative to the fixture folder: ``file:line`` or ``file[index]``."""
    return [i.location.replace(f"{FIXTURES}/", "") for i in issues]


def test_hotpotqa_jsonl_skips_and_reports_bad_lines() -> None:
    issues: list[LoadIssue] = []
    examples = load_hotpotqa(FIXTURES / "hotpotqa.jsonl", on_error=issues.append)
    assert [e.id for e in examples] == ["hp1", "hp2"]
    assert _issues_at(issues) == [
        "hotpotqa.jsonl:3",
        "hotpotqa.jsonl:4",
        "hotpotqa.jsonl:6",
        "hotpotqa.jsonl:7",
    ]
    assert "invalid JSON" in issues[0].problem
    assert issues[1].problem == "answer: Field required"
    assert issues[2].problem.startswith("context:")
    assert "duplicate id 'hp1'" in issues[3].problem
    assert str(issues[1]).endswith("hotpotqa.jsonl:4: answer: Field required")

    hp1 = examples[0]
    assert hp1.answers == ("the Blue River",)
    assert hp1.answer == "the Blue River"
    assert hp1.dataset == "hotpotqa"
    assert [s.title for s in hp1.supporting] == ["Freedonia", "Blue River"]
    # HotpotQA sentences carry their own leading space
    assert hp1.supporting[0].text == "Freedonia is a small country. Its capital is Marxville."
    assert [(p.title, p.is_supporting) for p in hp1.paragraphs] == [
        ("Freedonia", True),
        ("Blue River", True),
        ("Red Lake", False),
    ]
    assert hp1.metadata == {"type": "bridge", "level": "easy"}


def test_list_fields_given_as_python_literal_text() -> None:
    hp2 = load_hotpotqa(FIXTURES / "hotpotqa.jsonl", on_error=lambda _: None)[1]
    assert hp2.supporting == (SupportingDoc("Red Lake", "Red Lake is a lake in Sylvania."),)
    assert [p.title for p in hp2.paragraphs] == ["Red Lake", "Freedonia"]


def test_unparseable_literal_is_reported(tmp_path: Path) -> None:
    row = {
        "_id": "x",
        "question": "q",
        "answer": "a",
        "supporting_facts": "[['a', 0]",
        "context": [],
    }
    path = tmp_path / "h.jsonl"
    path.write_text(json.dumps(row) + "\n")
    issues: list[LoadIssue] = []
    assert load_hotpotqa(path, on_error=issues.append) == []
    assert issues[0].location == f"{path}:1"
    assert "not a valid list literal" in issues[0].problem


def test_default_reporting_is_a_warning_naming_file_and_line() -> None:
    with pytest.warns(DatasetWarning) as caught:
        examples = load_hotpotqa(FIXTURES / "hotpotqa.jsonl")
    assert len(examples) == 2
    messages = [str(w.message).replace(f"{FIXTURES}/", "") for w in caught]
    assert len(messages) == 4
    assert messages[1] == "hotpotqa.jsonl:4: answer: Field required"


def test_hotpotqa_json_array_reports_item_index() -> None:
    issues: list[LoadIssue] = []
    examples = load_hotpotqa(FIXTURES / "hotpotqa_array.json", on_error=issues.append)
    assert [e.id for e in examples] == ["ha1", "ha3"]
    assert _issues_at(issues) == ["hotpotqa_array.json[1]"]
    assert issues[0].problem == "question: Field required"


def test_broken_json_array_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('[{"_id": "a"},\n {oops}]')
    with pytest.raises(ValueError, match=r"broken\.json:2:3: invalid JSON"):
        load_hotpotqa(path)


def test_missing_file_raises_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(FileNotFoundError, match=r"nope\.jsonl"):
        load_musique(missing)
    with pytest.raises(FileNotFoundError, match="nope"):
        load_beir(tmp_path / "nope")


def test_musique() -> None:
    issues: list[LoadIssue] = []
    examples = load_musique(FIXTURES / "musique.jsonl", on_error=issues.append)
    assert [e.id for e in examples] == ["2hop__1_2", "2hop__5_6"]
    assert _issues_at(issues) == ["musique.jsonl:2", "musique.jsonl:4"]
    assert "paragraph_support_idx: no paragraph with idx 7" in issues[0].problem
    first = examples[0]
    # aliases arrive as literal text; the golden answer stays first
    assert first.answers == ("Rufus T. Firefly", "Firefly", "R. T. Firefly")
    assert [s.title for s in first.supporting] == ["Marxville", "Freedonia"]
    assert [(h.answer, h.title) for h in first.decomposition] == [
        ("Freedonia", "Marxville"),
        ("Rufus T. Firefly", "Freedonia"),
    ]
    assert len(first.paragraphs) == 3
    assert first.metadata == {"answerable": True}


def test_2wiki_array_with_evidences() -> None:
    issues: list[LoadIssue] = []
    examples = load_2wiki(FIXTURES / "2wiki.json", on_error=issues.append)
    assert [e.id for e in examples] == ["w1", "w3"]
    assert _issues_at(issues) == ["2wiki.json[1]"]
    assert issues[0].problem.startswith("evidences.0.2:")
    w1 = examples[0]
    # 2Wiki sentences have no leading space: one is added between them
    assert w1.supporting[0].text == "Duck Soup is a 1933 film. It was directed by Leo McCarey."
    assert [(h.question, h.answer, h.title) for h in w1.decomposition] == [
        ("Duck Soup >> director", "Leo McCarey", "Duck Soup"),
        ("Leo McCarey >> date of birth", "July 11, 1897", "Leo McCarey"),
    ]
    assert w1.metadata["evidences"][0] == ["Duck Soup", "director", "Leo McCarey"]
    assert w1.metadata["type"] == "compositional"
    # evidences given as literal text
    assert examples[1].decomposition[1].answer == "1932"


def test_flashrag() -> None:
    issues: list[LoadIssue] = []
    examples = load_flashrag(FIXTURES / "flashrag.jsonl", on_error=issues.append)
    assert [e.id for e in examples] == ["test_0", "test_1", "test_3"]
    assert _issues_at(issues) == ["flashrag.jsonl:3", "flashrag.jsonl:4"]
    assert "at least 1 item" in issues[0].problem
    assert examples[0].answers == ("Jane Doe", "J. Doe")
    assert examples[0].metadata == {"source": "made up"}
    assert examples[1].answers == ("blue",)  # a bare string is one answer
    assert examples[2].answers == ("42", "forty-two")


def test_nq_simplified_layout_gets_line_ids() -> None:
    issues: list[LoadIssue] = []
    examples = load_nq(FIXTURES / "nq_open.jsonl", on_error=issues.append)
    assert [(e.id, e.answers) for e in examples] == [
        ("nq-1", ("Marxville",)),
        ("nq-3", ("Red Lake", "the Red Lake")),
    ]
    assert _issues_at(issues) == ["nq_open.jsonl:2"]
    assert {e.dataset for e in examples} == {"nq"}


def test_demo_layout_from_a_folder() -> None:
    issues: list[LoadIssue] = []
    examples = load_demo(FIXTURES / "demo", on_error=issues.append)
    assert [e.id for e in examples] == ["q1", "q2"]
    assert _issues_at(issues) == ["demo/corpus.jsonl:4", "demo/questions.jsonl:3"]
    assert "unknown document id 'd9'" in issues[1].problem
    q1 = examples[0]
    assert q1.answers == ("Rufus T. Firefly", "Firefly")
    assert [s.title for s in q1.supporting] == ["Freedonia", "Marxville"]
    # every valid demo document is a paragraph of every question
    assert [(p.title, p.is_supporting) for p in q1.paragraphs] == [
        ("Freedonia", True),
        ("Marxville", True),
        ("Sylvania", False),
    ]
    assert [h.title for h in q1.decomposition] == ["Freedonia", "Marxville"]
    assert q1.metadata == {"type": "bridge"}


def test_package_demo_set_loads_cleanly() -> None:
    from importlib.resources import files

    if not (files("reasonrag") / "data" / "demo" / "questions.jsonl").is_file():
        pytest.skip("package demo set not present")
    issues: list[LoadIssue] = []
    examples = load_dataset("demo", on_error=issues.append)
    assert examples
    assert issues == []
    corpus = title_index(corpus_from_examples(examples))
    assert all(gold_doc_ids(e, corpus) for e in examples if e.supporting)


def test_beir_folder() -> None:
    issues: list[LoadIssue] = []
    beir = load_beir(FIXTURES / "beir", on_error=issues.append)
    assert beir.corpus == {
        "doc1": ("Freedonia", "Freedonia is a small country."),
        "doc2": ("Sylvania", "Sylvania borders Freedonia."),
        "doc3": ("", "A document without a title."),
    }
    assert beir.queries == {"q1": "freedonia", "q2": "sylvania neighbours"}
    assert beir.qrels == {"q1": {"doc1": 2, "doc2": 1}, "q2": {"doc2": 2, "doc1": 0}}
    assert _issues_at(issues) == [
        "beir/corpus.jsonl:4",
        "beir/queries.jsonl:4",
        "beir/qrels/test.tsv:6",
        "beir/qrels/test.tsv:7",
    ]
    docs = beir.documents(source="dbp")
    assert (docs[0].id, docs[0].title, docs[0].source) == ("doc1", "Freedonia", "dbp")
    assert len(docs) == 3


# --- load_dataset and sampling -------------------------------------------------------------


@pytest.fixture
def many_questions(tmp_path: Path) -> Path:
    path = tmp_path / "many.jsonl"
    rows = [
        {"id": f"q{i}", "question": f"question {i}", "golden_answers": [str(i)]} for i in range(300)
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_sampling_is_deterministic_and_prefix_stable(many_questions: Path) -> None:
    def ids(n: int | None, seed: int = 0) -> list[str]:
        return [e.id for e in load_dataset("flashrag", many_questions, n=n, seed=seed)]

    assert ids(None) == [f"q{i}" for i in range(300)]
    assert ids(50) == ids(50)
    assert ids(100)[:50] == ids(50)
    assert len(set(ids(100))) == 100
    assert ids(50) != [f"q{i}" for i in range(50)]  # shuffled, not the file's head
    assert ids(50, seed=1) != ids(50)
    assert len(ids(1000)) == 300
    with pytest.raises(ValueError, match=">= 0"):
        ids(-1)


def test_sample_does_not_depend_on_other_lines(many_questions: Path, tmp_path: Path) -> None:
    noisy = tmp_path / "noisy.jsonl"
    noisy.write_text("{broken\n" + many_questions.read_text() + '{"id": "extra"}\n')
    clean = {e.id for e in load_dataset("flashrag", many_questions, n=40, seed=5)}
    sample = load_dataset("flashrag", noisy, n=40, seed=5, on_error=lambda _: None)
    assert {e.id for e in sample} == clean


def test_load_dataset_dispatch_errors(many_questions: Path) -> None:
    with pytest.raises(ValueError, match="unknown dataset 'squad'"):
        load_dataset("squad", many_questions)
    with pytest.raises(ValueError, match="needs a path"):
        load_dataset("hotpotqa")
    examples = load_dataset("2WikiMultihopQA", FIXTURES / "2wiki.json", on_error=lambda _: None)
    assert [e.id for e in examples] == ["w1", "w3"]


# --- corpus --------------------------------------------------------------------------------


def test_corpus_deduplicates_shared_paragraphs() -> None:
    examples = load_hotpotqa(FIXTURES / "hotpotqa.jsonl", on_error=lambda _: None)
    docs = corpus_from_examples(examples)
    # hp1 ships Freedonia, Blue River, Red Lake; hp2 ships Red Lake and Freedonia again
    assert [d.title for d in docs] == ["Freedonia", "Blue River", "Red Lake"]
    assert len({d.id for d in docs}) == 3
    assert [d.id for d in corpus_from_examples(examples)] == [d.id for d in docs]
    assert docs[0].id == doc_id("Freedonia", docs[0].text)
    assert doc_id("ab", "c") != doc_id("a", "bc")
    gold = gold_doc_ids(examples[0], title_index(docs))
    assert gold == {docs[0].id, docs[1].id}


def test_gold_ids_with_repeated_titles() -> None:
    example = QAExample(
        id="m",
        question="q",
        answers=("a",),
        supporting=(SupportingDoc("Lake", "Second text."),),
        paragraphs=(
            Paragraph("Lake", "First text."),
            Paragraph("Lake", "Second text.", is_supporting=True),
        ),
    )
    index = title_index(corpus_from_examples([example]))
    assert gold_doc_ids(example, index) == {doc_id("Lake", "Second text.")}
    # known only by title: every paragraph with that title counts
    title_only = QAExample(
        id="t", question="q", answers=("a",), supporting=(SupportingDoc("Lake"),)
    )
    assert gold_doc_ids(title_only, index) == set(index["Lake"])
    missing = QAExample(id="x", question="q", answers=("a",), supporting=(SupportingDoc("Sea"),))
    with pytest.raises(KeyError, match="'Sea' not in corpus"):
        gold_doc_ids(missing, index)


# --- the shared benchmark samples, when present ----------------------------------------------

SHARED_SETS = [
    ("hotpotqa", "hotpotqa/dev.jsonl", 600),
    ("musique", "musique/dev.jsonl", 100),
    ("musique", "musique/train.jsonl", 100),
    ("2wiki", "2wikimultihopqa/dev.jsonl", 82),
    ("2wiki", "2wikimultihopqa/train.jsonl", 500),
]


@pytest.mark.parametrize(("name", "relpath", "count"), SHARED_SETS)
def test_shared_dataset_loads(name: str, relpath: str, count: int) -> None:
    path = SHARED / relpath
    if not path.is_file():
        pytest.skip(f"{path} not present")
    issues: list[LoadIssue] = []
    examples = load_dataset(name, path, on_error=issues.append)
    assert issues == []
    assert len(examples) == count
    assert all(e.answers[0] and e.supporting and e.paragraphs for e in examples)
    index = title_index(corpus_from_examples(examples))
    assert all(len(gold_doc_ids(e, index)) >= 1 for e in examples)


def test_shared_beir_subset_loads() -> None:
    folder = SHARED / "beir_dbpedia_entity_subset"
    if not folder.is_dir():
        pytest.skip(f"{folder} not present")
    issues: list[LoadIssue] = []
    beir = load_beir(folder, on_error=issues.append)
    assert issues == []
    assert len(beir.corpus) == 5000
    assert sum(len(r) for r in beir.qrels.values()) == 3709
    assert set(beir.queries) == set(beir.qrels)


def test_bare_answer_that_looks_like_a_list_stays_one_answer(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    rows = [
        {"id": "a", "question": "q", "golden_answers": "[citation needed]"},
        {"id": "b", "question": "q", "golden_answers": "(1990)"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    examples = load_flashrag(path)
    assert [e.answers for e in examples] == [("[citation needed]",), ("(1990)",)]


# --- hostile input -------------------------------------------------------------------------

GOOD_HOTPOT = {"_id": "ok", "question": "Q?", "answer": "A", "supporting_facts": [], "context": []}
HUGE_INT = "1" * 5000  # more digits than Python converts


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("[" * 100_000, "invalid JSON: nested too deeply (column 1)"),
        ('{"a": ' * 100_000, "invalid JSON: nested too deeply (column 1)"),
        ('{"_id": ' + HUGE_INT + "}", "invalid JSON: a number longer than 4300 digits (column 1)"),
    ],
)
def test_a_jsonl_line_json_cannot_read_is_one_bad_line(tmp_path: Path, line: str, problem: str):
    path = tmp_path / "deep.jsonl"
    path.write_text(json.dumps(GOOD_HOTPOT) + "\n" + line + "\n")
    issues: list[LoadIssue] = []
    assert [e.id for e in load_dataset("hotpotqa", path, on_error=issues.append)] == ["ok"]
    assert issues == [LoadIssue(f"{path}:2", problem)]


def test_a_json_array_nested_too_deeply_names_the_file(tmp_path: Path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000)
    with pytest.raises(DatasetError, match=r"deep\.json:1:1: invalid JSON: nested too deeply"):
        load_hotpotqa(path)


@pytest.mark.parametrize("text", ["[" * 100_000, "[" + HUGE_INT + "]", "[" + "-" * 100_000 + "1]"])
def test_list_text_too_deep_or_long_for_a_literal_is_reported(tmp_path: Path, text: str):
    path = tmp_path / "h.jsonl"
    path.write_text(json.dumps(GOOD_HOTPOT | {"_id": "bad", "supporting_facts": text}) + "\n")
    issues: list[LoadIssue] = []
    assert load_hotpotqa(path, on_error=issues.append) == []
    assert [(i.location, i.problem) for i in issues] == [
        (f"{path}:1", "supporting_facts: Value error, text is not a valid list literal")
    ]


FIELDS = {
    "hotpotqa": ["_id", "question", "answer", "supporting_facts", "context", "type"],
    "2wiki": ["_id", "question", "answer", "supporting_facts", "context", "evidences"],
    "musique": [
        "id",
        "question",
        "answer",
        "answer_aliases",
        "paragraphs",
        "question_decomposition",
    ],
    "flashrag": ["id", "question", "golden_answers", "metadata"],
    "nq": ["question", "answer"],
    "demo": ["id", "question", "answers", "supporting_docs", "decomposition"],
}
NESTED_KEYS = st.sampled_from(
    ["idx", "title", "paragraph_text", "is_supporting", "question", "answer", "doc_id", "text"]
)
LIST_TEXT = st.sampled_from(
    ["[", "[1, 2]", "['a', 0]", "[['a', ['b']]]", "[{'idx': 1}]", "[1e999]", "[" * 3000]
)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | LIST_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(NESTED_KEYS, inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=200, deadline=2000)
@given(name=st.sampled_from(sorted(FIELDS)), data=st.data())
def test_records_of_wrong_types_are_reported_or_loaded(name: str, data: st.DataObject):
    rows = [
        {
            key: data.draw(LIST_TEXT | JSON_VALUES)
            for key in FIELDS[name]
            if data.draw(st.booleans())
        }
        for _ in range(data.draw(st.integers(1, 3)))
    ]
    issues: list[LoadIssue] = []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "questions.jsonl"
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
        (Path(folder) / "corpus.jsonl").write_text('{"id": "d1", "title": "T", "text": "x"}\n')
        examples = load_dataset(name, folder if name == "demo" else path, on_error=issues.append)
    assert len(examples) + len(issues) == len(rows)


def test_records_with_text_that_is_not_valid_unicode_are_reported(tmp_path: Path):
    rows = [
        GOOD_HOTPOT,
        GOOD_HOTPOT | {"_id": "t", "context": [["\ud800", ["fine"]]]},
        GOOD_HOTPOT | {"_id": "p", "context": [["T", ["fine", "bad \udfff"]]]},
        GOOD_HOTPOT | {"_id": "q", "question": "bad \ud800"},  # refused by validation
    ]
    path = tmp_path / "h.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))  # escapes as \ud800
    issues: list[LoadIssue] = []
    assert [e.id for e in load_hotpotqa(path, on_error=issues.append)] == ["ok"]
    assert [(i.location, i.problem) for i in issues] == [
        (f"{path}:2", "paragraphs: not valid Unicode (lone surrogate U+D800 at character 0)"),
        (f"{path}:3", "paragraphs: not valid Unicode (lone surrogate U+DFFF at character 9)"),
        (
            f"{path}:4",
            "question: Input should be a valid string, unable to parse raw data as a unicode"
            " string",
        ),
    ]


def test_beir_documents_that_are_not_valid_unicode_are_reported(tmp_path: Path):
    (tmp_path / "qrels").mkdir()
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    (tmp_path / "queries.jsonl").write_text('{"_id": "q1", "text": "query"}\n')
    docs = [{"_id": "d1", "text": "fine"}, {"_id": "d2", "title": "\udc80", "text": "x"}]
    (tmp_path / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    issues: list[LoadIssue] = []
    assert list(load_beir(tmp_path, on_error=issues.append).corpus) == ["d1"]
    assert issues == [
        LoadIssue(
            f"{tmp_path / 'corpus.jsonl'}:2",
            "title: not valid Unicode (lone surrogate U+DC80 at character 0)",
        )
    ]


def test_a_file_that_is_not_utf8_names_the_file(tmp_path: Path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(json.dumps({"question": "café"}).encode() + b'\n{"question": "caf\xe9"}\n')
    with pytest.raises(
        DatasetError, match=r"latin1\.jsonl: not UTF-8 text \(invalid byte at offset 43\)"
    ):
        load_nq(path)
