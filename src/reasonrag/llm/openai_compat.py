"""Client for any OpenAI-compatible server (vLLM, llama.cpp server, Ollama, OpenAI), and the
retrying HTTP helpers the OpenAI-compatible embedder shares."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx

from reasonrag.llm.base import (
    Completion,
    GenerationError,
    GenParams,
    Prompt,
    TokenLogprob,
    as_messages,
    require_text,
)

DEFAULT_OPENAI_URL = "https://api.openai.com/v1"

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter; a server's Retry-After wins when it sends one."""

    max_retries: int = 4
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        # Jitter spreads out clients that failed together so they do not retry together.
        base = min(self.max_backoff_s, self.backoff_s * 2**attempt)
        return base * random.uniform(0.5, 1.0)


def _retryable(status: int) -> bool:
    return status in (408, 409, 429) or status >= 500


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def open_client(
    base_url: str, api_key: str | None, *, timeout_s: float, concurrency: int
) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    return httpx.AsyncClient(
        base_url=base_url,
        headers=headers,
        timeout=timeout_s,
        limits=httpx.Limits(max_connections=concurrency),
    )


async def post_json(
    client: httpx.AsyncClient, path: str, payload: dict[str, Any], retry: RetryPolicy
) -> dict[str, Any]:
    """POST ``payload``, retrying rate limits, server errors, timeouts and connection
    failures; raises GenerationError naming the server and the last cause."""
    where = f"{str(client.base_url).rstrip('/')}{path}"
    cause = ""
    for attempt in range(retry.max_retries + 1):
        retry_after = None
        try:
            response = await client.post(path, json=payload)
        except httpx.TransportError as exc:  # timeouts and connection errors
            cause = f"{type(exc).__name__}: {exc}"
        else:
            if response.is_success:
                data: dict[str, Any] = response.json()
                return data
            cause = f"HTTP {response.status_code}: {response.text[:500]}"
            if not _retryable(response.status_code):
                raise GenerationError(f"{where} failed with {cause}")
            retry_after = _retry_after(response)
        if attempt < retry.max_retries:
            await asyncio.sleep(retry.delay(attempt, retry_after))
    raise GenerationError(f"{where} failed after {retry.max_retries + 1} attempts: {cause}")


async def gather_all(coros: Sequence[Coroutine[Any, Any, T]]) -> list[T]:
    """Run all to the end (none is left running against a closed client), then raise
    the first failure if any."""
    results = await asyncio.gather(*coros, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return list(results)  # type: ignore[arg-type]


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from synchronous code, also when the caller is itself
    inside a running event loop (a notebook, an async server), via a worker thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


class OpenAIGenerator:
    """Generator backed by a ``/chat/completions`` endpoint."""

    def __init__(
        self,
        model: str,
        *,
        base_url: str,
        api_key: str | None = None,
        concurrency: int = 8,
        timeout_s: float = 120.0,
        max_retries: int = 4,
        backoff_s: float = 1.0,
    ) -> None:
        self.model = model
        self.base_url = base_url
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.retry = RetryPolicy(max_retries=max_retries, backoff_s=backoff_s)
        self._api_key = api_key

    @property
    def name(self) -> str:
        return f"openai:{self.model}"

    def generate(self, prompts: Sequence[Prompt], params: GenParams) -> list[Completion]:
        return run_sync(self.agenerate(prompts, params))

    async def agenerate(self, prompts: Sequence[Prompt], params: GenParams) -> list[Completion]:
        limit = asyncio.Semaphore(self.concurrency)
        async with open_client(
            self.base_url, self._api_key, timeout_s=self.timeout_s, concurrency=self.concurrency
        ) as client:

            async def one(prompt: Prompt) -> Completion:
                async with limit:
                    return await self._complete(client, prompt, params)

            return await gather_all([one(p) for p in prompts])

    async def _complete(
        self, client: httpx.AsyncClient, prompt: Prompt, params: GenParams
    ) -> Completion:
        started = time.perf_counter()
        data = await post_json(client, "/chat/completions", self._body(prompt, params), self.retry)
        try:
            return _parse_completion(data, time.perf_counter() - started)
        except (KeyError, IndexError, TypeError) as exc:
            raise GenerationError(
                f"{self.base_url}/chat/completions returned an unexpected body: {exc!r}"
            ) from exc

    def _body(self, prompt: Prompt, params: GenParams) -> dict[str, Any]:
        messages = as_messages(prompt)
        require_text(messages, self.name)
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
        }
        if params.stop:
            body["stop"] = list(params.stop)
        if params.seed is not None:
            body["seed"] = params.seed
        if params.logprobs > 0:
            body["logprobs"] = True
            body["top_logprobs"] = params.logprobs
        return body


def _parse_completion(data: dict[str, Any], latency: float) -> Completion:
    choice = data["choices"][0]
    usage = data.get("usage") or {}
    logprobs = (choice.get("logprobs") or {}).get("content")
    return Completion(
        text=choice["message"].get("content") or "",
        prompt_tokens=int(usage.get("prompt_tokens", 0)),
        completion_tokens=int(usage.get("completion_tokens", 0)),
        finish_reason="length" if choice.get("finish_reason") == "length" else "stop",
        logprobs=None if logprobs is None else tuple(_token_logprob(t) for t in logprobs),
        latency_s=latency,
    )


def _token_logprob(entry: dict[str, Any]) -> TokenLogprob:
    top = sorted(
        ((alt["token"], float(alt["logprob"])) for alt in entry.get("top_logprobs") or ()),
        key=lambda pair: -pair[1],
    )
    return TokenLogprob(token=entry["token"], logprob=float(entry["logprob"]), top=tuple(top))
