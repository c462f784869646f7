"""Generated tokens to completion text, shared by the local backends so that stop strings,
end-of-turn tokens and token counts mean the same in both."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Decoded:
    text: str
    content: tuple[int, ...]
    """The generated tokens behind ``text``: up to the end-of-turn token or through the
    token where a stop string begins."""
    finish_reason: str
    completion_tokens: int


def decode_generation(
    tokenizer: Any, tokens: Sequence[int], ended: int | None, stops: Sequence[str]
) -> Decoded:
    """Text of ``tokens`` (``ended``: the position of the end-of-turn token, if any), cut
    before the first stop string.

    The count is the returned text's tokens plus the end-of-turn token when one ended it; a
    stop string's own tokens are not counted, so the count does not depend on how far past
    the stop a backend happened to generate."""
    content = list(tokens if ended is None else tokens[:ended])
    text = decode(tokenizer, content)
    stop_at = first_stop(text, stops)
    if stop_at is not None:
        text = text[:stop_at]
        content = content[: _tokens_covering(tokenizer, content, stop_at)]
    finish = "stop" if stop_at is not None or ended is not None else "length"
    generated = len(content) + (1 if stop_at is None and ended is not None else 0)
    return Decoded(text, tuple(content), finish, generated)


def decode(tokenizer: Any, tokens: Sequence[int]) -> str:
    return str(tokenizer.decode(list(tokens), skip_special_tokens=True))


def piece(tokenizer: Any, token_id: int) -> str:
    """One token as text, special tokens included (logprob entries name every token)."""
    return str(tokenizer.decode([token_id]))


def first_stop(text: str, stops: Sequence[str]) -> int | None:
    positions = [pos for pos in (text.find(s) for s in stops if s) if pos >= 0]
    return min(positions) if positions else None


def _tokens_covering(tokenizer: Any, tokens: list[int], n_chars: int) -> int:
    """Fewest leading tokens whose text reaches ``n_chars`` characters."""
    for count in range(len(tokens) + 1):
        if len(decode(tokenizer, tokens[:count])) >= n_chars:
            return count
    return len(tokens)
