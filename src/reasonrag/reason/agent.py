"""The ReaRAG-style Thought-Action-Observation agent, and ``Agent``, the entry point that
builds any method from settings."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from reasonrag.config import AgentConfig, ConfigError, Settings
from reasonrag.index.records import Retriever
from reasonrag.llm.base import Completion, Generator, GenParams, Prompt
from reasonrag.reason.actions import (
    calculate_observation,
    parse_verdict,
    query_key,
    run_search,
    verify_observation,
)
from reasonrag.reason.baselines import SinglePass
from reasonrag.reason.citations import conclude
from reasonrag.reason.guard import INJECTION_NOTE, injected_answer
from reasonrag.reason.machine import (
    AgentState,
    FinishedCallback,
    Method,
    StepCallback,
    StepMachine,
    answer_from,
    make_step,
)
from reasonrag.reason.parse import ARGUMENTS, ParsedAction, ParseFailure, parse_step
from reasonrag.reason.prompts import (
    REJECTED,
    STOP,
    answer_prompt,
    judge_prompt,
    reask,
    repeated_query,
    tao_prompt,
    tao_system,
)
from reasonrag.reason.records import Answer, Step

_RETRIEVING = frozenset({"search", "verify"})


class TaoAgent(StepMachine):
    """Each step the model writes a Thought and one Action; the action runs and its result
    comes back as the Observation, until ``finish`` or the step limit (then the model is
    asked once for a final answer from the evidence gathered)."""

    name = "tao"

    def __init__(
        self,
        generator: Generator,
        retriever: Retriever | None = None,
        *,
        max_steps: int = 8,
        top_k: int = 5,
        actions: Sequence[str] = ("search", "finish"),
        max_tokens: int = 192,
        snippet_chars: int = 600,
        worked_example: bool = True,
    ):
        self.actions = _check_actions(actions, retriever)
        self.generator = generator
        self.retriever = retriever
        self.max_steps = max_steps
        self.top_k = top_k
        self.snippet_chars = snippet_chars
        self.system = tao_system(self.actions, max_steps, example=worked_example)
        self.params = GenParams(max_tokens=max_tokens, stop=STOP)

    # ------------------------------------------------------------ step machine
    def start(self, question: str) -> AgentState:
        state = AgentState(question)
        return state if question.strip() else self.fail(state, "the question is empty")

    def pending_prompt(self, state: AgentState) -> Prompt | None:
        if state.done:
            return None
        if state.pending is not None:
            return judge_prompt(state.pending.argument, state.pending.hits, self.snippet_chars)
        if state.phase == "final":
            notes = _notes(state.steps)
            return answer_prompt(state.question, state.evidence, self.snippet_chars, notes)
        return tao_prompt(self.system, state.question, state.steps)

    def advance(self, state: AgentState, completion: Completion) -> AgentState:
        if state.done:
            raise ValueError("advance() on a finished run")
        if state.pending is not None:
            return self._judged(state, completion)
        if state.phase == "final":
            return self._final(state, completion)
        parsed = parse_step(completion.text, self.actions)
        if isinstance(parsed, ParseFailure):
            return self._unreadable(state, completion, parsed)
        act = self._handlers[parsed.name]
        try:
            return act(replace(state, reasked=False), completion, parsed)
        except Exception as exc:  # an action's failure is an observation, not the batch's end
            reason = f"{type(exc).__name__}: {exc}"
            step = make_step(
                state,
                completion,
                parsed,
                observation=f"The {parsed.name} action failed ({reason}). Try another action.",
                note=f"action failed: {reason}",
            )
            return self._after(replace(state, reasked=False), step)

    # ----------------------------------------------------------------- actions
    @property
    def _handlers(self) -> dict[str, Callable[[AgentState, Completion, ParsedAction], AgentState]]:
        return {
            "search": self._search,
            "finish": self._finish,
            "verify": self._verify,
            "calculate": self._calculate,
            "rethink": self._rethink,
        }

    def _search(self, state: AgentState, c: Completion, act: ParsedAction) -> AgentState:
        if query_key(act.argument) in state.seen_queries:
            step = make_step(
                state,
                c,
                act,
                observation=repeated_query(act.argument),
                note="repeated query: not run again",
            )
            return self._after(state, step)
        found = run_search(self._retriever, act.argument, self.top_k, self.snippet_chars)
        step = make_step(
            state, c, act, hits=found.hits, observation=found.observation, seconds=found.seconds
        )
        return self._after(state, step)

    def _finish(self, state: AgentState, c: Completion, act: ParsedAction) -> AgentState:
        outcome = conclude(
            act.argument, act.citations, state.evidence, state.last_search, "finished"
        )
        if injected_answer(outcome.answer, state.retrieved, state.question):
            return self._after(
                state, make_step(state, c, act, observation=REJECTED, note=INJECTION_NOTE)
            )
        return replace(state.record(make_step(state, c, act)), outcome=outcome)

    def _verify(self, state: AgentState, c: Completion, act: ParsedAction) -> AgentState:
        found = run_search(self._retriever, act.argument, self.top_k, self.snippet_chars)
        step = make_step(
            state, c, act, hits=found.hits, observation=found.observation, seconds=found.seconds
        )
        if not found.hits:  # nothing to judge: no second generation needed
            verdict = verify_observation("NOT ENOUGH INFO", "no documents found", "")
            return self._after(state, replace(step, observation=verdict.strip()))
        return replace(state, pending=step)

    def _judged(self, state: AgentState, c: Completion) -> AgentState:
        assert state.pending is not None
        verdict, reason = parse_verdict(c.text)
        pending = state.pending
        step = replace(
            pending,
            observation=verify_observation(verdict, reason, pending.observation),
            prompt_tokens=pending.prompt_tokens + c.prompt_tokens,
            completion_tokens=pending.completion_tokens + c.completion_tokens,
            latency_s=pending.latency_s + c.latency_s,
        )
        return self._after(replace(state, pending=None), step)

    def _calculate(self, state: AgentState, c: Completion, act: ParsedAction) -> AgentState:
        started = time.perf_counter()
        observation = calculate_observation(act.argument)
        seconds = time.perf_counter() - started
        return self._after(
            state, make_step(state, c, act, observation=observation, seconds=seconds)
        )

    def _rethink(self, state: AgentState, c: Completion, act: ParsedAction) -> AgentState:
        target = next(
            (s for s in reversed(state.steps) if s.action in _RETRIEVING and not s.discarded),
            None,
        )
        if target is None:
            return self._after(
                state, make_step(state, c, act, observation="There is no observation to set aside.")
            )
        steps = tuple(replace(s, discarded=True) if s is target else s for s in state.steps)
        observation = f"The observation of step {target.index} is set aside as misleading."
        return self._after(
            replace(state, steps=steps), make_step(state, c, act, observation=observation)
        )

    # ----------------------------------------------------------------- control
    def _unreadable(self, state: AgentState, c: Completion, failure: ParseFailure) -> AgentState:
        """Re-ask once; on a second unreadable step in a row, search the question itself
        (if not yet searched), else go to the final answer."""
        invalid = ParsedAction(failure.thought, "invalid", "")
        if not state.reasked:
            step = make_step(
                state, c, invalid, observation=reask(failure.reason), note=failure.reason
            )
            return self._after(replace(state, reasked=True), step)
        state = replace(state, reasked=False)
        if "search" in self.actions and query_key(state.question) not in state.seen_queries:
            fallback = ParsedAction(failure.thought, "search", state.question)
            found = run_search(self._retriever, state.question, self.top_k, self.snippet_chars)
            note = f"fallback after two unreadable steps ({failure.reason}): searched the question"
            step = make_step(
                state,
                c,
                fallback,
                hits=found.hits,
                observation=found.observation,
                seconds=found.seconds,
                note=note,
            )
            return self._after(state, step)
        note = f"fallback after two unreadable steps ({failure.reason}): final answer asked"
        return replace(state.record(make_step(state, c, invalid, note=note)), phase="final")

    def _after(self, state: AgentState, step: Step) -> AgentState:
        state = state.record(step)
        return replace(state, phase="final") if len(state.steps) >= self.max_steps else state

    def _final(self, state: AgentState, c: Completion) -> AgentState:
        return answer_from(state, c, "forced", note="final answer asked once")

    @property
    def _retriever(self) -> Retriever:
        assert self.retriever is not None, "checked in __init__ for search and verify"
        return self.retriever


def _notes(steps: Sequence[Step]) -> list[str]:
    """What the agent worked out so far, for the final-answer prompt."""
    notes = []
    for step in steps:
        if step.discarded or step.action in ("invalid", "error"):
            continue
        if step.thought:
            notes.append(step.thought)
        if step.action in ("verify", "calculate"):
            first = step.observation.splitlines()[0] if step.observation else ""
            notes.append(f"{step.action}({step.argument}): {first}")
    return notes


def _check_actions(actions: Sequence[str], retriever: Retriever | None) -> tuple[str, ...]:
    """Known actions only; finish is always on (without it a run could only end at Tmax)."""
    unknown = [a for a in actions if a not in ARGUMENTS]
    if unknown:
        raise ConfigError(
            f"agent.actions: unknown action(s) {unknown}; choose from {list(ARGUMENTS)}"
        )
    chosen = tuple(dict.fromkeys(("finish", *actions)))
    if retriever is None and _RETRIEVING & set(chosen):
        raise ValueError("the search and verify actions need a retriever")
    return chosen


class Agent:
    """Entry point: one method (tao, rag, rare or closed) behind ``ask`` / ``ask_many``."""

    def __init__(self, method: Method):
        self.method = method

    @property
    def name(self) -> str:
        return self.method.name

    def ask(self, question: str, on_step: StepCallback | None = None) -> Answer:
        return self.method.ask(question, on_step)

    def ask_many(
        self,
        questions: Sequence[str],
        on_step: StepCallback | None = None,
        on_finished: FinishedCallback | None = None,
    ) -> list[Answer]:
        return self.method.ask_many(questions, on_step, on_finished)

    @classmethod
    def from_config(
        cls,
        cfg: Settings,
        *,
        retriever: Retriever | None = None,
        generator: Generator | None = None,
    ) -> Agent:
        """The method ``cfg.agent.method`` over ``retriever`` (default: the index at
        ``cfg.agent.index_dir``) and ``generator`` (default: built from ``cfg.llm``).

        The index's files are checked before the generator is loaded, so a wrong path
        fails at once rather than after the model load."""
        index_dir = cfg.agent.index_dir
        if retriever is None and cfg.agent.method != "closed":
            if index_dir is None:
                raise ConfigError(
                    f"agent.index_dir: method {cfg.agent.method!r} needs an index to search"
                )
            from reasonrag.index.store import check_index

            check_index(index_dir)
        if generator is None:
            from reasonrag.llm.factory import make_generator

            generator = make_generator(cfg.llm, cfg.cache_dir)
        if retriever is None and index_dir is not None and cfg.agent.method != "closed":
            from reasonrag.index import Index

            retriever = Index.open(index_dir, cfg, generator=generator)
        return cls(build_method(cfg.agent, generator, retriever))


def build_method(cfg: AgentConfig, generator: Generator, retriever: Retriever | None) -> Method:
    if cfg.method == "tao":
        return TaoAgent(
            generator,
            retriever,
            max_steps=cfg.max_steps,
            top_k=cfg.top_k,
            actions=cfg.actions,
            max_tokens=cfg.max_tokens,
            snippet_chars=cfg.snippet_chars,
            worked_example=cfg.worked_example,
        )
    return SinglePass(
        cfg.method,
        generator,
        None if cfg.method == "closed" else retriever,
        top_k=cfg.top_k,
        max_tokens=cfg.max_tokens,
        snippet_chars=cfg.snippet_chars,
    )
