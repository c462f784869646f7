"""Evaluation: the resumable runner, an LLM judge, bootstrap statistics, reports and plots.

Loaders and metrics live in ``reasonrag.datasets``, which training shares."""

from reasonrag.eval.judge import JudgeItem, LLMJudge, judge_prompt, parse_verdict
from reasonrag.eval.stats import bootstrap_ci, paired_bootstrap

__all__ = [
    "JudgeItem",
    "LLMJudge",
    "bootstrap_ci",
    "judge_prompt",
    "paired_bootstrap",
    "parse_verdict",
]
