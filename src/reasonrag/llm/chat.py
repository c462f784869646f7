"""Chat messages to token ids, with the tokens of each message: the one encoding that
inference and training share, so a model is trained on exactly the prompts it will read.

The spans come from rendering the chat template on growing prefixes of the conversation
(templates render a prefix of a conversation as a prefix of its text) and mapping character
offsets to tokens, so they hold for any template, special tokens included.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reasonrag.errors import InputError
from reasonrag.llm.base import Message, require_text


@dataclass(frozen=True)
class EncodedChat:
    ids: tuple[int, ...]
    spans: tuple[tuple[int, int], ...]
    """Per message, the ``[start, end)`` token range of its turn (the template's framing
    around it included)."""
    replies: tuple[tuple[int, int], ...]
    """Per message, the range of what the model itself writes for that turn: for an
    assistant message its text and end-of-turn token, without the role header the template
    puts before it; empty (``(start, start)``) for other roles."""


def _render(tokenizer: Any, messages: Sequence[Message], generation_prompt: bool) -> str:
    turns = [{"role": m.role, "content": m.content} for m in messages]
    if tokenizer.chat_template:
        text: str = tokenizer.apply_chat_template(
            turns, add_generation_prompt=generation_prompt, tokenize=False
        )
        return text
    # Models without a template (tiny test models, base models) get a plain transcript.
    plain = "".join(f"{t['role']}: {t['content']}\n" for t in turns)
    return plain + ("assistant:" if generation_prompt else "")


def encode_chat(
    tokenizer: Any, messages: Sequence[Message], *, add_generation_prompt: bool = True
) -> EncodedChat:
    """Token ids of ``messages`` rendered with ``tokenizer``'s chat template, and where each
    message lies in them. ``add_generation_prompt`` ends the text with the header of the
    assistant turn to be generated (inference); training encodes the finished conversation."""
    require_text(messages, "a text model")
    text = _render(tokenizer, messages, add_generation_prompt)
    prefixes = [_render(tokenizer, messages[: i + 1], False) for i in range(len(messages))]
    if not all(text.startswith(p) for p in prefixes):
        raise InputError(
            "the chat template renders earlier turns differently once later ones follow, so "
            "message spans are undefined for it"
        )
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = tuple(int(i) for i in encoded["input_ids"])
    starts = [int(start) for start, _ in encoded["offset_mapping"]]

    def token_at(char: int) -> int:
        """Index of the first token starting at or after ``char``."""
        low, high = 0, len(starts)
        while low < high:
            mid = (low + high) // 2
            if starts[mid] < char:
                low = mid + 1
            else:
                high = mid
        return low

    spans, replies = [], []
    previous = 0
    for i, message in enumerate(messages):
        end = len(prefixes[i])
        start_token, end_token = token_at(previous), token_at(end)
        spans.append((start_token, end_token))
        if message.role == "assistant":
            header = len(_render(tokenizer, messages[:i], True))
            replies.append((token_at(header), end_token))
        else:
            replies.append((start_token, start_token))
        previous = end
    return EncodedChat(ids, tuple(spans), tuple(replies))


def shared_prefix_length(rows: Sequence[Sequence[int]]) -> int:
    """Tokens every row starts with, keeping each row's last token out: a prompt continued
    from a cached prefix needs at least one token of its own to compute."""
    limit = min(len(r) for r in rows) - 1
    for i in range(max(limit, 0)):
        if any(r[i] != rows[0][i] for r in rows[1:]):
            return i
    return max(limit, 0)
