"""The TAO agent's control logic, driven by a scripted generator over a keyword retriever."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from reason_fakes import KeywordRetriever, ScriptedGenerator, action, prompt_text
from reasonrag.config import ConfigError
from reasonrag.llm.base import Completion, GenerationError, GenParams, Prompt, as_messages
from reasonrag.reason import NO_ANSWER, AgentState, Citation, Step, TaoAgent
from reasonrag.reason.prompts import DATA_NOTICE, DISCARDED

ALL = ("search", "finish", "verify", "calculate", "rethink")
Q = "Which river flows through the birthplace of Corvin Haldane?"


def agent(
    script: Sequence[str], *, retriever: KeywordRetriever | None = None, **kwargs: object
) -> tuple[TaoAgent, ScriptedGenerator, KeywordRetriever]:
    generator = ScriptedGenerator(script)
    retriever = retriever or KeywordRetriever()
    return TaoAgent(generator, retriever, **kwargs), generator, retriever  # type: ignore[arg-type]


def test_search_then_finish_with_citations_and_trace() -> None:
    tao, gen, ret = agent(
        [
            action("search", query="Corvin Haldane born"),
            action("search", query="Pellmoor river"),
            action("finish", answer="the Aske [pellmoor#0]"),
        ],
        top_k=2,
    )
    seen: list[tuple[str, Step]] = []
    answer = tao.ask(Q, on_step=lambda q, s: seen.append((q, s)))

    assert (answer.answer, answer.status) == ("the Aske", "finished")
    assert answer.citations == (Citation("pellmoor#0", "pellmoor", "Pellmoor"),)
    assert ret.queries == ["Corvin Haldane born", "Pellmoor river"]
    steps = answer.trace.steps
    assert [s.action for s in steps] == ["search", "search", "finish"]
    assert [s.index for s in steps] == [1, 2, 3]
    assert [h.chunk_id for h in steps[0].hits] == ["haldane#0", "gazette#0"]
    assert steps[0].observation.startswith("<documents>\n[haldane#0] Corvin Haldane: Corvin")
    assert steps[0].observation.endswith("</documents>")
    # usage sums what the generator reported for every step
    assert answer.usage.steps == 3
    assert answer.usage.completion_tokens == sum(len(t.split()) for t in [s.raw for s in steps])
    assert answer.usage.prompt_tokens == sum(len(prompt_text(p).split()) for p in gen.prompts)
    assert answer.usage.latency_s >= 0.03
    # live callback: every step, in order, as it happened
    assert [(q, s.index) for q, s in seen] == [(Q, 1), (Q, 2), (Q, 3)]
    # one generate call per step; stop strings end generation after the action
    assert len(gen.calls) == 3
    assert all("\nObservation" in params.stop for _, params in gen.calls)


def test_prompt_replays_steps_as_turns() -> None:
    tao, gen, _ = agent(
        [action("search", query="Corvin Haldane born"), action("finish", answer="Pellmoor")]
    )
    tao.ask(Q)
    messages = as_messages(gen.prompts[1])
    assert [m.role for m in messages] == ["system", "user", "assistant", "user"]
    assert DATA_NOTICE in messages[0].content and messages[0].cache
    assert messages[1].content == f"Question: {Q}"
    assert '"query": "Corvin Haldane born"' in messages[2].content
    assert messages[3].content.startswith("Observation: <documents>\n[haldane#0]")


def test_step_limit_forces_one_final_answer_from_the_evidence() -> None:
    tao, gen, _ = agent(
        [
            action("search", query="Corvin Haldane"),
            action("search", query="Pellmoor"),
            action("search", query="Orlen Bridge"),
            "Answer: the Aske [pellmoor#0]",
        ],
        max_steps=3,
    )
    answer = tao.ask(Q)
    assert (answer.answer, answer.status) == ("the Aske", "forced")
    assert len(gen.calls) == 4
    final = prompt_text(gen.prompts[-1])
    for chunk in ("haldane#0", "pellmoor#0", "orlen#0"):
        assert f"[{chunk}]" in final
    assert "I will search." in final  # the agent's notes travel to the final ask
    assert answer.trace.steps[-1].note == "final answer asked once"


def test_final_answer_that_says_nothing_is_a_failure() -> None:
    tao, _, _ = agent([action("search", query="Corvin Haldane"), "\n\n"], max_steps=1)
    answer = tao.ask(Q)
    assert (answer.answer, answer.status, answer.citations) == (NO_ANSWER, "failed", ())


def test_repeated_query_is_not_run_again_and_the_agent_is_told() -> None:
    tao, gen, ret = agent(
        [
            action("search", query="Corvin Haldane"),
            action("search", query="  corvin   HALDANE?"),
            action("finish", answer="Pellmoor [haldane#0]"),
        ]
    )
    answer = tao.ask(Q)
    assert ret.queries == ["Corvin Haldane"]
    repeated = answer.trace.steps[1]
    assert repeated.hits == () and repeated.note == "repeated query: not run again"
    assert "already searched" in prompt_text(gen.prompts[2])
    assert answer.answer == "Pellmoor"


def test_unreadable_step_is_reasked_once() -> None:
    tao, gen, _ = agent(
        [
            "I am not sure what to do.",
            action("search", query="Corvin Haldane"),
            action("finish", answer="Pellmoor [haldane#0]"),
        ]
    )
    answer = tao.ask(Q)
    invalid = answer.trace.steps[0]
    assert invalid.action == "invalid" and "no Action" in invalid.note
    reask = as_messages(gen.prompts[1])[-1].content
    assert reask.startswith("Observation: Your last step could not be read: no Action")
    assert as_messages(gen.prompts[1])[-2].content == "I am not sure what to do."
    assert answer.status == "finished" and answer.answer == "Pellmoor"


def test_two_unreadable_steps_fall_back_to_searching_the_question() -> None:
    tao, _, ret = agent(["???", "still ???", action("finish", answer="Pellmoor [haldane#0]")])
    answer = tao.ask("Where was Corvin Haldane born?")
    assert [s.action for s in answer.trace.steps] == ["invalid", "search", "finish"]
    assert ret.queries == ["Where was Corvin Haldane born?"]
    assert answer.trace.steps[1].note.startswith("fallback after two unreadable steps")
    assert answer.answer == "Pellmoor"


def test_unreadable_after_the_question_was_searched_goes_to_the_final_answer() -> None:
    tao, _, _ = agent(
        [action("search", query=Q), "???", "still ???", "Answer: the Aske [pellmoor#0]"]
    )
    answer = tao.ask(Q)
    assert [s.action for s in answer.trace.steps] == ["search", "invalid", "invalid", "finish"]
    assert answer.status == "forced"


def test_disabled_action_is_refused_with_the_enabled_list() -> None:
    tao, gen, _ = agent(
        [action("calculate", expression="1+1"), action("finish", answer="2")],
        actions=("search",),
    )
    answer = tao.ask("What is one plus one?")
    assert "action 'calculate' is not enabled; use one of search, finish" in (
        answer.trace.steps[0].note
    )
    assert "calculate" not in as_messages(gen.prompts[0])[0].content.split("Example:")[0]
    assert answer.answer == "2"


def test_calculate_action() -> None:
    tao, gen, _ = agent(
        [
            action("calculate", expression="days_between('1901-03-04', '1923-07-01')"),
            action("calculate", expression="1 / 0"),
            action("finish", answer="8154 days"),
        ],
        actions=ALL,
    )
    answer = tao.ask("How many days passed between the Treaty of Vantry and the Orlen Bridge?")
    assert answer.trace.steps[0].observation == "Result: 8154"
    assert answer.trace.steps[1].observation == "Calculation failed: division by zero."
    assert "Observation: Result: 8154" in prompt_text(gen.prompts[1])


def test_verify_retrieves_then_asks_for_a_verdict() -> None:
    tao, gen, ret = agent(
        [
            action("verify", claim="Pellmoor lies on the river Aske"),
            "SUPPORTED. The Pellmoor document says so.",
            action("finish", answer="the river Aske"),
        ],
        actions=ALL,
    )
    answer = tao.ask(Q)
    verify = answer.trace.steps[0]
    assert ret.queries == ["Pellmoor lies on the river Aske"]
    assert verify.action == "verify" and verify.hits[0].chunk_id == "pellmoor#0"
    assert verify.observation.startswith("Verdict: SUPPORTED (The Pellmoor document says so.)")
    assert "[pellmoor#0]" in verify.observation
    judge = prompt_text(gen.prompts[1])
    assert "Claim: Pellmoor lies on the river Aske" in judge and DATA_NOTICE in judge
    # both generations are charged to the one step
    verdict = "SUPPORTED. The Pellmoor document says so."
    assert verify.completion_tokens == len(verify.raw.split()) + len(verdict.split())
    assert len(answer.trace.steps) == 2
    # verified evidence is citable
    assert answer.citations == (Citation("pellmoor#0", "pellmoor", "Pellmoor", inferred=True),)


def test_verify_without_documents_needs_no_verdict_generation() -> None:
    tao, gen, _ = agent(
        [action("verify", claim="Zorblax quuxes"), action("finish", answer="no")],
        actions=ALL,
    )
    answer = tao.ask("Does Zorblax quux?")
    assert answer.trace.steps[0].observation.startswith("Verdict: NOT ENOUGH INFO")
    assert len(gen.calls) == 2


def test_rethink_sets_the_last_observation_aside() -> None:
    tao, gen, _ = agent(
        [
            action("search", query="Corvin Haldane"),
            action("search", query="Mirefield Gazette maps"),
            action("rethink"),
            action("finish", answer="Pellmoor [gazette#0] [haldane#0]"),
        ],
        actions=ALL,
    )
    answer = tao.ask("Where was Corvin Haldane born?")
    steps = answer.trace.steps
    assert [s.discarded for s in steps] == [False, True, False, False]
    assert steps[2].observation == "The observation of step 2 is set aside as misleading."
    last = as_messages(gen.prompts[3])
    assert last[5].content == f"Observation: {DISCARDED}"
    # gazette#0 came from both searches, so it stays citable through step 1
    assert {c.chunk_id for c in answer.citations} == {"gazette#0", "haldane#0"}


def test_rethink_drops_citations_only_the_discarded_search_supported() -> None:
    tao, _, _ = agent(
        [
            action("search", query="Corvin Haldane"),
            action("search", query="Orlen Bridge"),
            action("rethink"),
            action("rethink"),
            action("rethink"),
            action("finish", answer="Pellmoor [orlen#0]"),
        ],
        actions=ALL,
    )
    answer = tao.ask("Where was Corvin Haldane born?")
    assert answer.trace.steps[4].observation == "There is no observation to set aside."
    assert answer.dropped_citations == ("orlen#0",)
    assert answer.citations == ()  # nothing left to infer from either


def test_citations_keep_only_retrieved_chunks() -> None:
    tao, _, _ = agent(
        [
            action("search", query="Corvin Haldane"),
            'Action: {"function": "finish", "parameters": {"answer": '
            '"Pellmoor [haldane#0, invented#3] [gazette]", "citations": ["pellmoor#0"]}}',
        ]
    )
    answer = tao.ask("Where was Corvin Haldane born?")
    assert answer.answer == "Pellmoor"
    # a bare doc id maps to that document's retrieved chunk
    assert [c.chunk_id for c in answer.citations] == ["haldane#0", "gazette#0"]
    assert not any(c.inferred for c in answer.citations)
    assert answer.dropped_citations == ("invented#3", "pellmoor#0")


def test_brackets_that_are_not_ids_stay_in_the_answer() -> None:
    tao, _, _ = agent(
        [action("search", query="Corvin Haldane"), action("finish", answer="1874 [approx.]")]
    )
    assert tao.ask("When was Corvin Haldane born?").answer == "1874 [approx.]"


def test_uncited_answer_cites_last_search_chunks_containing_it() -> None:
    tao, _, _ = agent(
        [action("search", query="Corvin Haldane born"), action("finish", answer="Pellmoor")]
    )
    answer = tao.ask("Where was Corvin Haldane born?")
    assert answer.citations == (Citation("haldane#0", "haldane", "Corvin Haldane", True),)


def test_uncited_answer_not_in_any_text_cites_the_top_hit() -> None:
    tao, _, _ = agent(
        [action("search", query="Pellmoor Corvin Haldane"), action("finish", answer="no")]
    )
    answer = tao.ask("Was Corvin Haldane born in Dunmere?")
    assert [(c.chunk_id, c.inferred) for c in answer.citations] == [("haldane#0", True)]


class FailingGenerator:
    name = "test:failing"

    def generate(self, prompts: Sequence[Prompt], params: GenParams) -> list[Completion]:
        raise GenerationError("backend down")


class BrokenRetriever:
    def search(self, query: str, k: int = 10) -> list:
        raise OSError("index file missing")


def test_generation_failure_ends_in_could_not_answer() -> None:
    answer = TaoAgent(FailingGenerator(), KeywordRetriever()).ask(Q)
    assert (answer.answer, answer.status) == (NO_ANSWER, "failed")
    assert answer.trace.steps[-1].observation == "generation failed: backend down"


def test_retriever_failure_is_an_observation() -> None:
    tao = TaoAgent(
        ScriptedGenerator([action("search", query="x"), action("finish", answer="unknown")]),
        BrokenRetriever(),
    )
    answer = tao.ask(Q)
    assert answer.trace.steps[0].observation.startswith("Search failed (OSError: index file")
    assert answer.answer == "unknown" and answer.citations == ()


def test_empty_question_needs_no_generation() -> None:
    tao, gen, _ = agent([])
    answer = tao.ask("   ")
    assert answer.status == "failed" and gen.calls == []


def test_model_giving_up_is_a_failure() -> None:
    tao, _, _ = agent([action("finish", answer="Could not answer")])
    assert tao.ask(Q).status == "failed"


def test_state_machine_is_resumable_and_immutable() -> None:
    tao, _, _ = agent([])
    state = tao.start(Q)
    first = tao.pending_prompt(state)
    assert first is not None
    after = tao.advance(state, Completion(action("search", query="Corvin Haldane")))
    assert state.steps == () and len(after.steps) == 1  # the old state is untouched
    assert isinstance(after, AgentState) and after.seen_queries == {"corvin haldane"}
    # the same state can be advanced again (e.g. resumed after a crash)
    again = tao.advance(state, Completion(action("search", query="Corvin Haldane")))
    assert again.steps[0].hits == after.steps[0].hits
    done = tao.advance(after, Completion(action("finish", answer="Pellmoor")))
    assert done.done and tao.pending_prompt(done) is None
    with pytest.raises(ValueError, match="finished run"):
        tao.advance(done, Completion("x"))
    assert tao.result(done).answer == "Pellmoor"


def test_ask_many_batches_every_round_into_one_generate_call() -> None:
    gen = ScriptedGenerator(
        {
            "Corvin": [
                action("search", query="Corvin Haldane"),
                action("finish", answer="Pellmoor"),
            ],
            "Orlen": [
                action("search", query="Orlen Bridge opened"),
                action("search", query="Orlen Bridge Aske"),
                action("finish", answer="1923-07-01"),
            ],
            "Vantry": [action("finish", answer="1901")],
        }
    )
    tao = TaoAgent(gen, KeywordRetriever())
    questions = ["Where was Corvin born?", "When did the Orlen Bridge open?", "When was Vantry?"]
    seen: list[str] = []
    answers = tao.ask_many(questions, on_step=lambda q, s: seen.append(q))
    assert [a.answer for a in answers] == ["Pellmoor", "1923-07-01", "1901"]
    assert [len(batch) for batch, _ in gen.calls] == [3, 2, 1]
    assert [a.question for a in answers] == questions
    assert sorted(seen) == sorted(questions[:1] * 2 + questions[1:2] * 3 + questions[2:])


def test_unknown_action_in_config_names_the_field() -> None:
    with pytest.raises(ConfigError, match=r"agent\.actions"):
        TaoAgent(ScriptedGenerator([]), KeywordRetriever(), actions=("search", "browse"))


def test_search_needs_a_retriever() -> None:
    with pytest.raises(ValueError, match="need a retriever"):
        TaoAgent(ScriptedGenerator([]), None)
    # without retrieval actions, no retriever is needed
    calc_only = TaoAgent(
        ScriptedGenerator([action("calculate", expression="6*7"), action("finish", answer="42")]),
        None,
        actions=("calculate",),
    )
    assert calc_only.ask("What is six times seven?").answer == "42"


def test_a_failing_action_is_an_observation_and_loses_no_question_of_the_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def overflow(expression: str) -> str:
        raise OverflowError("integer too large to convert to float")

    monkeypatch.setattr("reasonrag.reason.actions.calculate", overflow)
    gen = ScriptedGenerator(
        {
            "big": [action("calculate", expression="10**1000/7"), action("finish", answer="huge")],
            "Corvin": [action("finish", answer="Pellmoor")],
            "Vantry": [action("search", query="Vantry"), action("finish", answer="1901")],
        }
    )
    tao = TaoAgent(gen, KeywordRetriever(), actions=ALL)
    finished: list[int] = []
    answers = tao.ask_many(
        ["How big is the big number?", "Where was Corvin born?", "When was Vantry signed?"],
        on_finished=lambda done: finished.extend(i for i, _ in done),
    )
    assert [a.answer for a in answers] == ["huge", "Pellmoor", "1901"]
    failed = answers[0].trace.steps[0]
    assert "OverflowError" in failed.observation and failed.note.startswith("action failed")
    assert finished == [1, 0, 2], "each question is reported in the round that finished it"


def test_every_generation_is_recorded_with_its_whole_prompt_and_purpose() -> None:
    tao, gen, _ = agent(
        [
            "I am not sure what to do.",
            action("verify", claim="Corvin Haldane was born in Pellmoor"),
            "SUPPORTED: the gazette says so.",
            action("search", query="Pellmoor river"),
            "Answer: the Aske",
        ],
        actions=ALL,
        max_steps=3,
    )
    answer = tao.ask(Q)
    purposes = [(g.purpose, g.step) for g in answer.trace.generations]
    assert purposes == [("step", 1), ("reask", 2), ("verdict", 2), ("step", 3), ("final", 4)]
    for generation, sent in zip(answer.trace.generations, gen.prompts, strict=True):
        assert generation.messages == as_messages(sent), "the prompt exactly as sent"
    first = answer.trace.generations[0]
    assert first.messages[0].role == "system" and first.messages[0].content == tao.system
    assert first.completion == answer.trace.steps[0].raw
    saved = answer.to_dict()["trace"]["generations"]
    assert saved[4]["purpose"] == "final" and saved[4]["completion"] == "Answer: the Aske"
    assert saved[0]["messages"][0] == {"role": "system", "content": tao.system}
