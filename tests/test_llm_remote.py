from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llm_fakes import FakeAPI, fake_api_server
from reasonrag.config import ConfigError, LLMConfig
from reasonrag.llm import (
    AnthropicGenerator,
    CachedGenerator,
    GenerationError,
    Generator,
    GenParams,
    Message,
    OpenAIGenerator,
    make_generator,
)
from reasonrag.llm.openai_compat import RetryPolicy


@pytest.fixture
def api() -> Iterator[FakeAPI]:
    with fake_api_server() as server:
        yield server


def _openai(api: FakeAPI, model: str, **kwargs: Any) -> OpenAIGenerator:
    return OpenAIGenerator(model, base_url=api.openai_url, api_key="k", backoff_s=0.01, **kwargs)


def test_chat_request_and_response_mapping(api: FakeAPI) -> None:
    generator = _openai(api, "echo-model")
    assert isinstance(generator, Generator)
    prompt = [Message("system", "be brief"), Message("user", "alpha beta STOP gamma")]
    params = GenParams(max_tokens=9, temperature=0.5, top_p=0.9, stop=("STOP",), seed=3)
    (completion,) = generator.generate([prompt], params)
    assert completion.text == "echo alpha beta "
    assert completion.finish_reason == "stop"
    assert (completion.prompt_tokens, completion.completion_tokens) == (7, 4)
    assert completion.logprobs is None
    (body,) = api.state.bodies("/v1/chat/completions")
    assert body == {
        "model": "echo-model",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "alpha beta STOP gamma"},
        ],
        "max_tokens": 9,
        "temperature": 0.5,
        "top_p": 0.9,
        "stop": ["STOP"],
        "seed": 3,
    }


def test_logprobs_are_mapped(api: FakeAPI) -> None:
    (completion,) = _openai(api, "m").generate(["one two"], GenParams(logprobs=2))
    assert completion.finish_reason == "length"
    assert completion.logprobs is not None
    assert [lp.token for lp in completion.logprobs] == ["echo", "one", "two"]
    assert completion.logprobs[1].logprob == pytest.approx(-0.2)
    assert completion.logprobs[1].top == (
        ("one", pytest.approx(-0.2)),
        ("alt1", pytest.approx(-1.2)),
    )
    body = api.state.bodies("/v1/chat/completions")[0]
    assert (body["logprobs"], body["top_logprobs"]) == (True, 2)


def test_rate_limit_is_retried(api: FakeAPI) -> None:
    completions = _openai(api, "flaky").generate(["a", "b"], GenParams())
    assert [c.text for c in completions] == ["echo a", "echo b"]
    assert api.state.attempts == {"a": 2, "b": 2}


def test_server_error_raises_after_retries(api: FakeAPI) -> None:
    generator = _openai(api, "always-500", max_retries=2)
    with pytest.raises(GenerationError, match=r"127\.0\.0\.1.*after 3 attempts: HTTP 500"):
        generator.generate(["x"], GenParams())
    assert api.state.attempts == {"x": 3}


def test_client_error_is_not_retried(api: FakeAPI) -> None:
    generator = OpenAIGenerator("m", base_url=f"{api.base_url}/nowhere", backoff_s=0.01)
    with pytest.raises(GenerationError, match="HTTP 404"):
        generator.generate(["x"], GenParams())
    assert len(api.state.requests) == 1


def test_connection_errors_are_retried_then_reported() -> None:
    with fake_api_server() as gone:
        url = gone.openai_url
    generator = OpenAIGenerator("m", base_url=url, max_retries=1, backoff_s=0.01)
    with pytest.raises(GenerationError, match=r"after 2 attempts: ConnectError"):
        generator.generate(["x"], GenParams())


def test_concurrency_is_bounded(api: FakeAPI) -> None:
    prompts = [f"p{i}" for i in range(12)]
    completions = _openai(api, "slow", concurrency=3).generate(prompts, GenParams())
    assert [c.text for c in completions] == [f"echo {p}" for p in prompts]
    assert 1 < api.state.max_in_flight <= 3


