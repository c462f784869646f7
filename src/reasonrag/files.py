"""Atomic file writes: a reader sees the old file or the new one, never half of either."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _read_umask() -> int:
    # The umask can only be read by setting it; this happens once, at import, because
    # setting it is process-wide and would race with threads creating files.
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def chmod_like_umask(path: Path, *, directory: bool = False) -> None:
    """Give ``path`` the mode a plain ``open``/``mkdir`` would have given it.

    ``mkstemp`` creates files readable by their owner only; files that are renamed into
    place would otherwise differ in mode from their neighbours."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_UMASK)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        chmod_like_umask(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until every byte is out (it may write less than asked)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def cut_partial_line(path: Path) -> None:
    """Drop an unterminated last line (left by a kill mid-write) so appends start clean."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("r+b") as handle:
        handle.seek(-1, os.SEEK_END)
        if handle.read(1) == b"\n":
            return
        handle.seek(0)
        handle.truncate(handle.read().rfind(b"\n") + 1)


def append_lines(path: Path, lines: list[str]) -> None:
    """Append text lines, each in one ``O_APPEND`` write (concurrent writers never
    interleave inside a line), then fsync."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        for line in lines:
            write_all(fd, (line.rstrip("\n") + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def complete_lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of every non-blank, newline-terminated line of ``path``: a
    last line cut short by a kill is not part of the file yet."""
    if not path.exists():
        return
    data = path.read_bytes()
    complete = data[: data.rfind(b"\n") + 1].decode("utf-8")
    for number, line in enumerate(complete.split("\n"), 1):
        if line.strip():
            yield number, line
