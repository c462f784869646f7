"""Training data construction: oracle chains and RARE examples over real searches for every
dataset layout, teacher filters, resumption and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import HashEmbedder
from eval_fakes import KillAfter, Killed
from reason_fakes import ScriptedGenerator, action
from reasonrag.config import Settings
from reasonrag.datasets import QAExample, load_dataset
from reasonrag.datasets.corpus import corpus_documents, prepare_index
from reasonrag.index import Hit, Index
from reasonrag.llm.base import as_messages
from reasonrag.reason.agent import TaoAgent
from reasonrag.reason.prompts import format_documents, rare_prompt, tao_system
from reasonrag.train.data import DataSpec, build_data, data_files
from reasonrag.train.oracle import OracleWriter, oracle_chain, oracle_rare, plan_hops
from reasonrag.train.records import ChainRecord, Outcome, RareRecord, read_outcomes, read_records

PARAGRAPHS = {
    "Marxville": "Marxville is the capital of Freedonia. The city has a harbour.",
    "Freedonia": "Freedonia is a small country. It is led by Rufus T. Firefly.",
    "Rufus T. Firefly": "Rufus T. Firefly was born in Sylvania in 1890.",
    "Red Lake": "Red Lake is a lake in Sylvania with cold water.",
    "Blue River": "The Blue River is long. It flows through Marxville to the sea.",
}


def _musique(tmp_path: Path, paragraphs: dict[str, str] = PARAGRAPHS) -> Path:
    record = {
        "id": "m1",
        "question": "Who leads the country whose capital is Marxville?",
        "answer": "Rufus T. Firefly",
        "answer_aliases": ["Firefly"],
        "paragraphs": [
            {"idx": i, "title": t, "paragraph_text": x, "is_supporting": t != "Red Lake"}
            for i, (t, x) in enumerate(paragraphs.items())
        ],
        "question_decomposition": [
            {
                "id": 1,
                "question": "Marxville >> capital of",
                "answer": "Freedonia",
                "paragraph_support_idx": list(paragraphs).index("Marxville"),
            },
            {
                "id": 2,
                "question": "Who leads #1?",
                "answer": "Rufus T. Firefly",
                "paragraph_support_idx": list(paragraphs).index("Freedonia"),
            },
        ],
    }
    path = tmp_path / "musique.jsonl"
    path.write_text(json.dumps(record) + "\n")
    return path


def _hotpot(tmp_path: Path) -> Path:
    record = {
        "_id": "h1",
        "question": "Which river flows through the capital of Freedonia?",
        "answer": "the Blue River",
        "supporting_facts": [["Marxville", 0], ["Blue River", 1]],
        "context": [[t, [x]] for t, x in PARAGRAPHS.items()],
    }
    path = tmp_path / "hotpot.jsonl"
    path.write_text(json.dumps(record) + "\n")
    return path


def _2wiki(tmp_path: Path) -> Path:
    record = {
        "_id": "w1",
        "type": "compositional",
        "question": "Where was the leader of Freedonia born?",
        "answer": "Sylvania",
        "context": [[t, [x]] for t, x in PARAGRAPHS.items()],
        "supporting_facts": [["Freedonia", 1], ["Rufus T. Firefly", 0]],
        "evidences": [
            ["Freedonia", "leader", "Rufus T. Firefly"],
            ["Rufus T. Firefly", "place of birth", "Sylvania"],
        ],
    }
    path = tmp_path / "2wiki.json"
    path.write_text(json.dumps([record]))
    return path


def _index(examples: list[QAExample], settings: Settings, folder: Path) -> Index:
    documents = corpus_documents(examples, examples[0].dataset, None)
    return prepare_index(documents, settings, folder, embedder=HashEmbedder(), progress=False)


def _agent(index: Index, **kw: object) -> TaoAgent:
    options = {"top_k": 2, "snippet_chars": 600, "worked_example": False} | kw
    return TaoAgent(OracleWriter(), index, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("layout", ["musique", "2wiki", "hotpotqa"])
def test_oracle_chains_are_real_searches_shown_as_the_agent_shows_them(
    layout: str, tmp_path: Path, settings: Settings
) -> None:
    path = {"musique": _musique, "2wiki": _2wiki, "hotpotqa": _hotpot}[layout](tmp_path)
    examples = load_dataset(layout, path)
    index = _index(examples, settings, tmp_path / "idx")
    chain = oracle_chain(examples[0], _agent(index), snippet_chars=600)
    assert isinstance(chain, ChainRecord), chain
    system, question, *turns = chain.messages
    assert system.content == tao_system(("finish", "search"), 8, example=False)
    assert question.content == f"Question: {examples[0].question}"
    assert turns[-1].role == "assistant" and '"function": "finish"' in turns[-1].content
    assert chain.answer == examples[0].answers[0] and chain.f1 == 1.0
    observations = [m.content for m in turns if m.role == "user"]
    assert len(observations) == len(chain.queries) >= 1
    for query, observation in zip(chain.queries, observations, strict=True):
        # every observation is exactly what the index returns for that query
        expected = format_documents(index.search(query, 2), 600)
        assert observation == f"Observation: {expected}"
    assert chain.trainable() == tuple(m.role == "assistant" for m in chain.messages)


def test_a_chain_whose_gold_evidence_is_not_retrieved_is_dropped(
    tmp_path: Path, settings: Settings
) -> None:
    examples = load_dataset("musique", _musique(tmp_path))
    # The index lacks the paragraph that says who leads Freedonia.
    gutted = [d for d in corpus_documents(examples, "musique", None) if d.title != "Freedonia"]
    index = prepare_index(
        gutted, settings, tmp_path / "idx", embedder=HashEmbedder(), progress=False
    )
    made = oracle_chain(examples[0], _agent(index), snippet_chars=600)
    assert made == Outcome("m1", False, "gold evidence not retrieved", {"hop": 2})
    rare = oracle_rare(examples[0], index, top_k=2, snippet_chars=600)
    assert isinstance(rare, Outcome) and rare.reason == "gold evidence not retrieved"


class TableRetriever:
    """Answers each query from a table: which hits a query brings is the test's choice."""

    def __init__(self, table: dict[str, list[tuple[str, str]]]):
        self.table = table
        self.queries: list[str] = []

    def search(self, query: str, k: int = 10) -> list[Hit]:
        self.queries.append(query)
        return [
            Hit(f"{title}#0", title, title, PARAGRAPHS[title], "", 1.0, rank)
            for rank, title in enumerate(self.table.get(query, [])[:k])
        ]


