import math
from collections.abc import Sequence

import pytest

from reasonrag.index.records import Hit
from reasonrag.index.rerank import LLMReranker, relevance_prompt, yes_probability
from reasonrag.llm.base import Completion, GenParams, Prompt, TokenLogprob, as_messages


def _hit(i: int, text: str) -> Hit:
    return Hit(f"d{i}#0", f"d{i}", f"Doc {i}", text, "", score=1.0 - i / 10, rank=i)


def _completion(p_yes: float, p_no: float, other: float = 0.0) -> Completion:
    top = [(" Yes", math.log(p_yes)), ("No", math.log(p_no))]
    if other:
        top.append(("The", math.log(other)))
    top.sort(key=lambda t: -t[1])
    return Completion(text=top[0][0], logprobs=(TokenLogprob(top[0][0], top[0][1], tuple(top)),))


def test_yes_probability_normalises_over_yes_and_no() -> None:
    assert yes_probability(_completion(0.3, 0.1, other=0.6)) == pytest.approx(0.75)
    assert yes_probability(Completion(text="yes, it does")) == 1.0
    assert yes_probability(Completion(text="No.")) == 0.0


class KeywordJudge:
    """Says yes with high probability when the passage mentions 'eel'."""

    name = "test:judge"

    def __init__(self) -> None:
        self.calls: list[tuple[int, GenParams]] = []

    def generate(self, prompts: Sequence[Prompt], params: GenParams) -> list[Completion]:
        self.calls.append((len(prompts), params))
        out = []
        for prompt in prompts:
            passage = as_messages(prompt)[-1].content.split("<passage>")[1]
            out.append(_completion(0.9, 0.1) if "eel" in passage else _completion(0.2, 0.8))
        return out


def test_llm_reranker_reorders_in_one_batch_with_logprobs() -> None:
    hits = [_hit(0, "barley and mills"), _hit(1, "smoked eel trade"), _hit(2, "salt")]
    judge = KeywordJudge()
    reranked = LLMReranker(judge).rerank("what is traded?", hits)
    assert next(h.doc_id for h in reranked) == "d1"
    assert reranked[0].stage_scores["rerank"] == pytest.approx(0.9)
    assert [h.rank for h in reranked] == [0, 1, 2]
    assert len(judge.calls) == 1 and judge.calls[0][0] == 3
    assert judge.calls[0][1].logprobs > 0 and judge.calls[0][1].max_tokens == 1


def test_relevance_prompt_carries_query_and_passage() -> None:
    text = "\n".join(m.content for m in relevance_prompt("q?", _hit(0, "body")))
    assert "q?" in text and "body" in text and "yes or no" in text
