"""The command line, in process (CliRunner) and as a real process killed mid-run."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llm_fakes import build_tiny_llama
from reasonrag.cli import app

runner = CliRunner()


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REASONRAG_")}
    env["REASONRAG_CACHE_DIR"] = str(tmp_path / "cache")
    return env


@pytest.mark.parametrize("command", [[], ["index"], ["search"], ["ask"], ["demo"], ["remove"]])
def test_every_command_has_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output


def test_index_then_search_json_with_the_embedded_embedder(
    corpus_dir: Path, tmp_path: Path
) -> None:
    env = _env(tmp_path)
    out = tmp_path / "idx"
    result = runner.invoke(app, ["index", str(corpus_dir), "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    assert "3 documents" in result.output
    result = runner.invoke(
        app, ["search", str(out), "Who rebuilt the mill in stone?", "-k", "2", "--json"], env=env
    )
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)
    assert len(hits) == 2
    assert hits[0]["doc_id"] == "mill.md"
    assert {"dense", "sparse", "fusion"} <= set(hits[0]["stage_scores"])


def test_bad_input_exits_2_with_a_message(tmp_path: Path) -> None:
    env = _env(tmp_path)
    result = runner.invoke(app, ["search", str(tmp_path), "anything"], env=env)
    assert result.exit_code == 2
    assert "manifest.json is missing" in result.output
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text('[retrieval]\nfusion = "average"\n')
    result = runner.invoke(
        app, ["search", str(tmp_path), "q", "--config", str(bad_config)], env=env
    )
    assert result.exit_code == 2
    assert "retrieval.fusion" in result.output and "bad.toml" in result.output
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "blob.bin").write_bytes(b"\x00\x01")
    result = runner.invoke(app, ["index", str(empty), "--out", str(tmp_path / "o")], env=env)
    assert result.exit_code == 2
    assert "no indexable documents" in result.output


def _rows(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM completions").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def test_killed_index_run_resumes_without_recomputing(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(12):
        (docs / f"n{i:02d}.txt").write_text(f"Note {i} on the fox and the dog.")
    model = build_tiny_llama(tmp_path / "tiny")
    env = _env(tmp_path)
    env |= {"REASONRAG_CONTEXT__BATCH_SIZE": "1", "REASONRAG_CONTEXT__MAX_TOKENS": "64"}
    command = [
        sys.executable, "-m", "reasonrag.cli", "index", str(docs), "--out", str(tmp_path / "idx"),
        "--context", "llm", "--backend", "local", "--model", str(model),
    ]  # fmt: skip
    db = tmp_path / "cache" / "responses.sqlite"
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.monotonic() + 240
    while _rows(db) < 3 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_before_kill = _rows(db)
    assert 3 <= done_before_kill < 12, "the kill must land while contexts are being written"
    assert not (tmp_path / "idx" / "manifest.json").exists()

    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    output = rerun.stdout + rerun.stderr
    assert f"contexts: {done_before_kill} reused from cache, {12 - done_before_kill} written" in (
        " ".join(output.split())
    )
    assert (tmp_path / "idx" / "manifest.json").exists()

    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0
    squashed = " ".join((again.stdout + again.stderr).split())
    assert "contexts: 12 reused from cache, 0 written" in squashed
    assert "embeddings: 12 reused from cache, 0 computed" in squashed


def test_ask_prints_the_record_and_draws_the_trace(tmp_path: Path) -> None:
    model = build_tiny_llama(tmp_path / "tiny")
    env = _env(tmp_path) | {"REASONRAG_AGENT__MAX_TOKENS": "12"}
    base = ["ask", str(tmp_path), "Where is the fox?", "--method", "closed"]
    base += ["--backend", "local", "--model", str(model)]
    result = runner.invoke(app, [*base, "--json"], env=env)
    assert result.exit_code in (0, 1), result.output
    record = json.loads(result.stdout)
    assert record["status"] in {"finished", "failed"}
    assert record["usage"]["steps"] >= 1
    drawn = runner.invoke(app, base, env=env)
    assert "Question: Where is the fox?" in drawn.output
    assert "Answer:" in drawn.output
