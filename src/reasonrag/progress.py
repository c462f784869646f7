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

console = Console(stderr=True)


@contextmanager
def progress_task(description: str, total: int, *, enabled: bool = True) -> Iterator[Advance]:
    """Yield a function that advances a progress bar by n items and can relabel it (e.g.
    with running metrics)."""
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
