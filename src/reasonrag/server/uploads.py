"""Uploaded files: names that cannot leave the upload folder, and only types we index."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from reasonrag.errors import InputError, UnsupportedTypeError

UPLOAD_TYPES = frozenset({".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".jsonl"})


def safe_name(raw: str) -> str:
    """The file name a client sent, reduced to its last component; refused when it holds
    a NUL, a ``..`` component or names a hidden file, rather than guessing what was meant.
    It becomes the document id, so two uploads of ``notes.md`` replace each other."""
    if "\x00" in raw:
        raise InputError(f"file name {raw!r} contains a NUL byte")
    parts = re.split(r"[\\/]", raw)
    if ".." in parts:
        raise InputError(f"file name {raw!r} climbs out of its folder ('..')")
    name = parts[-1].strip()
    if not name or name.startswith("."):
        raise InputError(f"file name {raw!r} is empty or hidden")
    suffix = PurePosixPath(name).suffix.lower()
    if suffix not in UPLOAD_TYPES:
        raise UnsupportedTypeError(
            f"{name}: cannot index {suffix or 'files without an extension'}; "
            f"upload one of {', '.join(sorted(UPLOAD_TYPES))}"
        )
    return name


def target(folder: Path, raw: str) -> Path:
    """Where an upload named ``raw`` is saved inside ``folder``."""
    path = folder / safe_name(raw)
    if path.resolve().parent != folder.resolve():  # the last line of defence, never expected
        raise InputError(f"file name {raw!r} does not stay in the upload folder")
    return path
