"""``reasonrag eval``: run, report and compare through the Typer sub-app.

Runs go through the real OpenAI-compatible generator and embedder clients against a local
fake server (it answers "echo <prompt>"), so the whole pipeline is exercised offline."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from eval_fakes import prediction, write_hotpot, write_run
from llm_fakes import fake_api_server
from reasonrag.eval.cli import eval_app


def flat(output: str) -> str:
    """Console output with line wrapping and error boxes undone (rich wraps long messages)."""
    return " ".join(output.replace("│", " ").split())


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for var in [v for v in os.environ if v.startswith("REASONRAG_")]:
        monkeypatch.delenv(var)
    with fake_api_server() as server:
        path = tmp_path / "reasonrag.toml"
        path.write_text(
            f'cache_dir = "{tmp_path / "cache"}"\n'
            f'[llm]\nbackend = "openai"\nmodel = "fake-llm"\nbase_url = "{server.openai_url}"\n'
            f'[embed]\nbackend = "openai"\nmodel = "fake-embed"\nbase_url = "{server.openai_url}"\n'
        )
        yield path


def test_run_writes_a_run_folder_and_resumes(
    tmp_path: Path, runner: CliRunner, config: Path
) -> None:
    data = write_hotpot(tmp_path / "hotpot" / "dev.jsonl")
    run_dir = tmp_path / "run"
    args = ["run", "--dataset", "hotpotqa", "--path", str(data.parent), "--method", "rag"]
    args += ["--n", "3", "--batch", "2", "--out", str(run_dir), "-c", str(config)]
    args += ["--no-progress"]
    result = runner.invoke(eval_app, args)
    assert result.exit_code == 0, result.output
    assert "| hotpotqa | rag | 3 |" in result.output
    assert "3 questions answered now, 0 resumed" in flat(result.output)
    for name in ("run.json", "predictions.jsonl", "traces.jsonl", "summary.json", "summary.md"):
        assert (run_dir / name).is_file(), name
    assert (run_dir / "index" / "manifest.json").is_file()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["n"] == 3 and summary["config"]["generator"].endswith("fake-llm")
    assert "retrieved_recall" in summary["metrics"]

    again = runner.invoke(eval_app, args)
    assert again.exit_code == 0, again.output
    assert "0 questions answered now, 3 resumed" in flat(again.output)


def test_resume_with_other_settings_fails_cleanly(
    tmp_path: Path, runner: CliRunner, config: Path
) -> None:
    data = write_hotpot(tmp_path / "dev.jsonl")
    args = ["run", "--dataset", "hotpotqa", "--path", str(data), "--method", "closed"]
    args += ["--n", "2", "--out", str(tmp_path / "run"), "-c", str(config), "--no-progress"]
    assert runner.invoke(eval_app, args).exit_code == 0
    result = runner.invoke(eval_app, [*args, "--top-k", "3"])
    assert result.exit_code == 2
    message = flat(result.output)
    assert "other settings" in message and "agent.top_k: 5 -> 3" in message


def test_unknown_dataset_is_a_bad_input(tmp_path: Path, runner: CliRunner, config: Path) -> None:
    result = runner.invoke(
        eval_app, ["run", "--dataset", "trivia", "--out", str(tmp_path / "r"), "-c", str(config)]
    )
    assert result.exit_code == 2 and "'trivia' is not one of 'hotpotqa'" in flat(result.output)


def test_unknown_method_lists_the_choices(tmp_path: Path, runner: CliRunner, config: Path) -> None:
    result = runner.invoke(
        eval_app, ["run", "--dataset", "demo", "--method", "magic", "-c", str(config)]
    )
    assert result.exit_code == 2 and "'magic' is not one of 'tao', 'rag'" in flat(result.output)


def test_compare_prints_the_signed_difference(tmp_path: Path, runner: CliRunner) -> None:
    a = write_run(tmp_path / "a", [prediction(str(i), 1.0, 1.0) for i in range(4)])
    b = write_run(tmp_path / "b", [prediction(str(i), float(i < 1), 0.5) for i in range(4)])
    result = runner.invoke(eval_app, ["compare", str(a), str(b)])
    assert result.exit_code == 0, result.output
    em_row = next(line for line in result.output.splitlines() if line.strip("│ ").startswith("EM "))
    assert "+0.750" in em_row and "1.000" in em_row and "0.250" in em_row
    reverse = runner.invoke(eval_app, ["compare", str(b), str(a)])
    assert "-0.750" in reverse.output


def test_compare_of_a_missing_run(tmp_path: Path, runner: CliRunner) -> None:
    a = write_run(tmp_path / "a", [prediction("x", 1.0, 1.0)])
    result = runner.invoke(eval_app, ["compare", str(a), str(tmp_path / "nope")])
    assert result.exit_code == 2 and "run.json is missing" in flat(result.output)


def test_report_of_several_runs(tmp_path: Path, runner: CliRunner) -> None:
    a = write_run(tmp_path / "a", [prediction("x", 1.0, 1.0)], method="rag")
    b = write_run(tmp_path / "b", [prediction("x", 0.0, 0.0)], method="tao")
    out = tmp_path / "report"
    result = runner.invoke(eval_app, ["report", str(a), str(b), "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = (out / "report.md").read_text()
    assert "| toy | rag | 1 |" in table and "| toy | tao | 1 |" in table
    assert (out / "metrics.png").stat().st_size > 0 and (b / "steps.png").is_file()
