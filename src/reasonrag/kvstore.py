"""A persistent key-value table in SQLite, shared by the response and embedding caches.

WAL journaling lets other processes read while one writes (two jobs on one cache), a busy
timeout makes concurrent writers wait rather than fail, and each ``put_many`` is a single
transaction: in autocommit mode every row would be its own fsync.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Generic, Literal, TypeVar

V = TypeVar("V", str, bytes)

_MAX_PARAMETERS = 500
"""Keys per query, below SQLite's limit on bound parameters."""


class SQLiteStore(Generic[V]):
    """``key -> value`` in table ``table`` of the database at ``path``; safe to share
    between threads."""

    def __init__(self, path: Path | str, table: str, kind: Literal["TEXT", "BLOB"]) -> None:
        if not table.isidentifier():
            raise ValueError(f"table name {table!r} is not an identifier")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._table = table
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=30000")
        self._db.execute(
            f"CREATE TABLE IF NOT EXISTS {table} (key TEXT PRIMARY KEY, value {kind} NOT NULL)"
        )

    def get_many(self, keys: Sequence[str]) -> dict[str, V]:
        unique = list(dict.fromkeys(keys))
        found: dict[str, V] = {}
        with self._lock:
            for start in range(0, len(unique), _MAX_PARAMETERS):
                part = unique[start : start + _MAX_PARAMETERS]
                marks = ",".join("?" * len(part))
                rows = self._db.execute(
                    f"SELECT key, value FROM {self._table} WHERE key IN ({marks})", part
                ).fetchall()
                found.update(rows)
        return found

    def put_many(self, items: Iterable[tuple[str, V]]) -> None:
        rows = list(items)
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                f"INSERT OR REPLACE INTO {self._table} (key, value) VALUES (?, ?)", rows
            )

    def __len__(self) -> int:
        with self._lock:
            (count,) = self._db.execute(f"SELECT COUNT(*) FROM {self._table}").fetchone()
        return int(count)

    def close(self) -> None:
        with self._lock:
            self._db.close()
