from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from reasonrag.llm import (
    CachedGenerator,
    Completion,
    GenerationError,
    Generator,
    GenParams,
    Message,
    Prompt,
    ResponseCache,
    TokenLogprob,
    as_messages,
    cache_key,
)


class CountingGenerator:
    """Answers "<last message> #<call number>" and records every batch it is sent."""

    def __init__(self, name: str = "fake:counting", fail_on: str | None = None) -> None:
        self._name = name
        self.fail_on = fail_on
        self.batches: list[list[str]] = []
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._name

    def generate(self, prompts: Sequence[Prompt], params: GenParams) -> list[Completion]:
        texts = [as_messages(p)[-1].content for p in prompts]
        if self.fail_on in texts:
            raise GenerationError(f"fake: refused {self.fail_on}")
        with self._lock:
            self.batches.append(texts)
            call = len(self.batches)
        return [
            Completion(
                text=f"{t} #{call}",
                prompt_tokens=len(t),
                completion_tokens=2,
                logprobs=(TokenLogprob(t, -0.5, ((t, -0.5), ("x", -1.5))),),
                extra={"cache_read_input_tokens": 3},
            )
            for t in texts
        ]


@pytest.fixture
def cache(tmp_path: Path) -> ResponseCache:
    return ResponseCache(tmp_path / "responses.sqlite")


def test_only_misses_reach_the_backend_and_order_is_kept(cache: ResponseCache) -> None:
    inner = CountingGenerator()
    cached = CachedGenerator(inner, cache)
    assert isinstance(cached, Generator)
    assert cached.name == inner.name
    first = cached.generate(["a", "b"], GenParams())
    second = cached.generate(["c", "a", "b", "c"], GenParams())
    assert inner.batches == [["a", "b"], ["c"]]
    assert [c.text for c in second] == ["c #2", "a #1", "b #1", "c #2"]
    assert [c.cached for c in second] == [False, True, True, False]
    assert not any(c.cached for c in first)
    assert (cached.hits, cached.misses) == (2, 3)


def test_round_trip_keeps_every_field(cache: ResponseCache) -> None:
    fresh = CachedGenerator(CountingGenerator(), cache).generate(["q"], GenParams(logprobs=2))[0]
    again = CachedGenerator(CountingGenerator(), cache).generate(["q"], GenParams(logprobs=2))[0]
    assert again.cached
    assert again == Completion(**{**fresh.__dict__, "cached": True})
    assert again.logprobs == fresh.logprobs
    assert again.extra == {"cache_read_input_tokens": 3}


def test_key_covers_generator_roles_cache_flags_and_params() -> None:
    base = cache_key("g", [Message("user", "hi")], GenParams())
    variants = [
        cache_key("other", [Message("user", "hi")], GenParams()),
        cache_key("g", [Message("system", "hi")], GenParams()),
        cache_key("g", [Message("user", "hi", cache=True)], GenParams()),
        cache_key("g", [Message("user", "hi")], GenParams(max_tokens=5)),
        cache_key("g", [Message("user", "hi")], GenParams(stop=("x",))),
    ]
    assert len({base, *variants}) == len(variants) + 1
    assert cache_key("g", "hi", GenParams()) == base


def test_persists_across_processes_sharing_the_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "responses.sqlite"
    CachedGenerator(CountingGenerator(), ResponseCache(path)).generate(["a"], GenParams())
    reopened = ResponseCache(path)
    assert len(reopened) == 1
    inner = CountingGenerator()
    assert CachedGenerator(inner, reopened).generate(["a"], GenParams())[0].cached
    assert inner.batches == []


def test_finished_batches_survive_a_failing_one(cache: ResponseCache) -> None:
    inner = CountingGenerator(fail_on="boom")
    cached = CachedGenerator(inner, cache)
    cached.generate(["a", "b"], GenParams())
    with pytest.raises(GenerationError):
        cached.generate(["c", "boom"], GenParams())
    assert len(cache) == 2
    assert [c.cached for c in cached.generate(["a", "b"], GenParams())] == [True, True]


def test_unseeded_sampling_bypasses_the_cache(cache: ResponseCache) -> None:
    inner = CountingGenerator()
    cached = CachedGenerator(inner, cache)
    sampled = GenParams(temperature=0.7)
    cached.generate(["a", "a"], sampled)
    cached.generate(["a"], sampled)
    assert inner.batches == [["a", "a"], ["a"]]
    assert len(cache) == 0
    seeded = GenParams(temperature=0.7, seed=1)
    cached.generate(["a"], seeded)
    assert cached.generate(["a"], seeded)[0].cached


def test_thread_safe_under_concurrent_callers(cache: ResponseCache) -> None:
    cached = CachedGenerator(CountingGenerator(), cache)
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(20):
                prompts = [f"p{(worker + i) % 10}", f"q{i}"]
                texts = [c.text.split(" #")[0] for c in cached.generate(prompts, GenParams())]
                assert texts == prompts
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert cached.hits + cached.misses <= 4 * 20 * 2
    assert len(cache) == 30
