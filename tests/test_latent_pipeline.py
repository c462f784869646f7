"""CLaRa's stages over a real index of the demo world on a tiny random backbone: SCP data
from gold structure, pretraining and joint training that lower their losses, a crashed run
that resumes where its checkpoint stopped, compressed vectors stored with the index and
searched back, and the ``clara`` method answering through the ordinary agent."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import torch

from conftest import HashEmbedder
from llm_fakes import build_tiny_llama
from reasonrag.agents import make_agent
from reasonrag.config import Settings, load_settings
from reasonrag.datasets.corpus import corpus_documents, prepare_index
from reasonrag.datasets.loaders import DEMO_TRAIN_QUESTIONS, QAExample, load_demo
from reasonrag.errors import ConfigError, IndexMismatchError, NotFoundError, RunMismatchError
from reasonrag.index import Index
from reasonrag.latent.data import SCPRecord, compressor_text, joint_records, scp_records
from reasonrag.latent.method import LatentRetriever, compressor_id
from reasonrag.latent.model import ClaraConfig, ClaraModel
from reasonrag.latent.pipeline import pretrain, scp_batch, train_joint
from reasonrag.latent.store import LatentStore, encode_index
from reasonrag.latent.trainer import LOSSES, TrainOptions, train_loop


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Index, list[QAExample], Path]:
    root = tmp_path_factory.mktemp("clara")
    settings = load_settings(cache_dir=root / "cache")
    documents = corpus_documents([], "demo", None)
    index = prepare_index(
        documents, settings, root / "index", embedder=HashEmbedder(), progress=False
    )
    return index, load_demo(questions=DEMO_TRAIN_QUESTIONS), root


@pytest.fixture(scope="module")
def tiny(world: tuple[Index, list[QAExample], Path]) -> Path:
    return build_tiny_llama(world[2] / "tiny")


def _config(tiny: Path) -> ClaraConfig:
    return ClaraConfig(
        base_model=str(tiny), compression_rate=8, doc_tokens=32, lora_r=4, lora_alpha=8
    )


def _losses(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / LOSSES).read_text().splitlines()]


def test_scp_records_are_grounded_in_the_chunks_that_state_the_answers(
    world: tuple[Index, list[QAExample], Path],
) -> None:
    index, examples, _ = world
    records = scp_records(examples, index.chunks)
    assert len(records) >= 20
    texts = {c.id: c.text for c in index.chunks}
    for record in records:
        assert record.chunk_id in texts
        assert all(a.lower() in record.text.lower() for a in record.answers)
        assert record.sources == {"qa": "demo-decomposition", "paraphrase": "reconstruction"}


def test_pretraining_lowers_the_scp_loss_and_writes_a_loadable_model(
    world: tuple[Index, list[QAExample], Path], tiny: Path, tmp_path: Path
) -> None:
    index, examples, _ = world
    few = [e for e in examples if scp_records([e], index.chunks)][:1]
    n = len(scp_records(few, index.chunks))
    torch.manual_seed(0)
    # A batch of every record: each step sees the same data, so the loss must fall.
    options = TrainOptions(steps=6, batch_size=n, learning_rate=3e-3, save_steps=3)
    result = pretrain(
        index, few, _config(tiny), tmp_path / "scp", options, cache_dir=tmp_path, progress=False
    )
    assert result.steps == 6 and result.losses[-1] < result.losses[0]
    assert (tmp_path / "scp" / "loss.png").is_file()
    assert len((tmp_path / "scp" / "scp.jsonl").read_text().splitlines()) == n
    loaded = ClaraModel.load(result.model, tmp_path)
    with torch.no_grad():
        again = loaded.compress([index.chunks[0].text]).vectors
    assert again.shape == (1, 4, loaded.hidden_size)
    with pytest.raises(RunMismatchError, match="other settings"):
        pretrain(
            index,
            few,
            _config(tiny),
            tmp_path / "scp",
            TrainOptions(steps=7, batch_size=n),
            cache_dir=tmp_path,
            progress=False,
        )


def _run(
    tiny: Path, records: list[SCPRecord], out: Path, options: TrainOptions, crash_at: int = 0
) -> list[float]:
    torch.manual_seed(0)
    model = ClaraModel.create(_config(tiny), out.parent)
    calls = 0

    def batch(rows: list[SCPRecord]) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if calls == crash_at:
            raise KeyboardInterrupt("killed")
        return scp_batch(rows)

    train_loop(
        model,
        records,
        batch,
        task="scp",
        out=out,
        options=options,
        config={},
        progress=False,
    )
    return [float(p.detach().abs().sum()) for p in model.parameters() if p.requires_grad]


def test_a_crashed_run_resumes_from_its_checkpoint_and_ends_where_an_unbroken_one_does(
    world: tuple[Index, list[QAExample], Path], tiny: Path, tmp_path: Path
) -> None:
    index, examples, _ = world
    records = scp_records(examples, index.chunks)[:6]
    options = TrainOptions(steps=5, batch_size=2, learning_rate=1e-3, save_steps=2)
    unbroken = _run(tiny, records, tmp_path / "a" / "run", options)
    with pytest.raises(KeyboardInterrupt):
        _run(tiny, records, tmp_path / "b" / "run", options, crash_at=4)
    crashed = tmp_path / "b" / "run"
    assert [r["step"] for r in _losses(crashed)] == [1, 2, 3]
    assert not (crashed / "model").exists()
    resumed = _run(tiny, records, crashed, options)
    # Steps 1-2 from the checkpoint, 3-5 again: step 3 is logged once, and the weights
    # match the unbroken run's.
    assert [r["step"] for r in _losses(crashed)] == [1, 2, 3, 4, 5]
    assert [r["loss"] for r in _losses(crashed)] == pytest.approx(
        [r["loss"] for r in _losses(tmp_path / "a" / "run")], rel=1e-4
    )
    assert resumed == pytest.approx(unbroken, rel=1e-4)
    assert (crashed / "model" / "compressor").is_dir()


@pytest.fixture(scope="module")
def pretrained(world: tuple[Index, list[QAExample], Path], tiny: Path) -> Path:
    index, examples, root = world
    torch.manual_seed(0)
    options = TrainOptions(steps=2, batch_size=2, learning_rate=1e-3)
    result = pretrain(
        index, examples[:6], _config(tiny), root / "pre", options, cache_dir=root, progress=False
    )
    return result.model


def test_encoded_vectors_are_stored_with_the_index_and_found_again(
    world: tuple[Index, list[QAExample], Path], pretrained: Path, tmp_path: Path
) -> None:
    index, _, root = world
    model = ClaraModel.load(pretrained, root)
    model.eval()
    model_id = compressor_id(pretrained)
    encode_index(index, model, model_id, tmp_path, progress=False)
    reopened = Index.open(index.folder, index.settings, embedder=HashEmbedder())
    store = LatentStore.open(reopened, model_id)
    assert store.vectors.shape == (len(index.chunks), 4, model.hidden_size)
    rows = [0, 7, len(index.chunks) - 1]
    with torch.no_grad():
        own = model.compress([compressor_text(index.chunks[r]) for r in rows]).vectors
    _, found = store.search(own, 1)
    assert found[:, 0].tolist() == rows
    hits = LatentRetriever(model, store, reopened).search("Who rebuilt the mill?", k=3)
    assert [h.rank for h in hits] == [0, 1, 2]
    assert {h.chunk_id for h in hits} <= {c.id for c in index.chunks}
    with pytest.raises(IndexMismatchError, match="encoded with CLaRa model"):
        LatentStore.open(reopened, "another-model")


def test_joint_training_moves_the_query_reasoner_and_leaves_the_compressor(
    world: tuple[Index, list[QAExample], Path], pretrained: Path, tmp_path: Path
) -> None:
    index, examples, root = world
    records = joint_records(examples[:4], index, 6)
    assert all(len(r.candidates) == 6 for r in records)
    assert any(r.gold for r in records), "the text index finds some gold evidence"
    torch.manual_seed(0)
    options = TrainOptions(steps=6, batch_size=4, learning_rate=3e-3, top_k=2)
    result = train_joint(
        pretrained,
        index,
        examples[:4],
        tmp_path / "joint",
        options,
        candidates=6,
        cache_dir=root,
        progress=False,
    )
    assert result.losses[-1] < result.losses[0]
    before, after = ClaraModel.load(pretrained, root), ClaraModel.load(result.model, root)
    before.init_query_from_compressor()

    def weights(model: ClaraModel, part: str) -> torch.Tensor:
        return torch.cat(
            [p.detach().flatten() for n, p in model.backbone.named_parameters() if part in n]
        )

    assert torch.equal(weights(before, ".compressor."), weights(after, ".compressor."))
    assert torch.equal(before.memory, after.memory)
    # The answer loss reached the retriever through the top-k.
    assert not torch.equal(weights(before, ".query."), weights(after, ".query."))
    assert compressor_id(result.model) == compressor_id(pretrained)


def test_the_clara_method_answers_through_the_agent_from_vectors(
    world: tuple[Index, list[QAExample], Path], pretrained: Path, tmp_path: Path
) -> None:
    index, _, root = world
    settings = load_settings(
        cache_dir=root,
        agent={"method": "clara", "index_dir": str(index.folder)},
        clara={"model": str(pretrained), "top_k": 2, "max_tokens": 4},
    )
    assert isinstance(settings, Settings)
    agent = make_agent(
        settings, retriever=Index.open(index.folder, settings, embedder=HashEmbedder())
    )
    answer = agent.ask("Who rebuilt the mill?")
    assert answer.status in {"finished", "failed"}
    generation = answer.trace.generations[0]
    assert 0 < generation.prompt_tokens < 200, "documents read as 4 vectors each"
    assert generation.messages[-1].documents, "the prompt carries chunk ids, not their text"


def test_clara_needs_encoded_vectors_and_a_model(
    world: tuple[Index, list[QAExample], Path], tmp_path: Path
) -> None:
    index, _, root = world
    fresh = prepare_index(
        corpus_documents([], "demo", None)[:3],
        index.settings,
        tmp_path / "small",
        embedder=HashEmbedder(),
        progress=False,
    )
    with pytest.raises(NotFoundError, match="clara encode"):
        LatentStore.open(fresh, "any")
    settings = load_settings(cache_dir=root, agent={"method": "clara"})
    with pytest.raises(ConfigError, match=r"clara\.model"):
        make_agent(settings, retriever=fresh)


def test_clara_cli_inspects_a_model_and_refuses_a_folder_that_is_no_index(
    pretrained: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from reasonrag.cli import app

    runner = CliRunner()
    env = {"REASONRAG_CACHE_DIR": str(pretrained.parent.parent)}
    shown = runner.invoke(
        app, ["clara", "inspect", "Who rebuilt the mill?", "--model", str(pretrained)], env=env
    )
    assert shown.exit_code == 0, shown.output
    slots = re.findall(r"slot +\d+: (.*)", shown.output)
    assert len(slots) == 4 and all(line.count("'") >= 10 for line in slots)
    (tmp_path / "notes").mkdir()
    refused = runner.invoke(
        app, ["clara", "encode", str(tmp_path / "notes"), "--model", str(pretrained)], env=env
    )
    assert refused.exit_code == 2 and "error:" in refused.output
    assert "Traceback" not in refused.output
