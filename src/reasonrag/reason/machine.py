"""The resumable state all methods run on, and the driver that batches many runs.

A method is a step machine: ``start`` a question, ask ``pending_prompt`` what to generate
next (None once finished), feed the completion to ``advance``. ``ask_many`` advances every
question in lockstep, so each round costs one ``generate`` call for all of them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal, Protocol

from reasonrag.index.records import Hit
from reasonrag.llm.base import (
    Completion,
    GenerationError,
    Generator,
    GenParams,
    Prompt,
    as_messages,
)
from reasonrag.reason.actions import query_key
from reasonrag.reason.citations import conclude
from reasonrag.reason.guard import INJECTION_NOTE, injected_answer
from reasonrag.reason.parse import ParsedAction, parse_answer
from reasonrag.reason.records import (
    NO_ANSWER,
    Answer,
    Generation,
    Outcome,
    Purpose,
    Status,
    Step,
    Trace,
    Usage,
)

Phase = Literal["act", "final"]
"""``act``: the next generation is a Thought-Action step (or a pending verify's verdict);
``final``: the single final-answer request."""

StepCallback = Callable[[str, Step], None]
"""Called with the question and each step as soon as it is recorded."""

FinishedCallback = Callable[[list[tuple[int, Answer]]], None]
"""Called after each round with the (position, answer) of every question it finished, so a
caller can save answers as they come rather than when the whole batch is done."""


@dataclass(frozen=True)
class AgentState:
    question: str
    steps: tuple[Step, ...] = ()
    phase: Phase = "act"
    reasked: bool = False
    """The last step was unreadable and the model was asked again."""
    pending: Step | None = None
    """A verify step waiting for its verdict."""
    outcome: Outcome | None = None
    generations: tuple[Generation, ...] = ()
    """Every generation of the run so far, prompt and completion as sent and received."""

    @property
    def done(self) -> bool:
        return self.outcome is not None

    @property
    def evidence(self) -> tuple[Hit, ...]:
        """Every chunk retrieved and not set aside, in order of first retrieval."""
        return _unique(h for s in self.steps if not s.discarded for h in s.hits)

    @property
    def retrieved(self) -> tuple[Hit, ...]:
        """Every chunk retrieved, set aside or not."""
        return _unique(h for s in self.steps for h in s.hits)

    @property
    def last_search(self) -> tuple[Hit, ...]:
        return next((s.hits for s in reversed(self.steps) if s.hits and not s.discarded), ())

    @property
    def seen_queries(self) -> frozenset[str]:
        return frozenset(query_key(s.argument) for s in self.steps if s.action == "search")

    def record(self, step: Step) -> AgentState:
        return replace(self, steps=(*self.steps, step))

    @property
    def purpose(self) -> Purpose:
        """What the next generation is for."""
        if self.pending is not None:
            return "verdict"
        if self.phase == "final":
            return "final"
        return "reask" if self.reasked else "step"


def _unique(hits: Iterable[Hit]) -> tuple[Hit, ...]:
    seen: dict[str, Hit] = {}
    for hit in hits:
        seen.setdefault(hit.chunk_id, hit)
    return tuple(seen.values())


def make_step(
    state: AgentState,
    completion: Completion,
    act: ParsedAction,
    *,
    hits: tuple[Hit, ...] = (),
    observation: str = "",
    seconds: float = 0.0,
    note: str = "",
) -> Step:
    """The next step of ``state``: ``act`` as generated in ``completion``, plus what it did
    (``seconds`` is the action's own time, added to the generation latency)."""
    return Step(
        index=len(state.steps) + 1,
        action=act.name,
        argument=act.argument,
        thought=act.thought,
        hits=hits,
        observation=observation,
        raw=completion.text,
        prompt_tokens=completion.prompt_tokens,
        completion_tokens=completion.completion_tokens,
        latency_s=completion.latency_s + seconds,
        note=note,
    )


def answer_from(
    state: AgentState, completion: Completion, status: Status, note: str = ""
) -> AgentState:
    """Finish ``state`` with the answer read from a final-answer completion.

    An answer whose only source is instruction-like document text ends as "could not
    answer": there is no further generation to re-ask with."""
    thought, text = parse_answer(completion.text)
    outcome = conclude(text, (), state.evidence, state.last_search, status)
    if injected_answer(outcome.answer, state.retrieved, state.question):
        outcome, note = Outcome(NO_ANSWER, "failed"), INJECTION_NOTE
    step = make_step(state, completion, ParsedAction(thought, "finish", text), note=note)
    return replace(state.record(step), outcome=outcome)


class Method(Protocol):
    """What the TAO agent and every baseline offer."""

    generator: Generator

    @property
    def name(self) -> str: ...

    def ask(self, question: str, on_step: StepCallback | None = None) -> Answer: ...

    def ask_many(
        self,
        questions: Sequence[str],
        on_step: StepCallback | None = None,
        on_finished: FinishedCallback | None = None,
    ) -> list[Answer]: ...


class StepMachine(ABC):
    """Base of every method: subclasses define one run's steps, this class drives runs."""

    name: str
    generator: Generator
    params: GenParams

    @abstractmethod
    def start(self, question: str) -> AgentState: ...

    @abstractmethod
    def pending_prompt(self, state: AgentState) -> Prompt | None: ...

    @abstractmethod
    def advance(self, state: AgentState, completion: Completion) -> AgentState: ...

    def purpose(self, state: AgentState) -> Purpose:
        """What the generation for ``state``'s pending prompt is for."""
        return state.purpose

    @staticmethod
    def record_generation(
        after: AgentState, purpose: Purpose, prompt: Prompt, completion: Completion
    ) -> AgentState:
        """``after`` (the state the completion led to) with that generation recorded."""
        generation = Generation(
            purpose=purpose,
            step=len(after.steps) + (after.pending is not None),
            messages=as_messages(prompt),
            completion=completion.text,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            finish_reason=completion.finish_reason,
        )
        return replace(after, generations=(*after.generations, generation))

    def fail(self, state: AgentState, reason: str) -> AgentState:
        """End the run as "could not answer", recording why."""
        step = Step(len(state.steps) + 1, "error", observation=reason)
        return replace(state.record(step), outcome=Outcome(NO_ANSWER, "failed"))

    def result(self, state: AgentState) -> Answer:
        if state.outcome is None:
            raise RuntimeError("result() of a run that has not finished")
        out = state.outcome
        return Answer(
            answer=out.answer,
            status=out.status,
            citations=out.citations,
            trace=Trace(state.question, self.name, state.steps, state.generations),
            usage=Usage.of(state.steps),
            dropped_citations=out.dropped_citations,
        )

    def ask(self, question: str, on_step: StepCallback | None = None) -> Answer:
        return self.ask_many([question], on_step)[0]

    def ask_many(
        self,
        questions: Sequence[str],
        on_step: StepCallback | None = None,
        on_finished: FinishedCallback | None = None,
    ) -> list[Answer]:
        states = [self.start(q) for q in questions]
        shown = [0] * len(states)
        reported = [False] * len(states)

        def publish(i: int) -> None:
            if on_step is not None:
                for step in states[i].steps[shown[i] :]:
                    on_step(states[i].question, step)
            shown[i] = len(states[i].steps)

        def report_finished() -> None:
            finished = [i for i, s in enumerate(states) if s.done and not reported[i]]
            for i in finished:
                reported[i] = True
            if on_finished is not None and finished:
                on_finished([(i, self.result(states[i])) for i in finished])

        for i in range(len(states)):
            publish(i)
        report_finished()
        while todo := self._pending(states):
            try:
                completions = self.generator.generate([p for _, p in todo], self.params)
            except GenerationError as exc:
                for i, _ in todo:
                    states[i] = self.fail(states[i], f"generation failed: {exc}")
                    publish(i)
                report_finished()
                continue
            for (i, prompt), completion in zip(todo, completions, strict=True):
                states[i] = self.record_generation(
                    self.advance(states[i], completion), self.purpose(states[i]), prompt, completion
                )
                publish(i)
            report_finished()
        return [self.result(s) for s in states]

    def _pending(self, states: Sequence[AgentState]) -> list[tuple[int, Prompt]]:
        pending = ((i, self.pending_prompt(s)) for i, s in enumerate(states))
        return [(i, p) for i, p in pending if p is not None]
