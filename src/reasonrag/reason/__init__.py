"""Reasoning over an index: the Thought-Action-Observation agent, single-pass baselines,
answers with citations and full traces. Rendering lives in ``reasonrag.reason.render``."""

from reasonrag.reason.agent import Agent, TaoAgent, build_method
from reasonrag.reason.baselines import SinglePass
from reasonrag.reason.calculate import CalcError, calculate
from reasonrag.reason.machine import (
    AgentState,
    FinishedCallback,
    Method,
    StepCallback,
    StepMachine,
)
from reasonrag.reason.records import (
    NO_ANSWER,
    Answer,
    Citation,
    Outcome,
    Step,
    Trace,
    Usage,
    save_traces,
)

__all__ = [
    "NO_ANSWER",
    "Agent",
    "AgentState",
    "Answer",
    "CalcError",
    "Citation",
    "FinishedCallback",
    "Method",
    "Outcome",
    "SinglePass",
    "Step",
    "StepCallback",
    "StepMachine",
    "TaoAgent",
    "Trace",
    "Usage",
    "build_method",
    "calculate",
    "save_traces",
]
