"""A readable rich tree of a reasoning trace, built step by step as the run goes.

Live use::

    view = TraceView(question)
    with rich.live.Live(view, console=console, refresh_per_second=8):
        answer = agent.ask(question, on_step=view)
        view.finish(answer)

All text goes through ``rich.text.Text`` so brackets in documents and chunk ids are never
read as console markup.
"""

from __future__ import annotations

from rich.text import Text
from rich.tree import Tree

from reasonrag.reason.records import Answer, Step

_ACTION_STYLE = {
    "search": "bold cyan",
    "verify": "bold magenta",
    "calculate": "bold blue",
    "rethink": "bold yellow",
    "finish": "bold green",
    "invalid": "bold red",
    "error": "bold red",
}
_STATUS_STYLE = {"finished": "bold green", "forced": "bold yellow", "failed": "bold red"}


class TraceView:
    """The growing tree of one question's run; use it as the ``on_step`` callback and as
    the renderable of a ``rich.live.Live``."""

    def __init__(self, question: str, *, max_hits: int = 5, chars: int = 160):
        self.question = question
        self.max_hits = max_hits
        self.chars = chars
        self._steps: list[Step] = []
        self._answer: Answer | None = None

    def __call__(self, question: str, step: Step) -> None:
        if question == self.question:
            self._steps.append(step)

    def finish(self, answer: Answer) -> None:
        """Show the answer, and the final form of every step (``rethink`` may have set
        earlier ones aside)."""
        self._steps = list(answer.trace.steps)
        self._answer = answer

    def __rich__(self) -> Tree:
        tree = Tree(Text.assemble(("Question: ", "bold"), self.question))
        for step in tuple(self._steps):  # a copy: Live renders from its own thread
            self._add_step(tree, step)
        if self._answer is not None:
            self._add_answer(tree, self._answer)
        return tree

    def _add_step(self, tree: Tree, step: Step) -> None:
        label = Text.assemble(
            (f"{step.index}. ", "dim"),
            (step.action, _ACTION_STYLE.get(step.action, "bold")),
            " ",
            _clip(step.argument, self.chars),
            (f"   {step.prompt_tokens}+{step.completion_tokens} tok, {step.latency_s:.2f}s", "dim"),
        )
        if step.discarded:
            label.stylize("strike")
            label.append("   set aside", style="yellow")
        node = tree.add(label)
        if step.thought:
            node.add(Text(_clip(step.thought, self.chars), style="italic"))
        for hit in step.hits[: self.max_hits]:
            node.add(
                Text.assemble(
                    (f"[{hit.chunk_id}] ", "cyan"), hit.title, (f"  {hit.score:.3f}", "dim")
                )
            )
        if step.observation and (not step.hits or step.action == "verify"):
            node.add(Text(_clip(step.observation.splitlines()[0], self.chars), style="white"))
        if step.note:
            node.add(Text(step.note, style="yellow"))

    def _add_answer(self, tree: Tree, answer: Answer) -> None:
        node = tree.add(
            Text.assemble(
                ("Answer: ", "bold"),
                (answer.answer, _STATUS_STYLE[answer.status]),
                (f"   ({answer.status})", "dim"),
            )
        )
        for cite in answer.citations:
            inferred = "  (inferred)" if cite.inferred else ""
            node.add(Text.assemble((f"[{cite.chunk_id}] ", "cyan"), cite.title, (inferred, "dim")))
        if answer.dropped_citations:
            dropped = ", ".join(answer.dropped_citations)
            node.add(Text(f"dropped citations (not retrieved): {dropped}", style="yellow"))
        u = answer.usage
        node.add(
            Text(
                f"{u.steps} steps, {u.prompt_tokens}+{u.completion_tokens} tokens, "
                f"{u.latency_s:.2f}s",
                style="dim",
            )
        )


def trace_tree(answer: Answer, *, max_hits: int = 5) -> Tree:
    """The finished tree of ``answer`` (for ``--trace`` output after the fact)."""
    view = TraceView(answer.question, max_hits=max_hits)
    view.finish(answer)
    return view.__rich__()


def _clip(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
