"""The LLM judge: prompt, verdict parsing, and batching through a scripted generator."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from reasonrag.eval.judge import JudgeItem, LLMJudge, judge_prompt, parse_verdict
from reasonrag.llm.base import Completion, GenerationError, GenParams, Prompt, as_messages


class ScriptedGenerator:
    """Returns the scripted replies in order and records every call."""

    def __init__(self, replies: Sequence[str], drop_last: bool = False) -> None:
        self.replies = list(replies)
        self.drop_last = drop_last
        self.calls: list[tuple[list[Prompt], GenParams]] = []

    @property
    def name(self) -> str:
        return "scripted"

    def generate(self, prompts: Sequence[Prompt], params: GenParams) -> list[Completion]:
        self.calls.append((list(prompts), params))
        texts = [self.replies.pop(0) for _ in prompts]
        if self.drop_last:
            texts = texts[:-1]
        return [Completion(text=t) for t in texts]


def test_judge_prompt_carries_question_golds_and_prediction() -> None:
    messages = judge_prompt("Who founded Marxville?", ["Rufus T. Firefly", "Firefly"], "Firefly")
    assert [m.role for m in messages] == ["system", "user"]
    user = messages[1].content
    assert "Who founded Marxville?" in user
    assert "- Rufus T. Firefly\n- Firefly" in user
    assert "Prediction: Firefly" in user
    assert "Yes or No" in user


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        ("Yes", True),
        ("yes.", True),
        ("**Correct**", True),
        ("The answer is correct", True),
        ("Yes, the prediction is correct.", True),
        ("TRUE", True),
        ("No", False),
        ("no.", False),
        ("incorrect", False),
        ("Incorrect.", False),
        ("not correct", False),
        ("The prediction is not correct.", False),
        ("It isn’t correct", False),
        ("Wrong", False),
        ("No, the prediction is wrong.", False),
        ("Not entirely correct", False),
        ("Yes. There is no difference in meaning.", True),  # leading verdict word decides
        ("Is it correct? No.", None),  # conflicting verdicts without a leading one
        ("", None),
        ("I cannot tell.", None),
        ("Maybe", None),
    ],
)
def test_parse_verdict(reply: str, verdict: bool | None) -> None:
    assert parse_verdict(reply) is verdict


def test_judge_many_batches_all_prompts_into_one_call() -> None:
    generator = ScriptedGenerator(["Yes", "no.", "hmm"])
    judge = LLMJudge(generator, GenParams(max_tokens=4))
    items = [
        JudgeItem("Capital of Freedonia?", ("Marxville",), "It is Marxville"),
        JudgeItem("Who leads Freedonia?", ("Rufus T. Firefly",), "Groucho"),
        JudgeItem("Where is Red Lake?", ("Sylvania",), ""),
        JudgeItem("Colour of the Blue River?", ("blue",), "teal-ish?"),
    ]
    assert judge.judge_many(items) == [True, False, False, None]
    assert len(generator.calls) == 1
    prompts, params = generator.calls[0]
    assert params == GenParams(max_tokens=4)
    # the empty prediction is judged incorrect without asking the model
    assert len(prompts) == 3
    assert "Prediction: Groucho" in as_messages(prompts[1])[1].content


def test_judge_many_without_predictions_makes_no_call() -> None:
    generator = ScriptedGenerator([])
    judge = LLMJudge(generator)
    assert judge.judge_many([]) == []
    assert judge.judge_many([JudgeItem("q", ("a",), "  ")]) == [False]
    assert generator.calls == []


def test_judge_many_rejects_a_short_batch() -> None:
    judge = LLMJudge(ScriptedGenerator(["Yes", "Yes"], drop_last=True))
    items = [JudgeItem("q1", ("a",), "a"), JudgeItem("q2", ("b",), "b")]
    with pytest.raises(GenerationError, match="scripted: 1 completions for 2 prompts"):
        judge.judge_many(items)
