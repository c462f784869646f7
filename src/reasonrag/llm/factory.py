"""Build the configured generator."""

from __future__ import annotations

import os
from pathlib import Path

from reasonrag.config import ConfigError, LLMConfig
from reasonrag.llm.base import Generator
from reasonrag.llm.cache import CachedGenerator, ResponseCache
from reasonrag.llm.models import is_gguf
from reasonrag.llm.openai_compat import DEFAULT_OPENAI_URL

_DEFAULT_KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}


def api_key(cfg: LLMConfig) -> str | None:
    """The key from ``cfg.api_key_env``, else the backend's usual variable. A variable the
    config names explicitly must be set; the default one may be absent (local servers)."""
    if cfg.api_key_env:
        key = os.environ.get(cfg.api_key_env)
        if not key:
            raise ConfigError(f"llm.api_key_env: environment variable {cfg.api_key_env} is not set")
        return key
    return os.environ.get(_DEFAULT_KEY_ENV.get(cfg.backend, "")) or None


def make_generator(cfg: LLMConfig, cache_dir: Path) -> Generator:
    """The backend ``cfg`` describes, behind the response cache at
    ``cache_dir/responses.sqlite`` when ``cfg.cache``."""
    generator = _backend(cfg, Path(cache_dir))
    if cfg.cache:
        return CachedGenerator(generator, ResponseCache(Path(cache_dir) / "responses.sqlite"))
    return generator


def backend_name(cfg: LLMConfig) -> str:
    """The backend that runs ``cfg``: ``auto`` picks llama.cpp for GGUF files (the embedded
    model included) and transformers for Hugging Face folders."""
    if cfg.backend != "auto":
        return cfg.backend
    return "llamacpp" if is_gguf(cfg.model) else "transformers"


def _backend(cfg: LLMConfig, cache_dir: Path) -> Generator:
    backend = backend_name(cfg)
    if backend == "llamacpp":
        from reasonrag.llm.llamacpp import LlamaCppGenerator

        return LlamaCppGenerator(
            cfg.model,
            threads=cfg.threads,
            n_ctx=cfg.n_ctx,
            n_parallel=cfg.n_parallel,
            cache_dir=cache_dir,
        )
    if backend == "transformers":
        from reasonrag.llm.local import LocalGenerator

        return LocalGenerator(
            cfg.model,
            device=cfg.device,
            dtype=cfg.dtype,
            batch_size=cfg.batch_size,
            cache_dir=cache_dir,
        )
    key = api_key(cfg)
    if backend == "openai":
        from reasonrag.llm.openai_compat import OpenAIGenerator

        base_url = cfg.base_url or DEFAULT_OPENAI_URL
        if base_url == DEFAULT_OPENAI_URL and key is None:
            raise ConfigError(
                "llm: the OpenAI API needs a key in OPENAI_API_KEY (or the variable named by "
                "llm.api_key_env); set llm.base_url for another OpenAI-compatible server"
            )
        return OpenAIGenerator(
            cfg.model,
            base_url=base_url,
            api_key=key,
            concurrency=cfg.concurrency,
            timeout_s=cfg.timeout_s,
            max_retries=cfg.max_retries,
        )
    from reasonrag.llm.anthropic_api import AnthropicGenerator

    if key is None and cfg.base_url is None:
        raise ConfigError(
            "llm: the Anthropic API needs a key in ANTHROPIC_API_KEY "
            "(or the variable named by llm.api_key_env)"
        )
    return AnthropicGenerator(
        cfg.model,
        api_key=key,
        base_url=cfg.base_url,
        concurrency=cfg.concurrency,
        timeout_s=cfg.timeout_s,
        max_retries=cfg.max_retries,
    )
