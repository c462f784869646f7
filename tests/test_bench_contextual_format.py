import json
from pathlib import Path

import pytest

from conftest import HashEmbedder
from contextual_format import (
    DatasetError,
    GoldQuery,
    SourceDocument,
    guess_title,
    load_beir_set,
    load_contextual,
    load_retrieval_set,
    write_contextual,
)
from make_demo_contextual import convert
from reasonrag.config import Settings
from reasonrag.datasets.loaders import LoadIssue
from retrieval_pass_at_k import (
    pipelines_for,
    render_table,
    run_benchmark,
    to_json,
)

HARBOUR = (
    "Smoked eel is shipped upriver on flat barges every spring.",
    "The harbour freezes in hard winters and closes for weeks.",
    "A fire station guards the quay, and its fire boats are painted red.",
)
MILL = (
    "The mill grinds barley for the brewers of the northern valleys.",
    "It burned in 1902 after a fire and was rebuilt in stone.",
    "The engineer Oda Farrant designed the new water wheel.",
)


def _documents() -> list[dict[str, object]]:
    return [
        {
            "doc_id": "doc_0",
            "original_uuid": "harbour",
            # no title field: the first line reads as a heading
            "content": "Port Quillan\n\n" + "\n\n".join(HARBOUR),
            "chunks": [
                {"chunk_id": f"doc_0_chunk_{i}", "original_index": i, "content": t}
                for i, t in enumerate(HARBOUR)
            ],
        },
        {
            "original_uuid": "mill",
            "title": "Tessaly Mill",
            "content": "\n\n".join(MILL[:2]),
            # Python-literal text, and a chunk missing from the document's content
            "chunks": repr([{"original_index": i, "content": t} for i, t in enumerate(MILL)]),
        },
    ]


def _write_dataset(folder: Path, extra_lines: tuple[str, ...] = ()) -> Path:
    folder.mkdir()
    (folder / "codebase_chunks.json").write_text(json.dumps(_documents()))
    lines = [
        json.dumps({"query": "smoked eel shipped upriver", "golden_chunk_uuids": [["harbour", 0]]}),
        json.dumps({"query": "Tessaly Mill fire", "golden_chunk_uuids": "[['mill', 1]]"}),
        json.dumps(
            {
                "query": "who designed the water wheel of the rebuilt mill",
                "golden_chunk_uuids": [["mill", 1], ["mill", 2]],
            }
        ),
        *extra_lines,
    ]
    (folder / "evaluation_set.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def test_reads_anthropic_layout_with_literal_lists_and_offsets(tmp_path: Path) -> None:
    data = load_contextual(_write_dataset(tmp_path / "set"))
    assert [d.title for d in data.documents] == ["Port Quillan", "Tessaly Mill"]
    assert [c.id for c in data.chunks][:4] == ["harbour#0", "harbour#1", "harbour#2", "mill#0"]
    harbour = data.documents[0].text
    for chunk in data.chunks[:3]:
        assert harbour[chunk.start : chunk.end] == chunk.text
    # MILL[2] is not in the document: placed right after the previous chunk
    last = data.chunks[-1]
    assert last.text == MILL[2] and last.start == data.chunks[-2].end
    assert [q.golden for q in data.queries] == [["harbour#0"], ["mill#1"], ["mill#1", "mill#2"]]
    assert not data.issues and not data.graded


def test_bad_records_are_skipped_and_named(tmp_path: Path) -> None:
    bad = (
        "{not json",
        json.dumps({"golden_chunk_uuids": [["mill", 0]]}),
        json.dumps({"query": "q", "golden_chunk_uuids": [["mill", 9]]}),
        json.dumps({"query": "q", "golden_chunk_uuids": "[['mill', 0"}),
    )
    folder = _write_dataset(tmp_path / "set", bad)
    seen: list[LoadIssue] = []
    data = load_contextual(folder, on_error=seen.append)
    assert len(data.queries) == 3
    assert [str(i) for i in data.issues] == [str(i) for i in seen]
    where = [i.location.rsplit("/", 1)[-1] for i in seen]
    assert where == [f"evaluation_set.jsonl:{n}" for n in (4, 5, 6, 7)]
    assert "invalid JSON" in seen[0].problem
    assert seen[1].problem.startswith("query:")
    assert "unknown chunk mill#9" in seen[2].problem
    assert seen[3].problem.startswith("golden_chunk_uuids:")


def test_duplicate_documents_and_empty_sets(tmp_path: Path) -> None:
    folder = tmp_path / "set"
    folder.mkdir()
    doc = _documents()[0]
    (folder / "codebase_chunks.json").write_text(json.dumps([doc, doc]))
    (folder / "evaluation_set.jsonl").write_text("")
    issues: list[LoadIssue] = []
    with pytest.raises(DatasetError, match=r"evaluation_set\.jsonl"):
        load_contextual(folder, on_error=issues.append)
    assert [i.location.rsplit("/", 1)[-1] for i in issues] == ["codebase_chunks.json[1]"]
    assert "original_uuid: duplicate" in issues[0].problem
    with pytest.raises(DatasetError, match=r"no codebase_chunks\.json"):
        load_retrieval_set(tmp_path)


def test_guess_title() -> None:
    assert guess_title("# Tessaly Mill\n\nText.") == "Tessaly Mill"
    assert guess_title("One line only") == ""
    assert guess_title("package main;\nfunc x() {}") == ""
    assert guess_title("This is a sentence.\nMore.") == ""


def test_write_then_read_round_trip(tmp_path: Path) -> None:
    docs = [SourceDocument("mill", "Tessaly Mill", "\n\n".join(MILL), MILL)]
    write_contextual(tmp_path, docs, [GoldQuery("who built it", (("mill", 2),), "Oda")])
    data = load_retrieval_set(tmp_path)
    assert [c.text for c in data.chunks] == list(MILL)
    assert data.documents[0].title == "Tessaly Mill"
    assert data.queries[0].golden == ["mill#2"]
    line = json.loads((tmp_path / "evaluation_set.jsonl").read_text())
    # the shape Anthropic's notebook reads golden chunk texts from
    assert line["golden_documents"][0]["chunks"] == [{"index": 2, "content": MILL[2]}]


def test_reads_beir_with_graded_relevance(tmp_path: Path) -> None:
    (tmp_path / "qrels").mkdir()
    corpus = [{"_id": "a", "title": "Alpha", "text": "first"}, {"_id": "b", "text": "second"}]
    (tmp_path / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in corpus))
    queries = [{"_id": "q1", "text": "alpha?"}, {"_id": "q2", "text": "nothing"}]
    (tmp_path / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries))
    (tmp_path / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\ta\t2\nq1\tb\t0\nq1\tgone\t1\nq2\tb\t0\n"
    )
    issues: list[LoadIssue] = []
    data = load_beir_set(tmp_path, on_error=issues.append)
    assert data.graded and [c.id for c in data.chunks] == ["a#0", "b#0"]
    assert data.chunks[0].title == "Alpha" and data.chunks[0].text == "first"
    assert [(q.id, q.relevance) for q in data.queries] == [("q1", {"a#0": 2, "b#0": 0})]
    assert ["q2" in i.problem for i in issues] == [True]


