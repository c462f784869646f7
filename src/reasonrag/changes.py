"""What differs between two nested settings records, for refusing to resume a run (an
evaluation, a training run) with settings other than those it was started with."""

from __future__ import annotations

from typing import Any


def differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """``["agent.top_k: 5 -> 3", ...]``: every leaf that changed, by dotted path."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            d
            for key in sorted(set(old) | set(new))
            for d in differences(old.get(key), new.get(key), f"{prefix}{key}.")
        ]
    return [] if old == new else [f"{prefix.rstrip('.')}: {old!r} -> {new!r}"]
