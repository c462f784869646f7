"""Generator backed by Anthropic's Messages API, with prompt caching of marked messages."""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from reasonrag.llm.base import (
    Completion,
    GenerationError,
    GenParams,
    Message,
    Prompt,
    as_messages,
    require_text,
)

Block = dict[str, Any]


def to_anthropic(messages: Sequence[Message]) -> tuple[list[Block], list[dict[str, Any]]]:
    """Split ``messages`` into the ``system`` blocks and the alternating turns the API
    expects; consecutive same-role messages become one turn of several blocks, and a
    ``cache=True`` message closes a cached prefix."""
    system: list[Block] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        if not message.content:
            continue  # the API rejects empty text blocks
        block: Block = {"type": "text", "text": message.content}
        if message.cache:
            block["cache_control"] = {"type": "ephemeral"}
        if message.role == "system":
            system.append(block)
        elif turns and turns[-1]["role"] == message.role:
            turns[-1]["content"].append(block)
        else:
            turns.append({"role": message.role, "content": [block]})
    return system, turns


class AnthropicGenerator:
    """Requests run on a thread pool of ``concurrency`` workers; the SDK retries rate
    limits, server errors and connection failures with backoff, honouring Retry-After.

    Only ``max_tokens`` and ``stop`` are sent: the current Messages API rejects the
    sampling parameters (temperature, top_p), and it has no seed and no logprobs, so
    ``Completion.logprobs`` is always None.
    """

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        concurrency: int = 8,
        timeout_s: float = 120.0,
        max_retries: int = 4,
    ) -> None:
        try:
            import anthropic
        except ImportError as exc:
            raise ImportError(
                "the anthropic backend needs the anthropic SDK: pip install 'reasonrag[api]'"
            ) from exc
        self.model = model
        self.concurrency = concurrency
        self._client = anthropic.Anthropic(
            api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=max_retries
        )
        self._api_error = anthropic.APIError

    @property
    def name(self) -> str:
        return f"anthropic:{self.model}"

    def generate(self, prompts: Sequence[Prompt], params: GenParams) -> list[Completion]:
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(lambda prompt: self._complete(prompt, params), prompts))

    def _complete(self, prompt: Prompt, params: GenParams) -> Completion:
        messages = as_messages(prompt)
        require_text(messages, self.name)
        system, turns = to_anthropic(messages)
        request: dict[str, Any] = {
            "model": self.model,
            "max_tokens": params.max_tokens,
            "messages": turns,
        }
        if system:
            request["system"] = system
        if params.stop:
            request["stop_sequences"] = list(params.stop)
        started = time.perf_counter()
        try:
            response = self._client.messages.create(**request)
        except self._api_error as exc:
            raise GenerationError(
                f"anthropic {self._client.base_url} ({self.model}) failed: {exc}"
            ) from exc
        usage = response.usage
        cache_read = usage.cache_read_input_tokens or 0
        cache_write = usage.cache_creation_input_tokens or 0
        return Completion(
            text="".join(block.text for block in response.content if block.type == "text"),
            prompt_tokens=usage.input_tokens + cache_read + cache_write,
            completion_tokens=usage.output_tokens,
            finish_reason="length" if response.stop_reason == "max_tokens" else "stop",
            latency_s=time.perf_counter() - started,
            extra={
                "cache_read_input_tokens": cache_read,
                "cache_creation_input_tokens": cache_write,
            },
        )
