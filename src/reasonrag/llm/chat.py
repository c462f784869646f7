"""The one way messages become prompt tokens: both local backends and training encode chats
here, so a model is trained on exactly the tokens it is later prompted with."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reasonrag.errors import InputError
from reasonrag.llm.base import Message


@dataclass(frozen=True)
class EncodedChat:
    ids: tuple[int, ...]
    spans: tuple[tuple[int, int], ...]
    """``[start, end)`` token range of each message, in order: its role header, content and
    end-of-turn marker as the template renders them. Tokens after the last span are the
    generation prompt (e.g. ``<|im_start|>assistant\\n``)."""


def encode_chat(
    tokenizer: Any, messages: Sequence[Message], *, add_generation_prompt: bool = True
) -> EncodedChat:
    """Token ids of ``messages`` rendered by the tokenizer's chat template (or, without one,
    as ``role: content`` lines), tokenized as one text, with each message's token span.

    Spans come from rendering every prefix of the conversation: message i covers the text
    the template adds for it. A token that straddles two messages belongs to the earlier."""
    if not messages:
        raise InputError("a prompt needs at least one message")
    turns = [{"role": m.role, "content": m.content} for m in messages]
    full = _render(tokenizer, turns, add_generation_prompt)
    prefixes = [_render(tokenizer, turns[: i + 1], False) for i in range(len(turns))]
    if not all(full.startswith(p) for p in prefixes):
        raise InputError(
            "the chat template renders earlier turns differently once later ones follow, so "
            "message spans are undefined for it"
        )
    # A template adds its own special tokens (BOS, turn markers); the plain format relies on
    # the tokenizer's usual ones.
    encoded = tokenizer(
        full, add_special_tokens=not tokenizer.chat_template, return_offsets_mapping=True
    )
    ids = tuple(int(i) for i in encoded["input_ids"])
    starts = [int(start) for start, _ in encoded["offset_mapping"]]
    bounds = [0, *(_first_token_at(starts, len(p)) for p in prefixes)]
    spans = tuple((bounds[i], bounds[i + 1]) for i in range(len(turns)))
    return EncodedChat(ids=ids, spans=spans)


def _render(tokenizer: Any, turns: list[dict[str, str]], add_generation_prompt: bool) -> str:
    if tokenizer.chat_template:
        return str(
            tokenizer.apply_chat_template(
                turns, add_generation_prompt=add_generation_prompt, tokenize=False
            )
        )
    plain = "".join(f"{t['role']}: {t['content']}\n" for t in turns)
    return plain + ("assistant:" if add_generation_prompt else "")


def _first_token_at(starts: list[int], char: int) -> int:
    """Index of the first token starting at or after character ``char``."""
    for index, start in enumerate(starts):
        if start >= char:
            return index
    return len(starts)
