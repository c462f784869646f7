"""The chat encoding inference and training share: ids and the tokens of every message."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from llm_fakes import build_tiny_llama
from reasonrag.llm.base import Message
from reasonrag.llm.chat import encode_chat

# Only characters of the tiny tokenizer's training text, so every token decodes exactly.
CHAT = [
    Message("system", "Retrieval augmented generation answers questions from documents."),
    Message("user", "What is the capital of France?"),
    Message("assistant", "The capital of France is Paris."),
    Message("user", "Why?"),
    Message("assistant", "Paris is the capital of France."),
]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return AutoTokenizer.from_pretrained(build_tiny_llama(tmp_path_factory.mktemp("tiny")))


def test_ids_are_the_template_rendering_tokenized(tokenizer) -> None:  # type: ignore[no-untyped-def]
    text = tokenizer.apply_chat_template(
        [{"role": m.role, "content": m.content} for m in CHAT],
        add_generation_prompt=True,
        tokenize=False,
    )
    assert (
        list(encode_chat(tokenizer, CHAT).ids)
        == tokenizer(text, add_special_tokens=False)["input_ids"]
    )


def test_spans_cover_each_turn_and_replies_only_what_the_model_writes(tokenizer) -> None:  # type: ignore[no-untyped-def]
    chat = encode_chat(tokenizer, CHAT, add_generation_prompt=False)
    decoded = [tokenizer.decode(chat.ids[a:b]) for a, b in chat.spans]
    assert decoded == [f"<|{m.role}|>{m.content}<|end|>" for m in CHAT]
    replies = [tokenizer.decode(chat.ids[a:b]) for a, b in chat.replies]
    assert replies == ["", "", f"{CHAT[2].content}<|end|>", "", f"{CHAT[4].content}<|end|>"]
    ends = [b for _, b in chat.spans]
    assert [a for a, _ in chat.spans[1:]] == ends[:-1] and ends[-1] == len(chat.ids)


def test_the_generation_prompt_follows_the_last_message(tokenizer) -> None:  # type: ignore[no-untyped-def]
    chat = encode_chat(tokenizer, CHAT[:2])
    assert tokenizer.decode(chat.ids[chat.spans[-1][1] :]) == "<|assistant|>"


def test_a_model_without_template_gets_a_plain_transcript(tmp_path: Path, tokenizer) -> None:  # type: ignore[no-untyped-def]
    template, tokenizer.chat_template = tokenizer.chat_template, None
    try:
        chat = encode_chat(tokenizer, CHAT[:3], add_generation_prompt=False)
    finally:
        tokenizer.chat_template = template
    a, b = chat.replies[2]
    assert tokenizer.decode(chat.ids[a:b]).startswith(" The capital of France is Paris.")
