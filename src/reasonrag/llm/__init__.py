"""Text generators: the records and protocol, backends, the response cache and the factory.

``LocalGenerator`` is imported on first use, so importing this package does not load torch.
"""

from typing import TYPE_CHECKING

from reasonrag.llm.anthropic_api import AnthropicGenerator
from reasonrag.llm.base import (
    Completion,
    GenerationError,
    Generator,
    GenParams,
    Message,
    Prompt,
    Role,
    TokenLogprob,
    as_messages,
)
from reasonrag.llm.cache import CachedGenerator, ResponseCache, cache_key
from reasonrag.llm.factory import make_generator
from reasonrag.llm.openai_compat import OpenAIGenerator

if TYPE_CHECKING:
    from reasonrag.llm.local import LocalGenerator

__all__ = [
    "AnthropicGenerator",
    "CachedGenerator",
    "Completion",
    "GenParams",
    "GenerationError",
    "Generator",
    "LocalGenerator",
    "Message",
    "OpenAIGenerator",
    "Prompt",
    "ResponseCache",
    "Role",
    "TokenLogprob",
    "as_messages",
    "cache_key",
    "make_generator",
]


def __getattr__(name: str) -> object:
    if name == "LocalGenerator":
        from reasonrag.llm.local import LocalGenerator

        return LocalGenerator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
