"""Lenient readers for what models write: a Thought plus one Action, or a final answer.

Small models wrap the action JSON in code fences, add trailing text, use single quotes,
forget a closing brace or write ``search("...")``; all of these still parse. What cannot be
read comes back as a ``ParseFailure`` whose reason is shown to the model when it is re-asked.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

ARGUMENTS: Mapping[str, str | None] = {
    "search": "query",
    "finish": "answer",
    "verify": "claim",
    "calculate": "expression",
    "rethink": None,
}
"""Every action and the name of its one parameter (rethink takes none)."""

MAX_ACTION_CHARS = 4000
_NAME_KEYS = ("function", "name", "action", "tool")
_PARAM_KEYS = ("parameters", "arguments", "args", "input", "params")
_ACTION_MARK = re.compile(r"\baction\s*:", re.IGNORECASE)
_THOUGHT_MARK = re.compile(r"^\s*thought\s*:\s*", re.IGNORECASE)
_FENCE = re.compile(r"```[a-zA-Z]*")
_CALL = re.compile(r"\b(" + "|".join(ARGUMENTS) + r")\s*\(", re.IGNORECASE)
_BY_PARAMETER = {param: name for name, param in ARGUMENTS.items() if param}


@dataclass(frozen=True)
class ParsedAction:
    thought: str
    name: str
    argument: str
    citations: tuple[str, ...] = ()
    """Chunk ids listed in a ``citations`` field of a finish action."""


@dataclass(frozen=True)
class ParseFailure:
    thought: str
    reason: str


def parse_step(text: str, allowed: Collection[str]) -> ParsedAction | ParseFailure:
    """Read the thought and the first action in ``text``; ``allowed`` are the enabled actions."""
    thought, rest = _split_thought(text)
    found = _json_action(rest) or _call_action(rest)
    if found is None:
        return ParseFailure(thought, "no Action with a JSON object was found")
    name, params = found
    if name not in ARGUMENTS:
        return ParseFailure(thought, f"unknown action {name!r}; use one of {_listing(allowed)}")
    if name not in allowed:
        return ParseFailure(
            thought, f"action {name!r} is not enabled; use one of {_listing(allowed)}"
        )
    key = ARGUMENTS[name]
    argument = _argument(params, key) if key else ""
    if key and not argument:
        return ParseFailure(thought, f"{name} needs a non-empty {key!r} parameter")
    return ParsedAction(thought, name, argument, _citations(params))


def _listing(names: Collection[str]) -> str:
    return ", ".join(n for n in ARGUMENTS if n in names)


def _split_thought(text: str) -> tuple[str, str]:
    """Thought is everything before the ``Action:`` mark (or before the action itself)."""
    text = _FENCE.sub("", text)
    mark = _ACTION_MARK.search(text)
    if mark is not None:
        head, rest = text[: mark.start()], text[mark.end() :]
    else:
        starts = [m.start() for m in (re.search(r"\{", text), _CALL.search(text)) if m]
        cut = min(starts, default=len(text))
        head, rest = text[:cut], text[cut:]
    return " ".join(_THOUGHT_MARK.sub("", head).split()), rest


def _json_action(text: str) -> tuple[str, Any] | None:
    start = text.find("{")
    if start < 0:
        return None
    for candidate in _balanced(text[start : start + MAX_ACTION_CHARS]):
        obj = _load_object(candidate)
        if obj is not None:
            return _name_and_params(obj)
    return None


def _balanced(text: str) -> list[str]:
    """The first brace-balanced object in ``text``; when the text runs out first, closings
    of it as truncated (close the open string and braces) and as followed by stray text
    (cut after the last closed string or brace, then close the braces)."""
    depth, quote, escaped = 0, "", False
    last_end, last_depth = 0, 0
    for i, char in enumerate(text):
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = ""
                last_end, last_depth = i + 1, depth
        elif char in "\"'":
            quote = char
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return [text[: i + 1]]
            last_end, last_depth = i + 1, depth
    truncated = text.rstrip().rstrip(",") + quote + "}" * depth
    return [truncated, text[:last_end] + "}" * last_depth]


def _load_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        try:
            # Python literal syntax covers single-quoted JSON; literal_eval runs no code.
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return None
    return value if isinstance(value, dict) else None


def _name_and_params(obj: dict[str, Any]) -> tuple[str, Any] | None:
    name = next((obj[k] for k in _NAME_KEYS if isinstance(obj.get(k), str)), None)
    params = next((obj[k] for k in _PARAM_KEYS if k in obj), None)
    if params is None:
        params = {k: v for k, v in obj.items() if k not in _NAME_KEYS}
    if isinstance(params, str):
        params = _load_object(params) or params  # OpenAI-style JSON-encoded arguments
    if name is None and isinstance(params, dict):
        name = next((_BY_PARAMETER[k] for k in params if k in _BY_PARAMETER), None)
    if name is None:
        return None
    return name.strip().lower().removesuffix("()"), params


def _call_action(text: str) -> tuple[str, Any] | None:
    """``search("q")``, ``search(query='q')`` or ``rethink()`` on the action's line."""
    match = _CALL.search(text)
    if match is None:
        return None
    line = text[match.start() :].split("\n", 1)[0]
    call = line[: line.rfind(")") + 1]
    try:
        node = ast.parse(call, mode="eval").body
    except SyntaxError:
        return None
    if not isinstance(node, ast.Call):
        return None
    values = [a.value for a in node.args if isinstance(a, ast.Constant)]
    values += [k.value.value for k in node.keywords if isinstance(k.value, ast.Constant)]
    return match.group(1).lower(), (values[0] if values else {})


