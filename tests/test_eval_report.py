"""Run summaries, tables, plots and paired comparisons, from hand-made run folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval_fakes import prediction, write_run
from reasonrag.eval.report import (
    compare_runs,
    load_summary,
    markdown_table,
    plot_metrics,
    replace_marked_section,
    summarize,
    write_report,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def four_predictions() -> list:
    return [
        prediction("a", 1.0, 1.0, steps=2, judge=1.0, retrieved_recall=1.0),
        prediction("b", 1.0, 0.5, steps=4, judge=1.0, retrieved_recall=0.5),
        prediction("c", 0.0, 0.5, steps=4, status="forced", judge=0.0, retrieved_recall=0.5),
        prediction("d", 0.0, 0.0, steps=6, status="failed", judge=0.0, retrieved_recall=0.0),
    ]


def test_summary_means_intervals_and_counts() -> None:
    info = {"config": {"dataset": "toy", "method": "tao"}, "machine": {"cpus": 2}}
    summary = summarize(four_predictions(), info)
    metrics = summary["metrics"]
    assert (summary["dataset"], summary["method"], summary["n"]) == ("toy", "tao", 4)
    assert metrics["em"]["mean"] == 0.5 and metrics["f1"]["mean"] == 0.5
    assert metrics["judge"]["mean"] == 0.5 and metrics["finished"]["mean"] == 0.5
    assert metrics["retrieved_recall"]["mean"] == 0.5
    assert "cited_recall" not in metrics  # no prediction has it
    em = metrics["em"]
    assert 0.0 <= em["low"] < 0.5 < em["high"] <= 1.0 and em["n"] == 4
    assert summary["usage"]["steps"] == 4.0
    assert summary["usage"]["prompt_tokens"] == 100 and summary["usage"]["completion_tokens"] == 10
    assert summary["usage"]["seconds_per_question"] == 0.25 and summary["wall_s"] == 1.0
    assert summary["status"] == {"finished": 2, "forced": 1, "failed": 1}
    assert summary["machine"] == {"cpus": 2} and summary["date"]


def test_constant_scores_have_a_zero_width_interval() -> None:
    preds = [prediction(str(i), 1.0, 1.0) for i in range(5)]
    em = summarize(preds, {})["metrics"]["em"]
    assert (em["mean"], em["low"], em["high"]) == (1.0, 1.0, 1.0)


def test_summary_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="no predictions"):
        summarize([], {})


def test_markdown_table_rows_and_percent_cells() -> None:
    preds = [prediction(str(i), 1.0, 1.0) for i in range(3)]
    table = markdown_table([summarize(preds, {"config": {"dataset": "toy", "method": "rag"}})])
    header, rule, row = table.splitlines()[:3]
    assert header.startswith("| dataset | method | n | EM | F1 | cover-EM |")
    assert "judge" not in header  # no run was judged
    assert rule.count("---") == header.count("|") - 1
    assert row.startswith("| toy | rag | 3 | 100.0 [100.0, 100.0] |")
    assert row.endswith("| 1.00 | 110 | 0.25 |")


def test_write_report_files(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", four_predictions(), method="tao")
    summary = write_report(run)
    saved = json.loads((run / "summary.json").read_text())
    assert saved["metrics"] == summary["metrics"] and saved["n"] == 4
    assert "| toy | tao | 4 |" in (run / "summary.md").read_text()
    for name in ("metrics.png", "steps.png"):
        data = (run / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 1000
    assert load_summary(run)["metrics"] == summary["metrics"]


def test_steps_plot_only_for_tao(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", four_predictions(), method="rag")
    write_report(run)
    assert (run / "metrics.png").exists() and not (run / "steps.png").exists()


def test_metrics_plot_of_several_runs(tmp_path: Path) -> None:
    summaries = [
        summarize(four_predictions(), {"config": {"dataset": d, "method": m}})
        for d in ("hotpotqa", "musique")
        for m in ("rag", "tao")
    ]
    plot_metrics(summaries, tmp_path / "all.png")
    assert (tmp_path / "all.png").read_bytes().startswith(PNG_MAGIC)


def test_compare_sign_and_shared_questions(tmp_path: Path) -> None:
    better = write_run(tmp_path / "a", [prediction(str(i), 1.0, 1.0, judge=1.0) for i in range(6)])
    worse = write_run(
        tmp_path / "b",
        [prediction(str(i), float(i % 2), 0.5) for i in range(6)] + [prediction("extra", 0.0, 0.0)],
    )
    rows = {r.metric: r for r in compare_runs(better, worse)}
    assert set(rows) == {"em", "f1"}  # judge only in run a
    em = rows["em"]
    assert em.n == 6 and (em.mean_a, em.mean_b, em.diff) == (1.0, 0.5, 0.5)
    assert em.low <= em.diff <= em.high and 0 < em.p_value <= 1
    assert rows["f1"].diff == 0.5 and rows["f1"].low == rows["f1"].high == 0.5
    assert compare_runs(worse, better)[0].diff == -0.5


def test_compare_without_shared_questions(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", [prediction("x", 1.0, 1.0)])
    b = write_run(tmp_path / "b", [prediction("y", 1.0, 1.0)])
    with pytest.raises(ValueError, match="share no question"):
        compare_runs(a, b)


def test_a_folder_without_run_json_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"run\.json is missing"):
        write_report(tmp_path)


def test_marked_section_is_replaced_and_the_rest_kept(tmp_path: Path) -> None:
    doc = tmp_path / "bench.md"
    doc.write_text("# Title\n\n<!-- t:begin -->\nold row\n<!-- t:end -->\n\nnotes\n")
    replace_marked_section(doc, "t", "| new | row |\n")
    expected = "# Title\n\n<!-- t:begin -->\n| new | row |\n<!-- t:end -->\n\nnotes\n"
    assert doc.read_text() == expected
    replace_marked_section(doc, "t", "again")
    assert "new" not in doc.read_text() and doc.read_text().count("again") == 1


def test_missing_markers_name_the_file_and_change_nothing(tmp_path: Path) -> None:
    doc = tmp_path / "bench.md"
    doc.write_text("<!-- t:end -->\n<!-- t:begin -->\n")
    with pytest.raises(ValueError, match=r"bench\.md.*t:begin"):
        replace_marked_section(doc, "t", "x")
    assert doc.read_text() == "<!-- t:end -->\n<!-- t:begin -->\n"
