"""Single-pass baselines and building any method from settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from reason_fakes import KeywordRetriever, ScriptedGenerator, prompt_text
from reasonrag.config import ConfigError, Settings, load_settings
from reasonrag.llm.base import as_messages
from reasonrag.reason import Agent, Citation, SinglePass, TaoAgent
from reasonrag.reason.prompts import DATA_NOTICE

QUESTION = "Where was Corvin Haldane born?"


def test_closed_book_sees_no_documents() -> None:
    generator = ScriptedGenerator(["Pellmoor\nHe was a cartographer."])
    answer = SinglePass("closed", generator).ask(QUESTION)
    assert (answer.answer, answer.status, answer.citations) == ("Pellmoor", "finished", ())
    assert [s.action for s in answer.trace.steps] == ["finish"]
    assert "<documents>" not in prompt_text(generator.prompts[0])
    assert answer.trace.method == "closed"


def test_rag_retrieves_top_k_and_cites() -> None:
    generator = ScriptedGenerator(["Pellmoor [haldane#0] [elsewhere#1]"])
    retriever = KeywordRetriever()
    answer = SinglePass("rag", generator, retriever, top_k=2).ask(QUESTION)
    assert retriever.queries == [QUESTION]
    search, finish = answer.trace.steps
    assert (search.action, search.argument, len(search.hits)) == ("search", QUESTION, 2)
    assert finish.prompt_tokens > 0 and finish.raw == "Pellmoor [haldane#0] [elsewhere#1]"
    assert answer.answer == "Pellmoor"
    assert answer.citations == (Citation("haldane#0", "haldane", "Corvin Haldane"),)
    assert answer.dropped_citations == ("elsewhere#1",)
    user = as_messages(generator.prompts[0])[-1].content
    assert user.startswith("<documents>\n[haldane#0]") and user.endswith(
        f"Question: {QUESTION}\nAnswer:"
    )
    assert DATA_NOTICE in as_messages(generator.prompts[0])[0].content


def test_rare_reads_think_and_answer_tags() -> None:
    generator = ScriptedGenerator(
        ["<think>The Haldane entry says Pellmoor.</think>\n<answer>Pellmoor</answer>"]
    )
    answer = SinglePass("rare", generator, KeywordRetriever()).ask(QUESTION)
    finish = answer.trace.steps[-1]
    assert finish.thought == "The Haldane entry says Pellmoor."
    assert answer.answer == "Pellmoor"
    # no citation given: the retrieved chunk that mentions the answer is cited
    assert answer.citations == (Citation("haldane#0", "haldane", "Corvin Haldane", True),)
    assert "<think>" in as_messages(generator.prompts[0])[0].content


def test_rare_cut_off_while_thinking_fails_cleanly() -> None:
    generator = ScriptedGenerator(["<think>The Haldane entry says"])
    answer = SinglePass("rare", generator, KeywordRetriever()).ask(QUESTION)
    assert answer.status == "failed"


def test_single_pass_batches_all_questions_into_one_call() -> None:
    generator = ScriptedGenerator({"Corvin": ["Pellmoor"], "Orlen": ["1923-07-01"]})
    rag = SinglePass("rag", generator, KeywordRetriever())
    answers = rag.ask_many([QUESTION, "When did the Orlen Bridge open?"])
    assert [a.answer for a in answers] == ["Pellmoor", "1923-07-01"]
    assert [len(batch) for batch, _ in generator.calls] == [2]


def test_retrieving_baselines_need_a_retriever() -> None:
    with pytest.raises(ValueError, match="needs a retriever"):
        SinglePass("rag", ScriptedGenerator([]))


def settings(tmp_path: Path, **agent: object) -> Settings:
    return Settings(cache_dir=tmp_path, agent=agent)


@pytest.mark.parametrize(
    ("method", "kind"), [("tao", TaoAgent), ("rag", SinglePass), ("rare", SinglePass)]
)
def test_from_config_builds_the_configured_method(tmp_path: Path, method: str, kind: type) -> None:
    cfg = settings(tmp_path, method=method, top_k=3, max_steps=4, actions=["search", "verify"])
    agent = Agent.from_config(cfg, retriever=KeywordRetriever(), generator=ScriptedGenerator([]))
    assert isinstance(agent.method, kind) and agent.name == method
    assert agent.method.top_k == 3  # type: ignore[attr-defined]
    if method == "tao":
        assert agent.method.actions == ("finish", "search", "verify")  # type: ignore[attr-defined]
        assert agent.method.max_steps == 4  # type: ignore[attr-defined]


def test_from_config_closed_book_needs_no_index(tmp_path: Path) -> None:
    cfg = settings(tmp_path, method="closed")
    agent = Agent.from_config(cfg, generator=ScriptedGenerator(["Pellmoor"]))
    assert agent.ask(QUESTION).answer == "Pellmoor"


def test_from_config_without_index_dir_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"agent\.index_dir"):
        Agent.from_config(settings(tmp_path), generator=ScriptedGenerator([]))


def test_unknown_actions_are_refused_with_the_settings_before_any_model(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"agent\.actions\.1: Input should be 'search'"):
        load_settings(cache_dir=tmp_path, agent={"actions": ["search", "browse"]})
