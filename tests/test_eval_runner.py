"""The evaluation runner: predictions file, batching, resume after a kill, index reuse."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import HashEmbedder
from eval_fakes import QUESTIONS, KillAfter, Killed, write_hotpot
from reason_fakes import ScriptedGenerator, action, prompt_text
from reasonrag.config import Settings
from reasonrag.eval.runner import (
    PREDICTIONS,
    EvalSpec,
    PredictionLog,
    RunMismatchError,
    evaluate,
    resolve_dataset_path,
)
from reasonrag.index.store import read_manifest


def with_agent(settings: Settings, **agent: object) -> Settings:
    return settings.model_copy(update={"agent": settings.agent.model_copy(update=agent)})


def lines(run_dir: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (run_dir / PREDICTIONS).read_text().splitlines()]


@pytest.fixture
def hotpot(tmp_path: Path) -> Path:
    return write_hotpot(tmp_path / "data" / "dev.jsonl")


@pytest.fixture
def spec(hotpot: Path) -> EvalSpec:
    return EvalSpec("hotpotqa", hotpot, n=None)


def test_rag_run_writes_scored_predictions(
    tmp_path: Path, spec: EvalSpec, settings: Settings, hash_embedder: HashEmbedder
) -> None:
    h1, h2, h3, h4, h5 = QUESTIONS
    replies = {
        h1.question: [f"Pellmoor [{h1.chunk('Orlen Bridge')}] [{h1.chunk('Mara Quill')}]"],
        h2.question: [f"the Aske [{h2.chunk('Tobin Vell')}]"],
        h3.question: [f"cello [{h3.chunk('Kessin')}]"],
        h4.question: [f"Seven. [{h4.chunk('Tessaly Causeway')}] [{h4.chunk('Tessaly')}]"],
        h5.question: [f"in 1950 [{h5.chunk('Brightwater Academy')}]"],
    }
    generator = ScriptedGenerator(replies)
    run_dir = tmp_path / "run"
    result = evaluate(
        spec,
        with_agent(settings, method="rag", top_k=20),
        run_dir,
        generator=generator,
        embedder=hash_embedder,
        batch=2,
        progress=False,
    )
    # five questions in waves of 2: one generate call per wave, several prompts per call
    assert [len(batch) for batch, _ in generator.calls] == [2, 2, 1]
    assert result.new == 5 and result.method == "rag"
    by_id = {p.id: p for p in result.predictions}
    assert {row["id"] for row in lines(run_dir)} == set(by_id)

    hand = {  # (em, f1, cover_em, cited recall)
        "h1": (1.0, 1.0, 1.0, 1.0),
        "h2": (0.0, 2 / 3, 0.0, 0.5),  # "aske" vs "river aske": P=1, R=1/2
        "h3": (0.0, 0.0, 0.0, 0.0),  # cites only the distractor
        "h4": (1.0, 1.0, 1.0, 1.0),
        "h5": (0.0, 2 / 3, 1.0, 0.5),  # "in 1950": P=1/2, R=1
    }
    for qid, (em, f1, cover, cited) in hand.items():
        metrics = by_id[qid].metrics
        assert metrics["em"] == em and metrics["cover_em"] == cover, qid
        assert metrics["f1"] == pytest.approx(f1), qid
        assert metrics["cited_recall"] == pytest.approx(cited), qid
        # top_k covers the whole corpus: every gold paragraph was retrieved
        assert metrics["retrieved_recall"] == 1.0
        assert metrics["finished"] == 1.0
    p1 = by_id["h1"]
    assert p1.prediction == "Pellmoor" and p1.golds == ("Pellmoor",)
    assert p1.actions == ("search", "finish") and p1.steps == 2
    assert set(p1.cited_docs) == set(p1.gold_docs or ()) and len(p1.gold_docs or ()) == 2
    assert p1.prompt_tokens > 0 and p1.completion_tokens > 0 and p1.wall_s > 0
    assert "judge" not in p1.metrics
    traces = (run_dir / "traces.jsonl").read_text().splitlines()
    assert len(traces) == 5 and json.loads(traces[0])["method"] == "rag"


def test_tao_steps_of_a_wave_share_generate_calls(
    tmp_path: Path, spec: EvalSpec, settings: Settings, hash_embedder: HashEmbedder
) -> None:
    chosen = QUESTIONS[:3]
    generator = ScriptedGenerator(
        {
            q.question: [action("search", query=q.question), action("finish", answer=q.answer)]
            for q in chosen
        }
    )
    write_hotpot(spec.path or Path(), chosen)
    result = evaluate(
        spec,
        with_agent(settings, method="tao"),
        tmp_path / "run",
        generator=generator,
        embedder=hash_embedder,
        batch=3,
        progress=False,
    )
    # round 1: three searches, round 2: three finishes
    assert [len(batch) for batch, _ in generator.calls] == [3, 3]
    assert all(p.actions == ("search", "finish") for p in result.predictions)
    assert all(p.status == "finished" and p.metrics["em"] == 1.0 for p in result.predictions)


def test_resume_after_kill_skips_done_questions_and_drops_a_cut_line(
    tmp_path: Path, spec: EvalSpec, settings: Settings
) -> None:
    closed = with_agent(settings, method="closed")
    replies = {q.question: [q.answer] for q in QUESTIONS}
    run_dir = tmp_path / "run"
    dying = KillAfter(ScriptedGenerator(replies), calls=1)
    with pytest.raises(Killed):
        evaluate(spec, closed, run_dir, generator=dying, batch=2, progress=False)
    first = lines(run_dir)
    assert len(first) == 2
    # a kill in the middle of the next write leaves half a line behind
    with (run_dir / PREDICTIONS).open("a") as handle:
        handle.write('{"id": "h9", "question": "half a li')

    generator = ScriptedGenerator(replies)
    result = evaluate(spec, closed, run_dir, generator=generator, batch=2, progress=False)
    asked = [
        q.question
        for q in QUESTIONS
        if any(q.question in prompt_text(p) for p in generator.prompts)
    ]
    assert len(asked) == 3 and not {row["question"] for row in first} & set(asked)
    assert result.new == 3 and len(result.predictions) == 5
    rows = lines(run_dir)  # every line parses: the cut one is gone
    assert sorted(row["id"] for row in rows) == ["h1", "h2", "h3", "h4", "h5"]
    assert all(p.metrics["em"] == 1.0 for p in result.predictions)
    # a third run has nothing left to ask
    idle = ScriptedGenerator([])
    assert evaluate(spec, closed, run_dir, generator=idle, progress=False).new == 0
    assert idle.calls == []


def test_partial_tail_is_ignored_when_reading(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / PREDICTIONS)
    log.path.write_text('{"id": "x"')
    assert log.read() == {}
    assert log.path.read_text() == '{"id": "x"', "reading must not modify a live run's file"
    log.drop_partial_tail()
    assert log.path.read_text() == ""


def test_corrupt_middle_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / PREDICTIONS
    path.write_text("not json\n")
    with pytest.raises(ValueError, match=r"predictions\.jsonl:1"):
        PredictionLog(path).read()


def test_closed_book_has_no_index_and_no_recall(
    tmp_path: Path, spec: EvalSpec, settings: Settings
) -> None:
    generator = ScriptedGenerator({q.question: ["no idea"] for q in QUESTIONS})
    run_dir = tmp_path / "run"
    result = evaluate(
        spec, with_agent(settings, method="closed"), run_dir, generator=generator, progress=False
    )
    assert not (run_dir / "index").exists()
    assert all("retrieved_recall" not in p.metrics for p in result.predictions)
    assert all(p.steps == 1 and p.metrics["em"] == 0.0 for p in result.predictions)


def test_judge_is_batched_per_wave(tmp_path: Path, spec: EvalSpec, settings: Settings) -> None:
    h1, h2, h3, *_ = QUESTIONS
    write_hotpot(spec.path or Path(), [h1, h2, h3])
    answers = ScriptedGenerator(
        {h1.question: ["Pellmoor"], h2.question: ["Aske"], h3.question: [""]}
    )
    judge = ScriptedGenerator({h1.question: ["Yes."], h2.question: ["Hmm, hard to say"]})
    result = evaluate(
        EvalSpec("hotpotqa", spec.path, n=None, judge=True),
        with_agent(settings, method="closed"),
        tmp_path / "run",
        generator=answers,
        judge_generator=judge,
        batch=3,
        progress=False,
    )
    by_id = {p.id: p for p in result.predictions}
    assert [len(batch) for batch, _ in judge.calls] == [2]  # the empty answer is not asked
    assert (by_id["h1"].judge_verdict, by_id["h1"].metrics["judge"]) == (True, 1.0)
    assert (by_id["h2"].judge_verdict, by_id["h2"].metrics["judge"]) == (None, 0.0)
    assert (by_id["h3"].judge_verdict, by_id["h3"].metrics["judge"]) == (False, 0.0)


def test_index_is_reused_when_corpus_and_settings_match(
    tmp_path: Path, spec: EvalSpec, settings: Settings, hash_embedder: HashEmbedder
) -> None:
    rag = with_agent(settings, method="rag")
    replies = {q.question: ["x", "x"] for q in QUESTIONS}
    generator = ScriptedGenerator(replies)
    evaluate(spec, rag, tmp_path / "a", generator=generator, embedder=hash_embedder, progress=False)
    built = read_manifest(tmp_path / "a" / "index").generation
    evaluate(spec, rag, tmp_path / "a", generator=generator, embedder=hash_embedder, progress=False)
    assert read_manifest(tmp_path / "a" / "index").generation == built
    # other chunking rebuilds it (in a new run folder: the old run's settings differ)
    rechunked = rag.model_copy(
        update={"chunk": rag.chunk.model_copy(update={"max_tokens": 16, "overlap_tokens": 4})}
    )
    shutil.copytree(tmp_path / "a" / "index", tmp_path / "b" / "index")
    evaluate(
        spec, rechunked, tmp_path / "b", generator=generator, embedder=hash_embedder, progress=False
    )
    assert read_manifest(tmp_path / "b" / "index").generation != built


def test_resuming_with_other_settings_is_refused(
    tmp_path: Path, spec: EvalSpec, settings: Settings
) -> None:
    closed = with_agent(settings, method="closed")
    replies = {q.question: ["x"] for q in QUESTIONS}
    evaluate(spec, closed, tmp_path / "run", generator=ScriptedGenerator(replies), progress=False)
    with pytest.raises(RunMismatchError, match=r"agent\.max_tokens: 192 -> 64"):
        evaluate(
            spec,
            with_agent(closed, max_tokens=64),
            tmp_path / "run",
            generator=ScriptedGenerator(replies),
            progress=False,
        )


def test_demo_run_uses_the_package_corpus(
    tmp_path: Path, settings: Settings, hash_embedder: HashEmbedder
) -> None:
    generator = ScriptedGenerator({"": ["Lisk Ferry", "Ostrel"]})
    result = evaluate(
        EvalSpec("demo", n=2),
        with_agent(settings, method="rag"),
        tmp_path / "run",
        generator=generator,
        embedder=hash_embedder,
        progress=False,
    )
    for p in result.predictions:
        # demo documents keep their ids (d01...), so gold ids come from supporting_docs
        assert p.gold_docs and all(d.startswith("d") and len(d) == 3 for d in p.gold_docs)
        assert p.retrieved_docs and "retrieved_recall" in p.metrics


def test_dataset_folder_resolves_to_its_split(hotpot: Path) -> None:
    assert resolve_dataset_path("hotpotqa", hotpot.parent, "dev") == hotpot
    assert resolve_dataset_path("hotpotqa", hotpot, "dev") == hotpot
    with pytest.raises(FileNotFoundError, match=r"no train\.jsonl"):
        resolve_dataset_path("hotpotqa", hotpot.parent, "train")


def test_batch_must_be_positive(tmp_path: Path, spec: EvalSpec, settings: Settings) -> None:
    with pytest.raises(ValueError, match="batch"):
        evaluate(
            spec,
            with_agent(settings, method="closed"),
            tmp_path / "run",
            generator=ScriptedGenerator([]),
            batch=0,
            progress=False,
        )


def test_a_kill_mid_wave_keeps_the_questions_already_answered(
    tmp_path: Path, spec: EvalSpec, settings: Settings, hash_embedder: HashEmbedder
) -> None:
    quick, slow, slower = QUESTIONS[:3]
    replies = {
        quick.question: [action("finish", answer=quick.answer)],
        slow.question: [action("search", query="x"), action("finish", answer=slow.answer)],
        slower.question: [action("search", query="y"), action("finish", answer=slower.answer)],
    }
    write_hotpot(spec.path or Path(), [quick, slow, slower])
    run_dir = tmp_path / "run"
    tao = with_agent(settings, method="tao")
    dying = KillAfter(ScriptedGenerator(replies), calls=1)  # dies in the wave's second round
    with pytest.raises(Killed):
        evaluate(
            spec, tao, run_dir, generator=dying, embedder=hash_embedder, batch=3, progress=False
        )
    assert [row["id"] for row in lines(run_dir)] == [quick.id]
    assert len((run_dir / "traces.jsonl").read_text().splitlines()) == 1
    generator = ScriptedGenerator(replies)
    result = evaluate(
        spec, tao, run_dir, generator=generator, embedder=hash_embedder, batch=3, progress=False
    )
    assert result.new == 2
    assert not any(quick.question in prompt_text(p) for p in generator.prompts)
