"""Selective loss: a training record becomes token ids and labels in which every token the
model should not learn to write is -100 (ignored by the cross-entropy).

What is learned is decided by the record (``trainable()``): for a ReaRAG chain the
Thought/Action turns, for a RARE example the ``<think>`` reasoning and the ``<answer>``.
Instructions, the question, documents and observations are read, never learned. Within a
learned turn the role header the chat template puts before it is masked too, and its
end-of-turn token is learned, so the model learns to stop.

For a chain of one step (chat template ``<|role|>content<|end|>``)::

    system    "<|system|>Answer from documents.<|end|>"      -100 ... -100
    user      "<|user|>Question: Who?<|end|>"                -100 ... -100
    assistant "<|assistant|>"                                -100
              "Thought: ... Action: {...}<|end|>"             ids of those tokens

The ids are those of ``reasonrag.llm.chat.encode_chat``, the encoding the generators use,
so training sees exactly the prompts inference sends.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from reasonrag.llm.chat import encode_chat
from reasonrag.train.records import TrainRecord

IGNORE = -100
"""The label value PyTorch's cross-entropy (and every Hugging Face model) skips."""


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]

    @property
    def learned(self) -> int:
        return sum(label != IGNORE for label in self.labels)


def encode_record(tokenizer: Any, record: TrainRecord) -> Encoded:
    """Ids of the whole conversation and labels that keep only the learned turns."""
    chat = encode_chat(tokenizer, record.messages, add_generation_prompt=False)
    ids = list(chat.ids)
    labels = [IGNORE] * len(ids)
    for (start, end), learned in zip(chat.replies, record.trainable(), strict=True):
        if learned:
            labels[start:end] = ids[start:end]
    return Encoded(ids, labels)


@dataclass(frozen=True)
class EncodedSet:
    examples: list[Encoded]
    too_long: int
    """Records dropped because they exceed the length limit: cutting them would remove the
    part that is learned (a chain's finish is its last turn)."""


def encode_records(tokenizer: Any, records: Iterable[TrainRecord], max_length: int) -> EncodedSet:
    kept, too_long = [], 0
    for record in records:
        encoded = encode_record(tokenizer, record)
        if len(encoded.input_ids) > max_length:
            too_long += 1
        else:
            kept.append(encoded)
    return EncodedSet(kept, too_long)


def as_rows(examples: Sequence[Encoded]) -> list[dict[str, list[int]]]:
    """Rows for a ``datasets.Dataset``: TRL's collator pads them and keeps the labels."""
    return [{"input_ids": e.input_ids, "labels": e.labels} for e in examples]