def test_generate_works_inside_a_running_event_loop(api: FakeAPI) -> None:
    generator = _openai(api, "m")

    async def caller() -> list[str]:
        sync = generator.generate(["sync"], GenParams())
        native = await generator.agenerate(["async"], GenParams())
        return [c.text for c in sync + native]

    assert asyncio.run(caller()) == ["echo sync", "echo async"]


def test_retry_after_header_wins_over_backoff() -> None:
    policy = RetryPolicy(backoff_s=10.0)
    assert policy.delay(3, retry_after=0.5) == 0.5
    assert 10.0 <= policy.delay(1, retry_after=None) <= 20.0
    assert policy.delay(20, retry_after=None) <= policy.max_backoff_s


def test_anthropic_request_body_and_cache_usage(api: FakeAPI) -> None:
    generator = AnthropicGenerator("claude-x", api_key="k", base_url=api.base_url, max_retries=0)
    assert isinstance(generator, Generator)
    prompt = [
        Message("system", "You situate chunks."),
        Message("user", "<document>long text</document>", cache=True),
        Message("user", "Chunk: part"),
    ]
    params = GenParams(max_tokens=50, temperature=0.3, top_p=0.5, stop=("</ctx>",))
    (completion,) = generator.generate([prompt], params)
    assert completion.text == "claude says Chunk: part"
    assert completion.finish_reason == "stop"
    assert completion.prompt_tokens == 11 + 100 + 50
    assert completion.completion_tokens == 3
    assert completion.extra == {"cache_read_input_tokens": 50, "cache_creation_input_tokens": 100}
    (body,) = api.state.bodies("/v1/messages")
    assert body["system"] == [{"type": "text", "text": "You situate chunks."}]
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {
                    "type": "text",
                    "text": "<document>long text</document>",
                    "cache_control": {"type": "ephemeral"},
                },
                {"type": "text", "text": "Chunk: part"},
            ],
        }
    ]
    assert body["stop_sequences"] == ["</ctx>"]
    assert not {"temperature", "top_p", "top_k"} & body.keys()


def test_anthropic_concurrency_and_length_finish(api: FakeAPI) -> None:
    generator = AnthropicGenerator("c", api_key="k", base_url=api.base_url, concurrency=4)
    completions = generator.generate([f"q{i}" for i in range(8)], GenParams(max_tokens=2))
    assert [c.text for c in completions] == [f"claude says q{i}" for i in range(8)]
    assert all(c.finish_reason == "length" for c in completions)


def test_anthropic_errors_become_generation_errors(api: FakeAPI) -> None:
    generator = AnthropicGenerator(
        "c", api_key="k", base_url=f"{api.base_url}/nowhere", max_retries=0
    )
    with pytest.raises(GenerationError, match="anthropic"):
        generator.generate(["q"], GenParams())


def test_factory_builds_cached_remote_backends(
    api: FakeAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_KEY", "secret")
    cfg = LLMConfig(backend="openai", model="m", base_url=api.openai_url, api_key_env="MY_KEY")
    generator = make_generator(cfg, tmp_path)
    assert isinstance(generator, CachedGenerator)
    assert isinstance(generator.inner, OpenAIGenerator)
    assert generator.generate(["hi"], GenParams())[0].text == "echo hi"
    assert generator.generate(["hi"], GenParams())[0].cached
    assert len(api.state.requests) == 1

    uncached = make_generator(cfg.model_copy(update={"cache": False}), tmp_path)
    assert isinstance(uncached, OpenAIGenerator)
    anthropic = make_generator(
        LLMConfig(backend="anthropic", model="c", base_url=api.base_url, api_key_env="MY_KEY"),
        tmp_path,
    )
    assert anthropic.name == "anthropic:c"


def test_factory_reports_missing_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("NOPE", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        make_generator(LLMConfig(backend="openai", model="gpt-x"), tmp_path)
    with pytest.raises(ConfigError, match=r"llm\.api_key_env.*NOPE"):
        make_generator(LLMConfig(backend="anthropic", model="c", api_key_env="NOPE"), tmp_path)
