"""What every ``reasonrag`` command shares: consoles, exit codes and error reporting."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from reasonrag.config import Settings, load_settings
from reasonrag.errors import ConfigError, ReasonRAGError
from reasonrag.progress import make_console

out = make_console()
err = make_console(stderr=True)

EXIT_FAILURE = 1
"""The work failed (a backend gave up, a question could not be answered)."""
EXIT_BAD_INPUT = 2
"""The input was wrong (missing file, invalid config, not an index); as Typer's usage errors.
Each ``ReasonRAGError`` class carries its own code (see ``reasonrag.errors``)."""


ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML config file (also $REASONRAG_CONFIG)."),
]


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


@contextmanager
def reported_errors() -> Iterator[None]:
    """A ``ReasonRAGError`` becomes one red line and its class's exit code; any other
    exception is a bug and keeps its traceback (exit 1)."""
    try:
        yield
    except ReasonRAGError as exc:
        fail(str(exc), exc.exit_code)


def settings_or_exit(config: Path | None, **overrides: Any) -> Settings:
    try:
        return load_settings(config, **overrides)
    except ConfigError as exc:
        fail(str(exc))
