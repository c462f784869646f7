"""The CLI as a careful newcomer and a hostile tester use it: flags never override the file
unless given, input is checked before models load, errors are one clear line with the right
exit code, and bugs are not disguised as bad input."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any, get_args

import pytest
import tomllib
import typer
from typer.testing import CliRunner

from conftest import HashEmbedder
from reason_fakes import ScriptedGenerator
from reasonrag import cli as cli_module
from reasonrag import cli_config as cli_config_module
from reasonrag.cli import app
from reasonrag.config import ActionName, Settings, load_settings
from reasonrag.eval import cli as eval_cli_module
from reasonrag.index import Index
from reasonrag.reason.parse import ARGUMENTS

runner = CliRunner()

FILE_VALUES = {
    "llm": {"backend": "openai", "model": "m-from-file", "base_url": "http://127.0.0.1:9/v1"},
    "context": {"mode": "none"},
    "retrieval": {"rerank": "llm", "fusion": "dense"},
    "agent": {"method": "rag", "max_steps": 3, "top_k": 2, "actions": ["search", "calculate"]},
}


def flat(output: str) -> str:
    return " ".join(output.replace("│", " ").split())


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REASONRAG_")}
    return env | {"REASONRAG_CACHE_DIR": str(tmp_path / "cache")}


def _toml(values: dict[str, dict[str, Any]]) -> str:
    lines = []
    for section, fields in values.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in fields.items()]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "command",
    [
        ["index", "DOCS", "--out", "OUT"],
        ["search", "OUT", "a query"],
        ["ask", "OUT", "a question"],
        ["remove", "OUT", "doc"],
        ["demo"],
        ["eval", "run", "--dataset", "demo"],
        ["config", "show"],
    ],
)
def test_flags_not_given_never_override_the_config_file(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(_toml(FILE_VALUES))
    captured: list[Settings] = []

    def capture(path: Path | None, **overrides: Any) -> Settings:
        captured.append(load_settings(path, **overrides))
        raise typer.Exit(99)  # stop before any work: only the settings are under test

    for module in (cli_module, eval_cli_module, cli_config_module):
        monkeypatch.setattr(module, "settings_or_exit", capture)
    args = [a.replace("DOCS", str(tmp_path)).replace("OUT", str(tmp_path / "o")) for a in command]
    result = runner.invoke(app, [*args, "--config", str(config)], env=_env(tmp_path))
    assert result.exit_code == 99, result.output
    settings = captured[0].model_dump(mode="json")
    for section, fields in FILE_VALUES.items():
        for key, value in fields.items():
            assert settings[section][key] == value, f"{' '.join(command)}: {section}.{key}"


def test_settings_from_a_file_can_be_pickled(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(_toml(FILE_VALUES))
    settings = load_settings(config)
    copy = pickle.loads(pickle.dumps(settings))
    assert type(copy) is Settings and copy == settings
    assert copy.model_fields_set == settings.model_fields_set


def test_the_config_action_names_are_the_agents() -> None:
    assert set(get_args(ActionName)) == set(ARGUMENTS)


# --- checks before slow work -----------------------------------------------------------------


@pytest.fixture
def no_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to load a generator fails the test: the input should be refused first."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a model was loaded before the input was checked")

    monkeypatch.setattr("reasonrag.llm.factory.make_generator", refuse)


def test_ask_checks_the_index_before_loading_a_model(no_models: None, tmp_path: Path) -> None:
    result = runner.invoke(app, ["ask", str(tmp_path), "Who?"], env=_env(tmp_path))
    assert result.exit_code == 2 and "manifest.json is missing" in flat(result.output)


def test_ask_checks_actions_before_loading_a_model(no_models: None, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["ask", str(tmp_path), "Who?", "--actions", "search,browse"], env=_env(tmp_path)
    )
    assert result.exit_code == 2 and "agent.actions" in flat(result.output)


def test_empty_question_and_query_and_k_below_one_are_errors(tmp_path: Path) -> None:
    env = _env(tmp_path)
    assert "the question is empty" in runner.invoke(app, ["ask", "  "], env=env).output
    result = runner.invoke(app, ["search", str(tmp_path), " "], env=env)
    assert result.exit_code == 2 and "the query is empty" in result.output
    result = runner.invoke(app, ["search", str(tmp_path), "q", "-k", "0"], env=env)
    assert result.exit_code == 2 and "greater than or equal to 1" in flat(result.output)


def test_closed_book_ask_needs_no_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        "reasonrag.llm.factory.make_generator", lambda *a, **k: ScriptedGenerator(["Pellmoor"])
    )
    result = runner.invoke(
        app, ["ask", "Where was Haldane born?", "--method", "closed", "--json"], env=_env(tmp_path)
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["answer"] == "Pellmoor"


def test_choices_are_listed_in_help() -> None:
    def shown(command: str) -> str:
        return runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"}).output

    assert "llm|title|structure|none" in shown("index")
    assert "tao|rag|rare|closed" in shown("ask")
    assert "rrf|weighted|dense|sparse" in shown("search")


# --- an index on the command line -----------------------------------------------------------


@pytest.fixture
def built(corpus_dir: Path, tmp_path: Path) -> Path:
    settings = load_settings(cache_dir=tmp_path / "cache")
    out = tmp_path / "idx"
    Index.build([corpus_dir], settings, out, embedder=HashEmbedder(), progress=False)
    return out


def test_info_lists_what_the_index_holds_without_a_model(
    built: Path, no_models: None, tmp_path: Path
) -> None:
    result = runner.invoke(app, ["info", str(built)], env=_env(tmp_path))
    assert result.exit_code == 0, result.output
    for text in ("harbour.md", "mill.md", "notes.txt", "test:hash64", "chunks", "size"):
        assert text in result.output
    record = json.loads(runner.invoke(app, ["info", str(built), "--json"]).stdout)
    assert record["documents_total"] == 3
    assert sum(d["chunks"] for d in record["documents"]) == record["chunks"]


def test_remove_of_an_unknown_id_says_so_and_removes_nothing(
    built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("reasonrag.index.index.make_embedder", lambda cfg: HashEmbedder())
    env = _env(tmp_path)
    result = runner.invoke(app, ["remove", str(built), "mill.md", "mil.md"], env=env)
    assert result.exit_code == 2 and "holds no document 'mil.md'" in flat(result.output)
    assert "mill.md" in runner.invoke(app, ["info", str(built)]).output
    result = runner.invoke(app, ["remove", str(built), "mill.md"], env=env)
    assert result.exit_code == 0 and "removed 1 documents" in result.output


def test_index_into_a_users_folder_is_refused_before_loading_anything(
    corpus_dir: Path, tmp_path: Path
) -> None:
    mine = tmp_path / "mine"
    (mine / "gen-1").mkdir(parents=True)
    result = runner.invoke(app, ["index", str(corpus_dir), "--out", str(mine)], env=_env(tmp_path))
    assert result.exit_code == 2 and "is not a reasonrag index" in flat(result.output)
    assert (mine / "gen-1").is_dir()


def test_an_unexpected_bug_is_a_traceback_with_exit_1(
    built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def bug(*args: object, **kwargs: object) -> None:
        raise ValueError("a bug, not bad input")

    monkeypatch.setattr(Index, "open", bug)
    result = runner.invoke(app, ["search", str(built), "q"], env=_env(tmp_path))
    assert result.exit_code == 1
    assert isinstance(result.exception, ValueError)


def test_tables_keep_their_headers_when_output_is_not_a_terminal(built: Path) -> None:
    result = runner.invoke(app, ["config", "show"])
    assert "setting" in result.output and "source" in result.output
    assert "…" not in result.output.split("\n")[1]


# --- config ------------------------------------------------------------------------------------


def test_config_show_names_the_source_of_each_value(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[agent]\nmax_steps = 3\n[llm]\nmodel = "from-file"\n')
    env = _env(tmp_path) | {"REASONRAG_AGENT__TOP_K": "7"}
    result = runner.invoke(
        app,
        ["config", "show", "-c", str(config), "--set", "llm.model=from-flag", "--json"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert rows["agent.max_steps"] == {"value": 3, "source": f"file {config}"}
    assert rows["agent.top_k"] == {"value": 7, "source": "env"}
    assert rows["llm.model"] == {"value": "from-flag", "source": "flag"}
    assert rows["agent.method"] == {"value": "tao", "source": "default"}


def test_config_init_writes_a_commented_file_that_loads_as_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "reasonrag.toml"
    result = runner.invoke(app, ["config", "init", str(path)], env=_env(tmp_path))
    assert result.exit_code == 0, result.output
    text = path.read_text()
    assert "# Tmax:" in text and "# one of: rrf, weighted, dense, sparse" in text
    tomllib.loads(text)
    defaults = Settings.model_construct()
    loaded = load_settings(path)
    assert loaded.model_dump() == defaults.model_dump()
    again = runner.invoke(app, ["config", "init", str(path)])
    assert again.exit_code == 2 and "--force" in again.output