def _argument(params: Any, key: str) -> str:
    if isinstance(params, dict):
        value = params.get(key)
        if value is None and len(params) == 1:
            value = next(iter(params.values()))
    else:
        value = params
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool) or not isinstance(value, int | float):
        return ""
    return str(value)


def _citations(params: Any) -> tuple[str, ...]:
    value = params.get("citations") if isinstance(params, dict) else None
    if isinstance(value, str):
        value = re.split(r"[,;]", value)
    if not isinstance(value, list):
        return ()
    return tuple(str(v).strip(" []") for v in value if str(v).strip(" []"))


_TAG = r"<{0}>(.*?)(?:</{0}>|$)"


def parse_answer(text: str) -> tuple[str, str]:
    """``(thought, answer)`` from a final-answer completion.

    Reads, in order: ``<answer>`` tags (RARE style), a finish action, the text after the
    last ``Answer:``, else the first non-empty line after any ``<think>`` block."""
    think = re.search(_TAG.format("think"), text, re.DOTALL | re.IGNORECASE)
    thought = " ".join(think.group(1).split("<answer>")[0].split()) if think else ""
    tagged = re.search(_TAG.format("answer"), text, re.DOTALL | re.IGNORECASE)
    if tagged:
        return thought, _clean(tagged.group(1))
    closed = think is None or re.search(r"</think>", text, re.IGNORECASE) is not None
    rest = re.split(r"</think>", text, flags=re.IGNORECASE)[-1]
    step = parse_step(rest, ("finish",))
    if isinstance(step, ParsedAction):
        cited = "".join(f" [{c}]" for c in step.citations)
        return thought or step.thought, _clean(step.argument + cited)
    marks = list(re.finditer(r"\banswer\s*:", rest, re.IGNORECASE))
    if marks:
        return thought, _first_line(rest[marks[-1].end() :])
    # An unclosed <think> means the budget ran out mid-reasoning: no answer was given.
    return thought, _first_line(rest) if closed else ""


def _first_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return _clean(lines[0]) if lines else ""


def _clean(answer: str) -> str:
    return " ".join(answer.split()).strip("\"'` ")
