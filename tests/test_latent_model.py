"""CLaRa's pieces on a tiny random backbone: the straight-through top-k, compressed shapes,
training steps that lower the loss, generation from vectors, and saving."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from llm_fakes import build_tiny_llama
from reasonrag.latent.model import MEMORY_FILE, QA_INSTRUCTION, SLOT, ClaraConfig, ClaraModel
from reasonrag.latent.topk import straight_through_topk

DOCS = [
    "Paris is the capital of France.",
    "Berlin is the capital of Germany.",
    "The quick brown fox jumps over the lazy dog.",
]


def test_straight_through_topk_selects_exactly_k_and_reaches_every_candidate() -> None:
    scores = torch.tensor(
        [[0.1, 2.0, -1.0, 0.5, 1.5], [3.0, 0.0, 0.2, 0.1, -0.3]], requires_grad=True
    )
    weights, indices = straight_through_topk(scores, k=2, temperature=0.5)
    assert weights.shape == (2, 2, 5)
    assert indices.tolist() == [[1, 4], [0, 2]]
    # forward: one-hot rows, one per slot, distinct candidates
    assert torch.equal(weights.detach(), torch.nn.functional.one_hot(indices, 5).float())
    assert (weights.detach().sum(-1) == 1).all()
    # backward: a loss on what was selected moves every candidate's score
    values = torch.randn(5, 3)
    selected = torch.einsum("bkn,nd->bkd", weights, values)
    (selected**2).sum().backward()
    assert scores.grad is not None and (scores.grad != 0).all()


def test_k_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="k=4"):
        straight_through_topk(torch.zeros(1, 3), k=4)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny"))


def _model(tiny: Path, tmp_path: Path, rate: int = 16) -> ClaraModel:
    config = ClaraConfig(
        base_model=str(tiny), compression_rate=rate, doc_tokens=32, lora_r=4, lora_alpha=8
    )
    return ClaraModel.create(config, tmp_path)


@pytest.mark.parametrize("rate", [4, 16, 32])
def test_compressed_vectors_have_the_configured_shape(
    tiny: Path, tmp_path: Path, rate: int
) -> None:
    model = _model(tiny, tmp_path, rate)
    compressed = model.compress(DOCS)
    slots = math.ceil(32 / rate)
    assert compressed.vectors.shape == (3, slots, model.hidden_size)
    assert compressed.mse.ndim == 0 and compressed.mse.item() >= 0
    queries = model.encode_queries(["What is the capital of France?"])
    assert queries.shape == (1, slots, model.hidden_size)
    scores = model.scores(queries, compressed.vectors)
    assert scores.shape == (1, 3) and (scores.abs() <= 1 + 1e-5).all()


def test_generation_reads_vectors_in_place_of_text(tiny: Path, tmp_path: Path) -> None:
    model = _model(tiny, tmp_path)
    vectors = model.compress(DOCS[:2]).vectors.detach()
    prompt = (QA_INSTRUCTION, f"Documents: {SLOT} {SLOT} Question: What is the capital of France?")
    [(text, positions)] = model.generate([prompt], [vectors], max_new_tokens=4)
    pieces = model._prompt_pieces(*prompt)
    text_tokens = sum(
        len(model.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in pieces
    )
    assert positions == text_tokens + 2 * model.config.memory_slots
    assert isinstance(text, str)
    with pytest.raises(ValueError, match="2 slots in the prompt for 1 documents"):
        model.prompt_embeddings(*prompt, vectors[:1])


def test_a_few_compression_steps_lower_the_answer_loss(tiny: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = _model(tiny, tmp_path)
    model.use("compressor", train=("compressor", "generator"))
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(parameters, lr=2e-2)
    prompts = [(QA_INSTRUCTION, f"{SLOT} What is the capital of France?")] * 2
    losses = []
    for _ in range(8):
        compressed = model.compress(DOCS[:2])
        loss = model.answer_loss(
            prompts, list(compressed.vectors.unsqueeze(1)), ["Paris", "Berlin"]
        )
        (loss + 0.1 * compressed.mse).backward()
        optimiser.step()
        optimiser.zero_grad()
        model.use("compressor", train=("compressor", "generator"))
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert model.memory.requires_grad and model.memory.grad is None  # zeroed after the step


def test_save_and_load_give_the_same_vectors(tiny: Path, tmp_path: Path) -> None:
    model = _model(tiny, tmp_path)
    with torch.no_grad():
        model.memory.add_(0.3)  # something the save must carry
        before = model.compress(DOCS).vectors
    model.save(tmp_path / "clara")
    loaded = ClaraModel.load(tmp_path / "clara", tmp_path)
    with torch.no_grad():
        after = loaded.compress(DOCS).vectors
    assert torch.allclose(before, after, atol=1e-5)
    assert {p.name for p in (tmp_path / "clara").iterdir()} >= {
        "compressor",
        "query",
        "generator",
        "clara.json",
    }
    assert (tmp_path / "clara" / "compressor" / MEMORY_FILE).is_file()


def test_the_query_reasoner_starts_as_the_compressor(tiny: Path, tmp_path: Path) -> None:
    model = _model(tiny, tmp_path)
    with torch.no_grad():
        model.memory.add_(1.0)
    model.init_query_from_compressor()
    with torch.no_grad():
        documents = model.compress(DOCS).vectors
        queries = model.encode_queries(DOCS)
    # the same text read by both: the same vectors, so a document is its own best match
    assert torch.allclose(documents, queries, atol=1e-4)
    assert model.scores(queries, documents).argmax(-1).tolist() == [0, 1, 2]


@pytest.mark.parametrize(
    ("task", "trained"), [("scp", ("compressor", "generator")), ("joint", ("query", "generator"))]
)
def test_every_trained_adapter_gets_a_gradient(
    tiny: Path, tmp_path: Path, task: str, trained: tuple[str, str]
) -> None:
    # The generator runs last; the adapter that made its input vectors must still learn.
    model = _model(tiny, tmp_path)
    model.use(trained[0], train=trained)
    if task == "scp":
        loss = model("scp", texts=DOCS[:2], qa=["Q: x\nA: y"] * 2, paraphrases=DOCS[:2])
    else:
        with torch.no_grad():
            candidates = model.compress(DOCS).vectors.unsqueeze(0)
        loss = model(
            "joint",
            questions=["What is the capital of France?"],
            candidates=candidates,
            labels=[["a", "b", "c"]],
            answers=["Paris"],
            top_k=2,
            temperature=0.5,
        )
    loss.backward()
    for adapter in ("compressor", "query", "generator"):
        grads = [
            p.grad
            for n, p in model.backbone.named_parameters()
            if f".{adapter}." in n and "lora_B" in n  # A has no gradient while B is still zero
        ]
        reached = any(g is not None and bool(g.abs().sum() > 0) for g in grads)
        assert reached == (adapter in trained), adapter
