"""Build the configured embedder."""

from __future__ import annotations

import os

from reasonrag.config import EmbedConfig
from reasonrag.embed.base import Embedder


def make_embedder(cfg: EmbedConfig) -> Embedder:
    if cfg.backend == "openai":
        from reasonrag.embed.openai_compat import OpenAIEmbedder
        from reasonrag.llm.openai_compat import DEFAULT_OPENAI_URL

        key = os.environ.get(cfg.api_key_env or "OPENAI_API_KEY")
        return OpenAIEmbedder(
            cfg.model,
            base_url=cfg.base_url or DEFAULT_OPENAI_URL,
            api_key=key,
            batch_size=cfg.batch_size,
        )
    from reasonrag.embed.sentence_transformers import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(cfg.model, device=cfg.device, batch_size=cfg.batch_size)