def test_a_hop_missed_by_its_query_is_repaired_by_a_search_for_its_title(
    tmp_path: Path,
) -> None:
    (example,) = load_dataset("musique", _musique(tmp_path))
    retriever = TableRetriever(
        {
            "Marxville capital of": ["Marxville"],
            "Who leads Freedonia?": ["Red Lake"],  # the hop's own query misses
            "Freedonia": ["Freedonia"],
        }
    )
    chain = oracle_chain(example, _agent(retriever), snippet_chars=600)  # type: ignore[arg-type]
    assert isinstance(chain, ChainRecord)
    assert chain.queries == ("Marxville capital of", "Who leads Freedonia?", "Freedonia")
    repair = [m.content for m in chain.messages if m.role == "assistant"][2]
    assert "I will search Freedonia for it" in repair
    assert chain.messages[-1].content.endswith(
        '"answer": "Rufus T. Firefly [Marxville#0] [Freedonia#0]"}}'
    ), "the finish cites the evidence of every hop"


def test_oracle_rare_keeps_instruction_documents_question_reasoning_and_answer_apart(
    tmp_path: Path, settings: Settings
) -> None:
    examples = load_dataset("2wiki", _2wiki(tmp_path))
    index = _index(examples, settings, tmp_path / "idx")
    record = oracle_rare(examples[0], index, top_k=3, snippet_chars=600)
    assert isinstance(record, RareRecord)
    hits = index.search(examples[0].question, 3)
    system, user = as_messages(rare_prompt(examples[0].question, hits, 600))
    assert record.instruction == system.content
    assert user.content.split("</documents>")[0] in record.context, "the question's own search"
    assert record.context.startswith("<documents>") and examples[0].question in record.context
    assert record.reasoning.endswith("So the answer is Sylvania.")
    assert record.answer.startswith("Sylvania [")
    assert (
        record.messages[-1].content
        == f"<think>{record.reasoning}</think>\n<answer>{record.answer}</answer>"
    )
    assert record.trainable() == (False, False, True)


def test_demo_hops_that_compute_are_reasoning_not_searches() -> None:
    examples = {e.id: e for e in load_dataset("demo")}
    arithmetic = next(e for e in examples.values() if any(h.title is None for h in e.decomposition))
    hops = plan_hops(arithmetic)
    assert len(hops) == sum(h.title is not None for h in arithmetic.decomposition)


# --- teachers ---------------------------------------------------------------------------------


