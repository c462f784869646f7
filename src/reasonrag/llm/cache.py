"""A persistent response cache, so re-runs and resumed jobs do not pay for a prompt twice."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from reasonrag.kvstore import SQLiteStore
from reasonrag.llm.base import (
    Completion,
    Generator,
    GenParams,
    Prompt,
    TokenLogprob,
    as_messages,
)


def cache_key(generator: str, prompt: Prompt, params: GenParams) -> str:
    """sha256 of the canonical JSON of everything that determines a response."""
    payload = {
        "generator": generator,
        "messages": [dataclasses.asdict(m) for m in as_messages(prompt)],
        "params": dataclasses.asdict(params),
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def completion_to_json(completion: Completion) -> str:
    fields = dataclasses.asdict(completion)
    del fields["cached"]
    return json.dumps(fields, ensure_ascii=False)


def completion_from_json(text: str) -> Completion:
    fields: dict[str, Any] = json.loads(text)
    logprobs = fields.pop("logprobs")
    if logprobs is not None:
        logprobs = tuple(
            TokenLogprob(lp["token"], lp["logprob"], tuple(tuple(alt) for alt in lp["top"]))
            for lp in logprobs
        )
    return Completion(**fields, logprobs=logprobs, cached=True)


class ResponseCache:
    """Completions by cache key, in SQLite; safe to share between threads and processes."""

    def __init__(self, path: Path | str) -> None:
        self._store: SQLiteStore[str] = SQLiteStore(path, "completions", "TEXT")
        self.path = self._store.path

    def get_many(self, keys: Sequence[str]) -> dict[str, Completion]:
        return {k: completion_from_json(v) for k, v in self._store.get_many(keys).items()}

    def put_many(self, items: Iterable[tuple[str, Completion]]) -> None:
        self._store.put_many((key, completion_to_json(c)) for key, c in items)

    def __len__(self) -> int:
        return len(self._store)

    def close(self) -> None:
        self._store.close()


class CachedGenerator:
    """Serves repeated prompts from ``cache`` and sends only the misses to ``inner``.

    Sampled requests without a seed (temperature > 0, seed None) bypass the cache: they are
    meant to differ between calls, e.g. for self-consistency voting.
    """

    def __init__(self, inner: Generator, cache: ResponseCache) -> None:
        self.inner = inner
        self.cache = cache
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.inner.name

    def generate(self, prompts: Sequence[Prompt], params: GenParams) -> list[Completion]:
        if params.temperature > 0 and params.seed is None:
            return self.inner.generate(prompts, params)
        keys = [cache_key(self.name, p, params) for p in prompts]
        found = self.cache.get_many(keys)
        # One request per distinct missing prompt, even if it repeats within the batch.
        missing = {
            key: prompt for key, prompt in zip(keys, prompts, strict=True) if key not in found
        }
        if missing:
            fresh = self.inner.generate(list(missing.values()), params)
            new = dict(zip(missing, fresh, strict=True))
            self.cache.put_many(new.items())
            found.update(new)
        with self._lock:
            self.misses += len(missing)
            self.hits += len(prompts) - sum(1 for k in keys if k in missing)
        return [found[k] for k in keys]
