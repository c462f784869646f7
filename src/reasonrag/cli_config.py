"""``reasonrag config``: the effective settings with the source of each value, and a
commented starting file."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, get_args

import tomllib
import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from rich.table import Table

from reasonrag.cli_support import fail, out, settings_or_exit
from reasonrag.config import CONFIG_ENV, Settings, drop_unset

config_app = typer.Typer(
    help="Show or start the configuration.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
ENV_PREFIX = "REASONRAG_"


# --- where each value came from ---------------------------------------------------------------


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def env_keys(environ: Mapping[str, str]) -> set[str]:
    """Dotted setting names the environment sets (``REASONRAG_LLM__MODEL`` -> ``llm.model``)."""
    return {
        name[len(ENV_PREFIX) :].lower().replace("__", ".")
        for name in environ
        if name.startswith(ENV_PREFIX) and name != CONFIG_ENV
    }


def _covered(key: str, keys: set[str]) -> bool:
    # A whole section given at once (env JSON, a TOML inline table) covers its fields.
    parts = key.split(".")
    return any(".".join(parts[:i]) in keys for i in range(1, len(parts) + 1))


def sources(
    settings: Settings,
    toml_path: Path | None,
    overrides: Mapping[str, Any],
    environ: Mapping[str, str],
) -> dict[str, tuple[Any, str]]:
    """Every effective value with its source: flag, env, file or default (highest wins)."""
    file_keys = set(flatten(_read_toml(toml_path))) if toml_path else set()
    layers = (
        ("flag", set(flatten(drop_unset(dict(overrides))))),
        ("env", env_keys(environ)),
        (f"file {toml_path}", file_keys),
    )
    effective = flatten(settings.model_dump(mode="json"))
    return {
        key: (value, next((name for name, keys in layers if _covered(key, keys)), "default"))
        for key, value in effective.items()
    }


def _read_toml(path: Path) -> dict[str, Any]:
    with path.open("rb") as handle:
        return tomllib.load(handle)


def parse_assignments(assignments: list[str]) -> dict[str, Any]:
    """``["agent.max_steps=4", "llm.model=x"]`` -> nested overrides; values are read as
    TOML values when they parse as one (numbers, booleans, arrays), else as strings."""
    nested: dict[str, Any] = {}
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        if not sep or not key.strip():
            fail(f"--set {assignment!r}: expected SECTION.FIELD=VALUE")
        try:
            value: Any = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        *sections, field = key.strip().split(".")
        target = nested
        for section in sections:
            target = target.setdefault(section, {})
        target[field] = value
    return nested


@config_app.command("show")
def show(
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="TOML config file (also $REASONRAG_CONFIG)."),
    ] = None,
    assign: Annotated[
        list[str] | None,
        typer.Option("--set", help="SECTION.FIELD=VALUE, as a command-line flag would set it."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The effective settings and where each value came from (flag > env > file > default)."""
    overrides = parse_assignments(assign or [])
    settings = settings_or_exit(config, **overrides)
    chosen = config if config is not None else os.environ.get(CONFIG_ENV)
    found = sources(settings, Path(chosen) if chosen else None, overrides, os.environ)
    if as_json:
        rows = {key: {"value": value, "source": source} for key, (value, source) in found.items()}
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="effective settings", title_justify="left")
    for name in ("setting", "value", "source"):
        table.add_column(name, overflow="fold")
    for key, (value, source) in found.items():
        style = "dim" if source == "default" else "bold"
        table.add_row(key, json.dumps(value), source, style=style)
    out.print(table)


# --- a commented starting file ------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # JSON strings are TOML basic strings


def _choices(info: FieldInfo) -> str:
    args = [a for a in get_args(info.annotation) if isinstance(a, str)]
    nested = [a for arg in get_args(info.annotation) for a in get_args(arg) if isinstance(a, str)]
    names = args or nested
    return f"one of: {', '.join(names)}" if names else ""


def _field_lines(name: str, info: FieldInfo, value: Any) -> Iterator[str]:
    for line in (info.description or "").splitlines():
        yield f"# {' '.join(line.split())}" if line.strip() else "#"
    if choices := _choices(info):
        yield f"# {choices}"
    yield f"# {name} =" if value is None else f"{name} = {_toml_value(value)}"


def _holds_model(info: FieldInfo) -> bool:
    """A nested section such as ``context.llm`` (an optional LLMConfig)."""
    return any(isinstance(a, type) and issubclass(a, BaseModel) for a in get_args(info.annotation))


def commented_toml(settings: Settings) -> str:
    """The settings as TOML, every field under its description; unset optional fields
    are left commented out."""
    lines = [
        "# reasonrag configuration. Precedence: defaults < this file < environment",
        "# (REASONRAG_SECTION__FIELD) < command-line flags. `reasonrag config show` prints",
        "# the effective values and where each came from.",
        "",
    ]
    sections: list[tuple[str, BaseModel]] = []
    for name, info in Settings.model_fields.items():
        value = getattr(settings, name)
        if isinstance(value, BaseModel):
            sections.append((name, value))
        else:
            lines += [*_field_lines(name, info, value), ""]
    for name, section in sections:
        lines.append(f"[{name}]")
        for field, info in type(section).model_fields.items():
            value = getattr(section, field)
            if _holds_model(info):
                lines.append(f"# [{name}.{field}]: {' '.join((info.description or '').split())}")
                lines.append("# (same fields as [llm])")
                continue
            lines += list(_field_lines(field, info, value))
        lines.append("")
    return "\n".join(lines)


@config_app.command("init")
def init(
    path: Annotated[Path, typer.Argument(help="File to write.")] = Path("reasonrag.toml"),
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented TOML file holding every setting at its default."""
    from reasonrag.files import atomic_write_text

    if path.exists() and not force:
        fail(f"{path} exists; pass --force to overwrite it")
    # Defaults only: the environment of whoever runs init is not part of the file.
    atomic_write_text(path, commented_toml(Settings.model_construct()))
    out.print(f"wrote {path}; use it with --config {path} or REASONRAG_CONFIG={path}")
