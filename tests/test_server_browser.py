"""The web UI in a real headless Chromium: upload, ask, watch the trace, open a citation.

Skipped where Playwright's Python package or a ``chromium`` binary is missing (CI installs
both; Playwright's own browser download is never needed)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import HashEmbedder
from reasonrag.config import Settings
from reasonrag.index import Index
from reasonrag.server import create_app
from server_fakes import ANSWER, HeldGenerator, serving

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the browser tests need playwright (pip install playwright)"
)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip("the browser tests need a chromium binary on PATH", allow_module_level=True)

LIGHTHOUSE = "# Kestrel Light\n\nThe Kestrel lighthouse stands on Varrow Point, lit in 1867.\n"
QUESTION = "Which point does the Kestrel lighthouse stand on?"
WAIT_MS = 15_000


@pytest.fixture(scope="module")
def browser() -> Iterator[sync_api.Browser]:
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


def test_upload_ask_stream_and_open_a_citation(
    browser: sync_api.Browser,
    corpus_dir: Path,
    settings: Settings,
    hash_embedder: HashEmbedder,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    index = Index.build(
        [corpus_dir], settings, tmp_path / "idx", embedder=hash_embedder, progress=False
    )
    held = HeldGenerator(free=1)  # the search step streams at once; the finish step waits
    upload = tmp_path / "lighthouse.md"
    upload.write_text(LIGHTHOUSE)
    with serving(create_app(settings, index, held)) as url:
        page = browser.new_page(viewport={"width": 1200, "height": 820})
        page.set_default_timeout(WAIT_MS)
        page.goto(url)
        expect = sync_api.expect
        expect(page.locator("#method option")).to_have_count(4)
        expect(page.locator("#documents li")).to_have_count(3)

        page.set_input_files("#files", str(upload))
        page.click("#upload button[type=submit]")
        expect(page.locator("#upload-status")).to_have_text("added lighthouse.md")
        expect(page.locator("#documents li")).to_have_count(4)
        expect(page.locator("#stats")).to_contain_text("4 documents")

        page.fill("#question", QUESTION)
        page.click("#go")
        trace = page.locator("#trace li")
        expect(trace).to_have_count(1)  # streamed while the next step is still generating
        expect(trace.first.locator(".action")).to_contain_text("search")
        expect(trace.first.locator(".snippet").first).to_contain_text("lighthouse.md#0")
        expect(page.locator("#answer")).to_be_hidden()
        held.release.set()

        expect(page.locator("#answer-text")).to_contain_text(ANSWER)
        expect(trace).to_have_count(2)
        expect(page.locator("#citations li")).to_contain_text(["lighthouse.md#0"])
        page.locator("#answer-text .cite").first.click()
        chunk = page.locator("#chunk")
        expect(chunk).to_be_visible()
        expect(page.locator("#chunk-title")).to_contain_text("lighthouse.md#0")
        expect(page.locator("#chunk-text")).to_contain_text("stands on Varrow Point")
        marked = page.locator("#chunk-text mark").all_inner_texts()
        assert {"Kestrel", "lighthouse"} <= set(marked) and "Varrow" not in marked
        expect(page.locator("#error")).to_be_hidden()

        shot = request.config.getoption("--ui-screenshot") or tmp_path / "server-ui.png"
        page.screenshot(path=str(shot), full_page=True)
        page.close()
