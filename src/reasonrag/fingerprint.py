"""Content fingerprints of model files, so that a model is known by its weights and not by
the name of the folder it sits in.

Index manifests and the response and embedding caches key on these: a different model
copied into a folder of the same name gets another fingerprint, so its vectors and answers
are never mixed with the old model's.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

_WHOLE_BELOW = 1 << 20
"""Files smaller than this (configs, tokenizers) are hashed whole."""
_WINDOWS = 16
_WINDOW = 1 << 16
_SKIPPED_SUFFIXES = frozenset({".md", ".lock"})
"""Documentation and bookkeeping files that do not change what the model computes (not
``.txt``: BERT vocabularies are text files)."""


def _file_digest(path: Path, hasher: hashlib._Hash) -> None:
    size = path.stat().st_size
    hasher.update(f"{size}\0".encode())
    with path.open("rb") as handle:
        if size < _WHOLE_BELOW:
            hasher.update(handle.read())
            return
        # Evenly spaced windows (first and last included): any retrained or different
        # weights differ in all of them, and a multi-GB file costs 16 short reads, not a
        # full pass.
        for i in range(_WINDOWS):
            handle.seek((size - _WINDOW) * i // (_WINDOWS - 1))
            hasher.update(handle.read(_WINDOW))


def fingerprint(path: Path, length: int = 12) -> str:
    """Hex digest of a model file, or of every file of a model folder that shapes what the
    model computes (weights, configs, tokenizer; not READMEs or hidden files)."""
    hasher = hashlib.sha256()
    root = Path(path)
    files = [root] if root.is_file() else sorted(_model_files(root))
    for file in files:
        hasher.update(f"{file.relative_to(root).as_posix() if file != root else ''}\0".encode())
        _file_digest(file, hasher)
    return hasher.hexdigest()[:length]


def _model_files(folder: Path) -> list[Path]:
    return [
        p
        for p in folder.rglob("*")
        if p.is_file()
        and p.suffix.lower() not in _SKIPPED_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    ]
