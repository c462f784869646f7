"""Progress bars: known and unknown totals, and relabelling."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from reasonrag import progress


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    buffer = io.StringIO()
    monkeypatch.setattr(progress, "console", Console(file=buffer, width=120, force_terminal=False))
    return buffer


def test_a_known_total_counts_up_to_it(captured: io.StringIO) -> None:
    with progress.progress_task("Embedding chunks", 4) as advance:
        advance(3)
        advance(1, description="Embedding chunks (done)")
    assert "4/4" in captured.getvalue() and "(done)" in captured.getvalue()


def test_an_unknown_total_counts_without_one(captured: io.StringIO) -> None:
    with progress.progress_task("Loading files", None) as advance:
        for _ in range(5):
            advance(1)
    assert "5/?" in captured.getvalue()


def test_a_disabled_bar_prints_nothing(captured: io.StringIO) -> None:
    with progress.progress_task("Loading files", 10, enabled=False) as advance:
        advance(10)
    assert captured.getvalue() == ""
