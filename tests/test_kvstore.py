"""The SQLite table behind the response and embedding caches."""

from __future__ import annotations

import threading
from pathlib import Path

from reasonrag.kvstore import SQLiteStore


def test_values_persist_and_large_lookups_are_split(tmp_path: Path) -> None:
    path = tmp_path / "kv.sqlite"
    store: SQLiteStore[bytes] = SQLiteStore(path, "things", "BLOB")
    store.put_many((f"k{i}", bytes([i % 256])) for i in range(1200))
    store.close()
    again: SQLiteStore[bytes] = SQLiteStore(path, "things", "BLOB")
    keys = [f"k{i}" for i in range(0, 1300, 1)]
    found = again.get_many(keys + keys[:10])  # repeated keys and misses are fine
    assert len(found) == 1200 and found["k1199"] == bytes([1199 % 256])
    assert len(again) == 1200


def test_threads_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    store: SQLiteStore[str] = SQLiteStore(tmp_path / "kv.sqlite", "things", "TEXT")

    def write(t: int) -> None:
        for i in range(20):
            store.put_many([(f"{t}-{i}", f"value {t} {i}")])

    threads = [threading.Thread(target=write, args=(t,)) for t in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(store) == 120 and store.get_many(["5-19"]) == {"5-19": "value 5 19"}
