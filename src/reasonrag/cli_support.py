"""What every ``reasonrag`` command shares: consoles, exit codes and error reporting."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console

from reasonrag.config import ConfigError, Settings, load_settings

out = Console()
err = Console(stderr=True)

EXIT_FAILURE = 1
"""The work failed (a backend gave up, a question could not be answered)."""
EXIT_BAD_INPUT = 2
"""The input was wrong (missing file, invalid config, not an index); as Typer's usage errors."""


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


@contextmanager
def reported_errors(*bad_input: type[Exception]) -> Iterator[None]:
    """Known failures become one red line and a conventional exit code, not a traceback.

    ``bad_input`` adds a command's own exceptions to those that mean bad input."""
    from reasonrag.index import EmptyIndexError, IndexFormatError, IndexMismatchError
    from reasonrag.llm.base import GenerationError

    known: tuple[type[Exception], ...] = (
        ConfigError,
        IndexFormatError,
        IndexMismatchError,
        EmptyIndexError,
        FileNotFoundError,
        *bad_input,
    )
    try:
        yield
    except known as exc:
        fail(str(exc))
    except GenerationError as exc:
        fail(str(exc), EXIT_FAILURE)


def settings_or_exit(config: Path | None, **overrides: Any) -> Settings:
    try:
        return load_settings(config, **overrides)
    except ConfigError as exc:
        fail(str(exc))
