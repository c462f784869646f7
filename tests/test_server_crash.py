"""``reasonrag serve`` as a real process, killed with SIGKILL in the middle of indexing an
upload: the index on disk must still be the one from before, and a restarted server must
answer from it.

Embeddings and generation come from the fake OpenAI-compatible API of ``llm_fakes``, which
also tells the test exactly when the server is embedding the upload: the kill lands there
rather than after a guessed delay."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from llm_fakes import FakeAPI, fake_api_server
from reasonrag.config import EmbedConfig, LLMConfig, Settings
from reasonrag.index import Index

START_TIMEOUT_S = 120.0
"""The server imports torch and friends; the CPUs may be shared."""
UPLOAD_BATCHES = 30
"""Embedding requests the upload needs, far more than the kill waits for."""
KILL_AT_BATCH = 3
WORDS = ["mill", "river", "bridge", "harbour", "engineer", "barley", "salt", "stone", "eel"]


@pytest.fixture
def api() -> Iterator[FakeAPI]:
    with fake_api_server() as server:
        yield server


def _api_settings(settings: Settings, api: FakeAPI) -> Settings:
    """Embedder and generator both behind the fake API: nothing to load in the server."""
    return settings.model_copy(
        update={
            "embed": EmbedConfig(backend="openai", model="emb", base_url=api.openai_url),
            "llm": LLMConfig(backend="openai", model="gen", base_url=api.openai_url),
        }
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _server(folder: Path, api: FakeAPI, cache: Path, log: Path) -> Iterator[tuple[str, int]]:
    """``reasonrag serve folder`` in a subprocess; yields its URL and process id once it
    answers /healthz, and kills it at the end if it still runs."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REASONRAG_")}
    env |= {
        "REASONRAG_CACHE_DIR": str(cache),
        "REASONRAG_LLM__BACKEND": "openai",
        "REASONRAG_LLM__MODEL": "gen",
        "REASONRAG_LLM__BASE_URL": api.openai_url,
        "PYTHONPATH": os.pathsep.join(sys.path),
        # A killed server cannot remove its upload folder: it is left here, not in /tmp.
        "TMPDIR": str(cache.parent),
    }
    command = [sys.executable, "-m", "reasonrag.cli", "serve", str(folder), "--port", str(port)]
    with log.open("ab") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert process.poll() is None, f"serve exited: {log.read_text()}"
            assert time.monotonic() < deadline, f"serve did not start: {log.read_text()}"
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield url, process.pid
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def _big_document(chunks: int) -> bytes:
    """About ``chunks`` chunks of 200 tokens: paragraphs of 150 words each."""
    rng = random.Random(0)
    paragraphs = (" ".join(rng.choice(WORDS) for _ in range(150)) + "." for _ in range(chunks))
    return ("# Ledger\n\n" + "\n\n".join(paragraphs) + "\n").encode()


def test_kill_9_while_indexing_an_upload_keeps_the_index_before_it(
    api: FakeAPI, corpus_dir: Path, settings: Settings, tmp_path: Path
) -> None:
    cfg = _api_settings(settings, api)
    folder = tmp_path / "idx"
    before = Index.build([corpus_dir], cfg, folder, progress=False).documents()
    log = tmp_path / "serve.log"
    batch = cfg.embed.batch_size
    document = _big_document(UPLOAD_BATCHES * batch)

    with _server(folder, api, tmp_path / "serve-cache", log) as (url, pid):
        embedded = len(api.state.bodies("/v1/embeddings"))
        outcome: list[BaseException | httpx.Response] = []

        def upload() -> None:
            files = [("files", ("ledger.md", document, "text/markdown"))]
            try:
                outcome.append(httpx.post(f"{url}/v1/documents", files=files, timeout=120))
            except httpx.TransportError as exc:
                outcome.append(exc)

        uploading = threading.Thread(target=upload)
        uploading.start()
        deadline = time.monotonic() + 60
        while len(api.state.bodies("/v1/embeddings")) < embedded + KILL_AT_BATCH:
            assert time.monotonic() < deadline and not outcome, f"no embedding: {outcome}"
            time.sleep(0.005)
        os.kill(pid, signal.SIGKILL)
        uploading.join(30)
    assert len(outcome) == 1 and isinstance(outcome[0], httpx.TransportError), outcome

    reopened = Index.open(folder, cfg)
    assert reopened.documents() == before
    with _server(folder, api, tmp_path / "serve-cache", log) as (url, _):
        hits = httpx.post(f"{url}/v1/search", json={"query": "Tessaly Mill barley", "k": 3})
        assert hits.status_code == 200, hits.text
        found = {h["doc_id"] for h in hits.json()["hits"]}
        assert found and found <= set(before)
        page = b"# Kestrel Light\n\nOn Varrow Point.\n"
        files = [("files", ("lighthouse.md", page, "text/markdown"))]
        again = httpx.post(f"{url}/v1/documents", files=files, timeout=60)
        assert again.status_code == 200, again.text  # the dead writer left no lock behind
    assert Index.open(folder, cfg).documents() == {**before, "lighthouse.md": 1}
