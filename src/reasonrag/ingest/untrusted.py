"""Text from files that may hold anything: JSON that fails in one way only, and the check
that text can be encoded at all."""

from __future__ import annotations

import json
import sys
from typing import Any


def parse_json(text: str) -> Any:
    """``json.loads(text)``, raising only ``json.JSONDecodeError``.

    ``json.loads`` also raises RecursionError on deep nesting (a line of 100,000 ``[``) and
    a bare ValueError on an integer longer than ``sys.get_int_max_str_digits()``; readers
    that skip a malformed line must see those as malformed too. Neither says where in the
    text it happened, so they are placed at its start."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", text, 0) from None
    except ValueError:
        digits = sys.get_int_max_str_digits()
        raise json.JSONDecodeError(f"a number longer than {digits} digits", text, 0) from None


def unicode_problem(text: str) -> str | None:
    """What keeps ``text`` from being encoded as UTF-8, or None if nothing does.

    JSON escapes such as ``"\\ud800"`` (and file names that are not UTF-8) give strings
    holding lone surrogates, which tokenizers and file formats reject."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"lone surrogate U+{ord(text[exc.start]):04X} at character {exc.start}"
    return None
