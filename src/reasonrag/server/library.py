"""The index the server answers from, and the one writer that replaces it."""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence
from pathlib import Path

from reasonrag.errors import EmptyIndexError
from reasonrag.index import Index
from reasonrag.ingest.load import load_documents


class Library:
    """Holds the served ``Index``; writes are serialised and swapped in whole.

    ``Index`` writes replace the attributes of the object they run on one by one, so a
    search running meanwhile on that object could see chunks of one generation and stores
    of another. Writes therefore run on a shallow copy (its lists are replaced, never
    mutated) and the copy replaces the served index when it is complete: questions keep
    answering from the old generation until then, and those already running finish on it."""

    def __init__(self, index: Index):
        self._index = index
        self._write = threading.Lock()

    @property
    def index(self) -> Index:
        return self._index

    def add(self, paths: Sequence[Path]) -> tuple[list[str], list[tuple[str, str]]]:
        """Upsert the documents of ``paths``; returns their ids and the (path, reason) of
        every file or record that could not be read."""
        report = load_documents(list(paths))
        skipped = [(s.path, s.reason) for s in report.skipped]
        if not report.documents:
            reasons = "; ".join(f"{Path(p).name}: {r}" for p, r in skipped)
            raise EmptyIndexError(f"nothing indexable in the upload ({reasons})")
        with self._write:
            draft = copy.copy(self._index)
            draft.upsert(report.documents, progress=False)
            self._index = draft
        return [d.id for d in report.documents], skipped

    def delete(self, doc_id: str) -> int:
        """Remove one document; returns how many chunks went with it."""
        with self._write:
            draft = copy.copy(self._index)
            removed = draft.delete([doc_id])
            self._index = draft
        return removed