def _teacher_world(tmp_path: Path, settings: Settings) -> tuple[list[QAExample], Index]:
    records = []
    for qid, question, answer in [
        ("t1", "Who leads Freedonia?", "Rufus T. Firefly"),
        ("t2", "Where was Rufus T. Firefly born?", "Sylvania"),
        ("t3", "What is the capital of Freedonia?", "Marxville"),
    ]:
        records.append(
            {
                "_id": qid,
                "question": question,
                "answer": answer,
                "supporting_facts": [],
                "context": [[t, [x]] for t, x in PARAGRAPHS.items()],
            }
        )
    path = tmp_path / "teach.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    examples = load_dataset("hotpotqa", path)
    return examples, _index(examples, settings, tmp_path / "idx")


def test_teacher_chains_keep_only_finished_readable_good_answers(
    tmp_path: Path, settings: Settings
) -> None:
    examples, index = _teacher_world(tmp_path, settings)
    teacher = ScriptedGenerator(
        {
            "Who leads": [
                action("search", query="Freedonia leader"),
                action("finish", answer="Rufus T. Firefly"),
            ],
            "Where was": [
                action("search", query="Firefly born"),
                action("finish", answer="Marxville"),
            ],
            "What is the capital": [
                "I do not know how to do this.",
                "Still no idea.",
                action("finish", answer="Marxville"),
            ],
        }
    )
    out = tmp_path / "chains.jsonl"
    summary = build_data(
        examples, index, DataSpec("rearag", top_k=2), out, teacher=teacher, progress=False
    )
    records = read_records(out)
    assert [r.id for r in records] == ["t1"]
    assert summary["kinds"]["rearag"] == {
        "questions": 3,
        "kept": 1,
        "dropped": {"answer F1 below threshold": 1, "unreadable or corrected steps": 1},
    }
    chain = records[0]
    assert isinstance(chain, ChainRecord) and chain.source == "teacher"
    assert chain.messages[0].content == tao_system(("finish", "search"), 8, example=False)


def test_teacher_rare_tries_until_an_answer_is_good_enough(
    tmp_path: Path, settings: Settings
) -> None:
    examples, index = _teacher_world(tmp_path, settings)
    teacher = ScriptedGenerator(
        {
            "Who leads": [
                "<think>Freedonia's page names its leader.</think><answer>Rufus T. Firefly</answer>"
            ],
            "Where was": [
                "<think>hm</think><answer>Marxville</answer>",
                "<think>The page says Sylvania.</think><answer>Sylvania</answer>",
            ],
            "What is the capital": ["no tags at all"] * 3,
        }
    )
    out = tmp_path / "rare.jsonl"
    spec = DataSpec("rare", top_k=2, tries=3)
    summary = build_data(examples, index, spec, out, teacher=teacher, progress=False)
    records = {r.id: r for r in read_records(out)}
    assert set(records) == {"t1", "t2"}
    second = records["t2"]
    assert isinstance(second, RareRecord) and second.tries == 2
    assert second.reasoning == "The page says Sylvania." and second.answer == "Sylvania"
    assert summary["kinds"]["rare"]["dropped"] == {"no answer reached F1 0.8 in 3 tries": 1}
    assert [len(batch) for batch, _ in teacher.calls] == [3, 2, 1], "one call per try"


def test_a_killed_build_resumes_with_the_undecided_questions_only(
    tmp_path: Path, settings: Settings
) -> None:
    examples, index = _teacher_world(tmp_path, settings)
    replies = {
        "Who leads": [action("finish", answer="Rufus T. Firefly")],
        "Where was": [action("search", query="Firefly born"), action("finish", answer="Sylvania")],
        "What is the capital": [
            action("search", query="capital"),
            action("finish", answer="Marxville"),
        ],
    }
    out = tmp_path / "chains.jsonl"
    spec = DataSpec("rearag", top_k=2)
    with pytest.raises(Killed):
        build_data(
            examples,
            index,
            spec,
            out,
            teacher=KillAfter(ScriptedGenerator(replies), 1),
            progress=False,
        )
    assert set(read_outcomes(data_files(out)[0])) == {"rearag:t1"}
    again = ScriptedGenerator(replies)
    build_data(examples, index, spec, out, teacher=again, progress=False)
    assert sorted(r.id for r in read_records(out)) == ["t1", "t2", "t3"]
    assert not any("Who leads" in str(p) for p in again.prompts)


def test_data_oracle_command(tmp_path: Path) -> None:
    from reasonrag.cli import app

    out = tmp_path / "oracle.jsonl"
    env = {"REASONRAG_CACHE_DIR": str(tmp_path / "cache")}
    args = ["data", "oracle", "--dataset", "musique", "--path", str(_musique(tmp_path))]
    result = CliRunner().invoke(app, [*args, "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    assert "rearag: 1 of 1 questions kept" in result.output
    assert {r.kind for r in read_records(out)} == {"rearag", "rare"}
    assert (tmp_path / "oracle-index" / "manifest.json").is_file()
