"""Single-pass baselines on the same step machine, prompts' style and generator as the agent:
closed-book (no retrieval), RAG (retrieve the question's top-k, answer) and RARE-style
(reason in ``<think>`` over the retrieved documents, answer in ``<answer>``)."""

from __future__ import annotations

from typing import Literal, get_args

from reasonrag.config import ConfigError
from reasonrag.index.records import Retriever
from reasonrag.llm.base import Completion, Generator, GenParams, Prompt
from reasonrag.reason.actions import run_search
from reasonrag.reason.machine import AgentState, StepMachine, answer_from
from reasonrag.reason.prompts import (
    answer_prompt,
    closed_book_prompt,
    latent_prompt,
    rare_prompt,
)
from reasonrag.reason.records import Purpose, Step

Style = Literal["closed", "rag", "rare", "clara"]


class SinglePass(StepMachine):
    """One retrieval (unless closed-book) and one generation per question."""

    def __init__(
        self,
        style: Style,
        generator: Generator,
        retriever: Retriever | None = None,
        *,
        top_k: int = 5,
        max_tokens: int = 192,
        snippet_chars: int = 600,
    ):
        if style not in get_args(Style):
            raise ConfigError(f"agent.method: unknown single-pass method {style!r}")
        if style != "closed" and retriever is None:
            raise ValueError(f"the {style} method needs a retriever")
        self.name = style
        self.style = style
        self.generator = generator
        self.retriever = retriever
        self.top_k = top_k
        self.snippet_chars = snippet_chars
        self.params = GenParams(max_tokens=max_tokens)

    def start(self, question: str) -> AgentState:
        state = AgentState(question)
        if not question.strip():
            return self.fail(state, "the question is empty")
        if self.retriever is None:
            return state
        found = run_search(self.retriever, question, self.top_k, self.snippet_chars)
        step = Step(
            1,
            "search",
            question,
            hits=found.hits,
            observation=found.observation,
            latency_s=found.seconds,
        )
        return state.record(step)

    def pending_prompt(self, state: AgentState) -> Prompt | None:
        if state.done:
            return None
        if self.style == "closed":
            return closed_book_prompt(state.question)
        if self.style == "rag":
            return answer_prompt(state.question, state.evidence, self.snippet_chars)
        if self.style == "clara":
            return latent_prompt(state.question, state.evidence)
        return rare_prompt(state.question, state.evidence, self.snippet_chars)

    def purpose(self, state: AgentState) -> Purpose:
        return "answer"

    def advance(self, state: AgentState, completion: Completion) -> AgentState:
        if state.done:
            raise ValueError("advance() on a finished run")
        return answer_from(state, completion, "finished")