def test_pass_at_k_benchmark_end_to_end(
    tmp_path: Path, settings: Settings, hash_embedder: HashEmbedder
) -> None:
    data = load_contextual(_write_dataset(tmp_path / "set"))
    pipelines = pipelines_for(["dense", "hybrid", "title"], rerank=False)
    run = run_benchmark(
        data,
        pipelines,
        settings,
        tmp_path / "indexes",
        ks=(1, 3),
        embedder=hash_embedder,
        progress=False,
    )
    scores = {r.pipeline.name: r.per_query for r in run.results}
    # the eel query is lexical: every pipeline ranks its chunk first
    assert all(s["pass@1"][0] == 1.0 for s in scores.values())
    # "Tessaly Mill fire": the fire-boat chunk outranks the mill's fire chunk until the
    # title context names the mill
    assert scores["hybrid"]["pass@1"][1] == 0.0 and scores["title"]["pass@1"][1] == 1.0
    # two golden chunks: Pass@1 can find at most half of them
    assert all(s["pass@1"][2] <= 0.5 for s in scores.values())
    assert set(run.build_seconds) == {"none", "title"}

    report = to_json(run)
    assert report["embedder"] == "test:hash64" and report["generator"] is None
    title = next(p for p in report["pipelines"] if p["name"] == "title")
    assert title["context"] == "title" and title["fusion"] == "rrf"
    mean = title["metrics"]["pass@1"]["mean"]
    assert title["metrics"]["failure@1"] == pytest.approx(1 - mean, abs=1e-4)
    assert "ndcg@10" not in title["metrics"]
    assert report["dataset"]["chunks"] == 6 and report["dataset"]["queries"] == 3
    assert [c.header for c in render_table(run).columns][:3] == ["pipeline", "pass@1", "pass@3"]


def test_unknown_mode_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown fast"):
        pipelines_for(["fast"], rerank=False)
    names = [p.name for p in pipelines_for(["hybrid"], rerank=True)]
    assert names == ["hybrid", "hybrid+rerank"]


def _demo_folder(folder: Path, paragraph: int) -> Path:
    folder.mkdir()
    docs = [{"id": "d1", "title": "Tessaly Mill", "text": "\n\n".join(MILL)}]
    (folder / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in docs))
    hop = {"question": "Who designed the wheel?", "answer": "Oda", "doc_id": "d1"}
    questions = [
        {"decomposition": [hop | {"paragraph": 2}, {"question": "Sum?", "answer": "3"}]},
        {"decomposition": [hop | {"paragraph": paragraph}]},
    ]
    (folder / "questions.jsonl").write_text("\n".join(json.dumps(q) for q in questions))
    return folder


def test_demo_conversion_uses_paragraphs_and_merges_repeated_hops(tmp_path: Path) -> None:
    assert convert(_demo_folder(tmp_path / "demo", 1), tmp_path / "out") == (1, 3, 1)
    data = load_contextual(tmp_path / "out")
    assert [c.text for c in data.chunks] == list(MILL)
    assert data.documents[0].title == "Tessaly Mill"
    # one query for the repeated sub-question, golden in both; the doc-less hop is dropped
    assert [(q.text, q.golden) for q in data.queries] == [
        ("Who designed the wheel?", ["d1#2", "d1#1"])
    ]
    with pytest.raises(ValueError, match=r"questions\.jsonl:2: decomposition\.0\.paragraph"):
        convert(_demo_folder(tmp_path / "bad", 3), tmp_path / "out2")
