"""Trace records as JSON, trace files, and the live rich tree."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console
from rich.live import Live

from reason_fakes import KeywordRetriever, ScriptedGenerator, action
from reasonrag.reason import Answer, TaoAgent, save_traces
from reasonrag.reason.render import TraceView, trace_tree

QUESTION = "Where was Corvin Haldane born?"
ALL = ("search", "finish", "verify", "calculate", "rethink")


def run(question: str = QUESTION, view: TraceView | None = None) -> Answer:
    generator = ScriptedGenerator(
        [
            action("search", query="Corvin Haldane born"),
            action("search", query="Orlen Bridge [bold]"),
            action("rethink"),
            action("calculate", expression="1923 - 1874"),
            action("finish", answer="Pellmoor [haldane#0] [nowhere#9]"),
        ]
    )
    return TaoAgent(generator, KeywordRetriever(), actions=ALL).ask(question, on_step=view)


def text_of(renderable: object) -> str:
    console = Console(file=io.StringIO(), width=120, color_system=None)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_answer_to_dict_is_json_with_ids_and_scores() -> None:
    record = json.loads(json.dumps(run().to_dict()))
    assert record["question"] == QUESTION and record["method"] == "tao"
    assert record["answer"] == "Pellmoor" and record["status"] == "finished"
    assert record["citations"] == [
        {"chunk_id": "haldane#0", "doc_id": "haldane", "title": "Corvin Haldane", "inferred": False}
    ]
    assert record["dropped_citations"] == ["nowhere#9"]
    steps = record["trace"]["steps"]
    assert [s["action"] for s in steps] == ["search", "search", "rethink", "calculate", "finish"]
    first_hit = steps[0]["hits"][0]
    assert set(first_hit) == {"chunk_id", "doc_id", "title", "score", "rank", "stage_scores"}
    assert steps[1]["discarded"] is True
    assert record["usage"]["steps"] == 5
    assert record["usage"]["completion_tokens"] == sum(s["completion_tokens"] for s in steps)


def test_save_traces_appends_one_line_per_answer(tmp_path: Path) -> None:
    path = tmp_path / "runs" / "traces.jsonl"
    first, second = run(), run("Who was Corvin Haldane?")
    save_traces(path, [first])
    save_traces(path, [second])
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["question"] for line in lines] == [QUESTION, "Who was Corvin Haldane?"]


def test_live_view_grows_step_by_step() -> None:
    view = TraceView(QUESTION)
    snapshots: list[str] = []

    class Recording(TraceView):
        def __call__(self, question: str, step: object) -> None:
            super().__call__(question, step)  # type: ignore[arg-type]
            snapshots.append(text_of(self))

    recording = Recording(QUESTION)
    answer = run(view=recording)
    assert [s.count("\n") for s in snapshots] == sorted(s.count("\n") for s in snapshots)
    assert "1. search Corvin Haldane born" in snapshots[0]
    assert "2. search" not in snapshots[0]
    assert "5. finish" in snapshots[-1]
    view.finish(answer)
    final = text_of(view)
    assert "Answer: Pellmoor" in final and "[haldane#0] Corvin Haldane" in final
    assert "Result: 49" in final
    assert "set aside" in final  # rethink's effect shows once the run is finished
    assert "dropped citations (not retrieved): nowhere#9" in final
    # brackets from the model's text are shown literally, never read as markup
    assert "Orlen Bridge [bold]" in final


def test_view_ignores_other_questions() -> None:
    view = TraceView("another question")
    run(view=view)
    assert "1." not in text_of(view)


def test_view_works_inside_rich_live() -> None:
    console = Console(file=io.StringIO(), width=100, color_system=None, force_terminal=True)
    view = TraceView(QUESTION)
    with Live(view, console=console, auto_refresh=False) as live:
        answer = run(view=view)
        view.finish(answer)
        live.refresh()
    assert "Answer:" in console.file.getvalue()  # type: ignore[attr-defined]
    assert text_of(trace_tree(answer)) == text_of(view)
