"""Selective-loss SFT on a tiny random model: the masks token by token, real training steps
that lower the loss, resumption after a kill, and the command line."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from transformers import AutoTokenizer
from typer.testing import CliRunner

from llm_fakes import build_tiny_llama
from reasonrag.errors import RunMismatchError
from reasonrag.llm.base import Message
from reasonrag.llm.chat import encode_chat
from reasonrag.train.collator import IGNORE, encode_record
from reasonrag.train.records import ChainRecord, Document, RareRecord, append_jsonl
from reasonrag.train.sft import ADAPTER, LOSS_PNG, MODEL_META, SFTOptions, train_sft

# Words of the tiny tokenizer's training text only, so every token decodes exactly.
CHAIN = ChainRecord(
    id="c1",
    dataset="toy",
    source="oracle",
    question="What is the capital of France?",
    golds=("Paris",),
    answer="Paris",
    f1=1.0,
    messages=(
        Message("system", "Retrieval augmented generation answers questions from documents."),
        Message("user", "What is the capital of France?"),
        Message("assistant", "The capital of France is what?"),
        Message("user", "Paris is the capital of France and Berlin is the capital of Germany."),
        Message("assistant", "Paris."),
    ),
)
RARE = RareRecord(
    id="r1",
    dataset="toy",
    source="oracle",
    question="What is the capital of Germany?",
    golds=("Berlin",),
    instruction="Retrieval augmented generation answers questions from documents.",
    context="Berlin is the capital of Germany. What is the capital of Germany?",
    documents=(Document("d#0", "Germany", "Berlin is the capital of Germany."),),
    reasoning="Berlin is the capital of Germany.",
    answer="Berlin",
    f1=1.0,
)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny"))


def test_chain_labels_keep_only_the_thought_action_turns(tiny_model: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    encoded = encode_record(tokenizer, CHAIN)
    chat = encode_chat(tokenizer, CHAIN.messages, add_generation_prompt=False)
    assert encoded.input_ids == list(chat.ids)
    learned_positions = {i for a, b in (chat.replies[2], chat.replies[4]) for i in range(a, b)}
    for position, (token, label) in enumerate(zip(encoded.input_ids, encoded.labels, strict=True)):
        assert label == (token if position in learned_positions else IGNORE), position
    learned = [
        t for t, label in zip(encoded.input_ids, encoded.labels, strict=True) if label != IGNORE
    ]
    assert tokenizer.decode(learned) == "The capital of France is what?<|end|>Paris.<|end|>"
    # the role headers, system text, question and observation are all masked
    masked = tokenizer.decode(
        [t for t, label in zip(encoded.input_ids, encoded.labels, strict=True) if label == IGNORE]
    )
    assert masked.count("<|assistant|>") == 2 and "Berlin is the capital of Germany" in masked


def test_rare_labels_keep_only_reasoning_and_answer(tiny_model: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    encoded = encode_record(tokenizer, RARE)
    learned = [
        t for t, label in zip(encoded.input_ids, encoded.labels, strict=True) if label != IGNORE
    ]
    # the tiny alphabet has no "<", ">" or "/": the tags decode without them
    assert tokenizer.decode(learned).endswith("<|end|>")
    masked = [
        t for t, label in zip(encoded.input_ids, encoded.labels, strict=True) if label == IGNORE
    ]
    assert "What is the capital of Germany?" in tokenizer.decode(masked)
    assert encoded.learned == len(learned) > 0


def _data(tmp_path: Path, copies: int = 12) -> Path:
    path = tmp_path / "data.jsonl"
    append_jsonl(path, [r.to_dict() for r in [CHAIN, RARE] * copies])
    return path


def test_a_few_real_steps_lower_the_loss_and_write_a_loadable_adapter(
    tiny_model: Path, tmp_path: Path
) -> None:
    options = SFTOptions(
        model=str(tiny_model), max_steps=8, learning_rate=5e-2, batch_size=4, grad_accum=1,
        lora_r=8, lora_alpha=16, save_steps=4,
    )  # fmt: skip
    data = _data(tmp_path)
    result = train_sft([data], tmp_path / "run", options, cache_dir=tmp_path, progress=False)
    assert result.steps == 8 and result.examples == 24
    assert sum(result.losses[-3:]) / 3 < sum(result.losses[:3]) / 3
    adapter = tmp_path / "run" / ADAPTER
    assert (adapter / "adapter_config.json").is_file() and (tmp_path / "run" / LOSS_PNG).is_file()
    assert json.loads((adapter / MODEL_META).read_text())["base_model"] == str(tiny_model)
    with pytest.raises(RunMismatchError, match=r"options\.lora_r: 8 -> 4"):
        train_sft(
            [data],
            tmp_path / "run",
            replace(options, lora_r=4),
            cache_dir=tmp_path,
        )


def test_a_killed_training_run_resumes_from_its_checkpoint(
    tiny_model: Path, tmp_path: Path
) -> None:
    data = _data(tmp_path, copies=40)
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "reasonrag.cli", "train", "sft", "--data", str(data), "--out",
        str(out), "--model", str(tiny_model), "--max-steps", "30", "--save-steps", "3",
        "--batch-size", "2", "--grad-accum", "1",
    ]  # fmt: skip
    env = {"REASONRAG_CACHE_DIR": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 240
    checkpoint = out / "checkpoints" / "checkpoint-3" / "trainer_state.json"
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert checkpoint.exists() and not (out / ADAPTER).exists()
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-2000:]
    assert "30 steps" in " ".join(rerun.stdout.split())
    state = json.loads(
        sorted((out / "checkpoints").glob("checkpoint-*/trainer_state.json"))[-1].read_text()
    )
    logged = [h["step"] for h in state["log_history"] if "loss" in h]
    assert logged == list(range(1, 31)), "steps before the kill were kept, none repeated"
    assert (out / ADAPTER / "adapter_config.json").is_file()


@pytest.fixture(scope="module")
def trained_adapter(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("trained")
    data = _data(root, copies=4)
    options = SFTOptions(
        model=str(tiny_model), max_steps=3, learning_rate=5e-2, batch_size=4, grad_accum=1
    )
    return train_sft([data], root / "run", options, cache_dir=root, progress=False).trained


def test_an_adapter_folder_is_a_model_and_merges_to_the_same_outputs(
    trained_adapter: Path, tiny_model: Path, tmp_path: Path
) -> None:
    from reasonrag.llm.base import GenParams
    from reasonrag.llm.local import LocalGenerator
    from reasonrag.train.export import merge_adapter

    prompts = ["What is the capital of France?", "The quick brown fox"]
    params = GenParams(max_tokens=6)
    adapted = LocalGenerator(str(trained_adapter), cache_dir=tmp_path)
    base = LocalGenerator(str(tiny_model), cache_dir=tmp_path)
    merged = LocalGenerator(
        str(merge_adapter(trained_adapter, tmp_path / "merged", tmp_path)), cache_dir=tmp_path
    )
    texts = [c.text for c in adapted.generate(prompts, params)]
    assert texts == [c.text for c in merged.generate(prompts, params)]
    assert texts != [c.text for c in base.generate(prompts, params)], "training changed the model"
    assert len({adapted.name, merged.name, base.name}) == 3


def test_export_of_an_adapter_without_a_gguf_base_says_how_to_convert(
    trained_adapter: Path, tmp_path: Path
) -> None:
    from reasonrag.cli import app

    result = CliRunner().invoke(
        app, ["train", "export", str(trained_adapter), "--to", "gguf", "--out", str(tmp_path / "m.gguf")],  # noqa: E501
        env={"REASONRAG_CACHE_DIR": str(tmp_path)},
    )  # fmt: skip
    assert result.exit_code == 2 and "convert_hf_to_gguf.py" in " ".join(result.output.split())


@pytest.mark.slow
def test_gguf_export_round_trips_the_embedded_model(tmp_path: Path) -> None:
    """The float copy of the embedded model, written back as GGUF, decodes as it does."""
    import torch
    from transformers import AutoModelForCausalLM

    from reasonrag.config import default_cache_dir
    from reasonrag.llm.local import hf_folder
    from reasonrag.llm.models import resolve_model_path
    from reasonrag.train.export import export_gguf

    cache = default_cache_dir()  # the conversion is shared with the other slow tests
    folder = hf_folder("smollm2", cache)
    exported = export_gguf(folder, tmp_path / "round.gguf", resolve_model_path("smollm2"))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    original = AutoModelForCausalLM.from_pretrained(folder)
    again = AutoModelForCausalLM.from_pretrained(str(tmp_path), gguf_file=exported.name)
    text = (
        "Thought: I need the river of Quellbrook. Action: search. Observation: Quellbrook is a "
        "market town on the river Tave, founded by salt traders in 1788."
    )
    ids = tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        expected = original(**ids).logits.argmax(-1)
        got = again(**ids).logits.argmax(-1)
    # Q8_0 rounding may flip a near-tie; a wrong tensor mapping or rotary layout would not
    # leave more than a few predictions standing.
    agreement = (expected == got).float().mean().item()
    assert agreement >= 0.9, agreement
