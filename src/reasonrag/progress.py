"""Progress bars for long jobs (rich), one shape for indexing, evaluation and training."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

Advance = Callable[..., None]
"""``advance(n, description=None)``: n more items done; a description replaces the label."""

NON_TERMINAL_WIDTH = 200
"""Rich wraps to 80 columns when output is piped or captured, squeezing table headers to
"pipel…"; logs and CI output have room for more."""


def make_console(*, stderr: bool = False) -> Console:
    """A console that is as wide as the terminal, or ``NON_TERMINAL_WIDTH`` when not one."""
    made = Console(stderr=stderr)
    if not made.is_terminal:
        made.width = NON_TERMINAL_WIDTH
    return made


console = make_console(stderr=True)


@contextmanager
def progress_task(
    description: str, total: int | None, *, enabled: bool = True
) -> Iterator[Advance]:
    """Yield a function that advances a progress bar by n items and can relabel it (e.g.
    with running metrics). A ``total`` of None is a count not known in advance (files found
    while a folder is walked): the bar pulses and counts."""
    if not enabled or total == 0:
        yield lambda n, description=None: None
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(description, total=total)

        def advance(n: int, description: str | None = None) -> None:
            bar.update(task, advance=n, description=description)

        yield advance


def quiet_model_loading() -> None:
    """Keep model loading offline and free of transformers' own progress bars.

    reasonrag only loads local files, so a hub lookup could only be a misconfiguration;
    offline mode turns it into an immediate error instead of a network wait."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
