"""Records and the protocol every text generator implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from reasonrag.errors import GenerationError, InputError

__all__ = [
    "DOCUMENT_SLOT",
    "Completion",
    "GenParams",
    "GenerationError",
    "Generator",
    "Message",
    "Prompt",
    "Role",
    "TokenLogprob",
    "as_messages",
    "require_text",
]

Role = Literal["system", "user", "assistant"]


DOCUMENT_SLOT = "\x00doc\x00"
"""Marks, in a message's text, where a document carried as vectors goes."""


@dataclass(frozen=True)
class Message:
    """One chat turn. ``cache`` marks a stable prefix (e.g. a whole document) that
    backends with prompt caching (Anthropic) should cache across requests."""

    role: Role
    content: str
    cache: bool = False
    documents: tuple[str, ...] = ()
    """Chunk ids of documents this message carries as continuous vectors, not text: the
    i-th fills the i-th ``DOCUMENT_SLOT`` of ``content``. Only a latent generator (CLaRa)
    reads them; text generators refuse such messages (``require_text``)."""


Prompt = str | Sequence[Message]
"""A bare string is a single user message."""


def require_text(messages: Sequence[Message], backend: str) -> None:
    """Refuse documents carried as vectors: a text model would silently read nothing."""
    if any(m.documents for m in messages):
        raise InputError(
            f"{backend} reads text; this prompt carries documents as vectors, which only a "
            "latent (CLaRa) generator can read"
        )


def as_messages(prompt: Prompt) -> tuple[Message, ...]:
    if isinstance(prompt, str):
        return (Message("user", prompt),)
    return tuple(prompt)


@dataclass(frozen=True)
class GenParams:
    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    logprobs: int = 0
    """How many top alternatives to return per generated token; 0 returns none."""
    seed: int | None = None


@dataclass(frozen=True)
class TokenLogprob:
    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"
    """"stop" (end of turn or a stop string) or "length" (max_tokens reached)."""
    logprobs: tuple[TokenLogprob, ...] | None = None
    cached: bool = False
    latency_s: float = 0.0
    extra: dict[str, int] = field(default_factory=dict, compare=False, hash=False)


@runtime_checkable
class Generator(Protocol):
    """Anything that turns a batch of prompts into completions."""

    @property
    def name(self) -> str:
        """Stable identity (backend and model) used in cache keys and index manifests."""
        ...

    def generate(self, prompts: Sequence[Prompt], params: GenParams) -> list[Completion]: ...
