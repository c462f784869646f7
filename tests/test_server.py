"""The HTTP server over a tiny hash-embedded index, answered by a deterministic model."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import openai
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from conftest import HashEmbedder
from reasonrag.cli import app as cli
from reasonrag.config import ClaraConfig, ServerConfig, Settings
from reasonrag.errors import ConfigError, InputError, UnsupportedTypeError
from reasonrag.index import Index
from reasonrag.llm.base import Generator
from reasonrag.server import check_bind, create_app
from reasonrag.server.library import Library
from reasonrag.server.uploads import safe_name
from server_fakes import ANSWER, HeldGenerator, ReaderGenerator, serving

KEY = "test-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
QUESTION = "Where was Oda Farrant born?"
LIGHTHOUSE = "# Kestrel Light\n\nThe Kestrel lighthouse stands on Varrow Point, lit in 1867.\n"


@pytest.fixture
def index(
    corpus_dir: Path, settings: Settings, hash_embedder: HashEmbedder, tmp_path: Path
) -> Index:
    return Index.build(
        [corpus_dir], settings, tmp_path / "idx", embedder=hash_embedder, progress=False
    )


def make_app(
    settings: Settings, index: Index, generator: Generator | None = None, **server: Any
) -> FastAPI:
    cfg = settings.model_copy(update={"server": ServerConfig(**server)})
    return create_app(cfg, index, generator or ReaderGenerator())


@pytest.fixture
def client(settings: Settings, index: Index) -> TestClient:
    return TestClient(make_app(settings, index))


# ---------------------------------------------------------------------------------- auth
def test_with_keys_every_v1_route_needs_the_right_bearer_key(
    settings: Settings, index: Index
) -> None:
    client = TestClient(make_app(settings, index, api_keys=[KEY]))
    missing = client.get("/v1/models")
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert missing.json()["error"]["type"] == "UnauthorizedError"
    assert client.get("/v1/documents", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get("/v1/documents", headers={"Authorization": KEY}).status_code == 401
    assert client.post("/v1/search", json={"query": "mill"}).status_code == 401
    assert client.get("/v1/models", headers=AUTH).status_code == 200
    assert client.get("/healthz").json() == {"status": "ok"}
    page = client.get("/")
    assert page.status_code == 200 and "<title>reasonrag</title>" in page.text
    assert client.get("/app.js").status_code == 200


def test_without_keys_only_loopback_may_be_bound() -> None:
    open_server = ServerConfig()
    for host in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"):
        check_bind(host, open_server)
    for host in ("0.0.0.0", "192.168.1.4", "::", "example.org"):
        with pytest.raises(ConfigError, match="without an API key"):
            check_bind(host, open_server)
    check_bind("0.0.0.0", ServerConfig(api_keys=[KEY]))


def test_serve_on_a_public_address_without_a_key_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REASONRAG_SERVER__API_KEYS", raising=False)
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: pytest.fail("must not start"))
    result = CliRunner().invoke(cli, ["serve", str(tmp_path / "idx"), "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "error:" in result.output and "without an API key" in result.output


def test_serve_with_a_key_from_the_environment_starts_uvicorn(
    index: Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: dict[str, Any] = {}
    monkeypatch.setenv("REASONRAG_SERVER__API_KEYS", json.dumps([KEY]))
    monkeypatch.setattr("reasonrag.index.index.make_embedder", lambda cfg: HashEmbedder())
    monkeypatch.setattr("reasonrag.llm.factory.make_generator", lambda *a: ReaderGenerator())
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: started.update(kw, app=app))
    result = CliRunner().invoke(cli, ["serve", str(index.folder), "--host", "0.0.0.0"])
    assert result.exit_code == 0, result.output
    assert (started["host"], started["port"]) == ("0.0.0.0", 8000)
    assert TestClient(started["app"]).get("/v1/models").status_code == 401
    assert KEY not in result.output


# ------------------------------------------------------------------------------- uploads
def test_upload_is_searchable_then_deleted(client: TestClient) -> None:
    files = [("files", ("notes/lighthouse.md", LIGHTHOUSE.encode(), "text/markdown"))]
    reply = client.post("/v1/documents", files=files)
    assert reply.status_code == 200, reply.text
    assert reply.json()["added"] == ["lighthouse.md"] and reply.json()["documents"] == 4
    hits = client.post("/v1/search", json={"query": "Kestrel lighthouse Varrow", "k": 2}).json()
    assert hits["hits"][0]["doc_id"] == "lighthouse.md"
    listed = {d["id"]: d for d in client.get("/v1/documents").json()["documents"]}
    assert listed["lighthouse.md"] == {"id": "lighthouse.md", "chunks": 1, "title": "Kestrel Light"}
    stats = client.get("/v1/index").json()
    assert stats["documents_total"] == 4 and stats["embedder"].startswith("test:hash64")

    assert client.delete("/v1/documents/lighthouse.md").json() == {
        "deleted": "lighthouse.md",
        "chunks": 1,
    }
    assert "lighthouse.md" not in {d["id"] for d in client.get("/v1/documents").json()["documents"]}
    again = client.delete("/v1/documents/lighthouse.md")
    assert again.status_code == 404 and again.json()["error"]["type"] == "DocumentNotFoundError"


def test_upload_over_the_limit_is_413(settings: Settings, index: Index) -> None:
    client = TestClient(make_app(settings, index, max_upload_mb=0.01))
    big = ("files", ("big.txt", b"salt eel barley " * 2000, "text/plain"))
    reply = client.post("/v1/documents", files=[big])
    assert reply.status_code == 413 and "max_upload_mb" in reply.json()["error"]["message"]

    def chunked() -> Any:  # no Content-Length: the limit must hold while reading
        yield b"--x\r\nContent-Disposition: form-data; name=files; filename=a.txt\r\n\r\n"
        for _ in range(20):
            yield b"a" * 1024

    headers = {"Content-Type": "multipart/form-data; boundary=x"}
    reply = client.post("/v1/documents", content=chunked(), headers=headers)
    assert reply.status_code == 413
    assert "big.txt" not in client.get("/v1/documents").text


def test_upload_of_an_unindexed_type_is_415(client: TestClient) -> None:
    reply = client.post("/v1/documents", files=[("files", ("tool.exe", b"MZ", "x/y"))])
    assert reply.status_code == 415 and reply.json()["error"]["type"] == "UnsupportedTypeError"


@pytest.mark.parametrize("name", ["../../etc/passwd", "a/../../b.txt", "..\\..\\c.md", ".env.md"])
def test_hostile_file_names_are_refused_and_write_nothing(
    client: TestClient, tmp_path: Path, name: str
) -> None:
    before = sorted(p.name for p in tmp_path.parent.iterdir())
    reply = client.post(
        "/v1/documents", files=[("files", (name, LIGHTHOUSE.encode(), "text/plain"))]
    )
    assert reply.status_code in (400, 415), reply.text
    assert sorted(p.name for p in tmp_path.parent.iterdir()) == before
    assert len(client.get("/v1/documents").json()["documents"]) == 3


def test_safe_name_keeps_only_a_plain_last_component() -> None:
    assert safe_name("C:\\Users\\me\\report.PDF") == "report.PDF"
    assert safe_name("docs/guide.md") == "guide.md"
    for hostile in ("x\x00.txt", "../x.txt", "a/../b.txt", ".hidden.txt", "dir/", ""):
        with pytest.raises(InputError):
            safe_name(hostile)
    with pytest.raises(UnsupportedTypeError):
        safe_name("passwd")


def test_readers_keep_the_old_generation_until_the_swap(index: Index, tmp_path: Path) -> None:
    library = Library(index)
    page = tmp_path / "lighthouse.md"
    page.write_text(LIGHTHOUSE)
    served = library.index
    assert library.add([page]) == (["lighthouse.md"], [])
    assert "lighthouse.md" not in served.documents()
    assert {h.doc_id for h in served.search("Kestrel lighthouse", 5)} <= set(served.documents())
    assert "lighthouse.md" in library.index.documents() and library.index is not served


# ------------------------------------------------------------------------ OpenAI surface
def test_models_list_the_methods_and_clara_only_when_configured(
    settings: Settings, index: Index, client: TestClient
) -> None:
    ids = [m["id"] for m in client.get("/v1/models").json()["data"]]
    assert ids == ["reasonrag-tao", "reasonrag-rag", "reasonrag-rare", "reasonrag-closed"]
    with_clara = settings.model_copy(update={"clara": ClaraConfig(model=Path("clara-model"))})
    ids = [
        m["id"] for m in TestClient(make_app(with_clara, index)).get("/v1/models").json()["data"]
    ]
    assert ids[-1] == "reasonrag-clara"


def _openai(client: httpx.Client, base_url: str = "http://testserver") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key=KEY, http_client=client, max_retries=0)


def test_chat_completion_through_the_openai_client(settings: Settings, index: Index) -> None:
    chat = _openai(TestClient(make_app(settings, index, api_keys=[KEY])))
    reply = chat.chat.completions.create(
        model="reasonrag-tao",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Where was Tessaly Mill?"},
            {"role": "assistant", "content": "In the north."},
            {"role": "user", "content": QUESTION},
        ],
    )
    content = reply.choices[0].message.content
    assert content is not None and content.startswith(f"{ANSWER} [1]\n\n[1] ")
    record = reply.model_extra["reasonrag"]
    assert record["question"] == QUESTION and record["method"] == "tao"
    assert [s["action"] for s in record["trace"]["steps"]] == ["search", "finish"]
    assert record["citations"][0]["chunk_id"] in content
    with pytest.raises(openai.NotFoundError):
        chat.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.AuthenticationError):
        _openai(TestClient(make_app(settings, index, api_keys=["other"]))).models.list()


def test_streamed_chat_sends_each_step_then_the_same_answer(
    settings: Settings, index: Index
) -> None:
    app = make_app(settings, index, api_keys=[KEY])
    with serving(app) as url, httpx.Client() as http:
        chat = _openai(http, url)
        messages: Any = [{"role": "user", "content": QUESTION}]
        plain = chat.chat.completions.create(model="reasonrag-tao", messages=messages)
        chunks = list(
            chat.chat.completions.create(model="reasonrag-tao", messages=messages, stream=True)
        )
    deltas = [c.choices[0].delta for c in chunks]
    extras = [c.model_extra.get("reasonrag") or {} for c in chunks]
    assert [e["step"]["action"] for e in extras if "step" in e] == ["search", "finish"]
    assert next(e for e in extras if e.get("snippets"))["snippets"][0]["text"]
    reasoning = "".join(d.model_extra.get("reasoning_content") or "" for d in deltas)
    assert "Action: search" in reasoning
    assert "".join(d.content or "" for d in deltas) == plain.choices[0].message.content
    assert chunks[-1].choices[0].finish_reason == "stop" and extras[-1]["answer"] == ANSWER


def test_a_step_is_streamed_while_the_next_is_still_being_generated(
    settings: Settings, index: Index
) -> None:
    held = HeldGenerator(free=1)  # the search step comes at once, the finish step waits
    with serving(make_app(settings, index, held)) as url, httpx.Client() as http:
        stream = _openai(http, url).chat.completions.create(
            model="reasonrag-tao", messages=[{"role": "user", "content": QUESTION}], stream=True
        )
        for chunk in stream:
            step = (chunk.model_extra.get("reasonrag") or {}).get("step")
            if step and step["action"] == "search":
                assert not held.release.is_set()
                held.release.set()
    assert chunk.choices[0].finish_reason == "stop" and held.release.is_set()


def test_stream_ends_with_done(client: TestClient) -> None:
    body = {
        "model": "reasonrag-rag",
        "messages": [{"role": "user", "content": QUESTION}],
        "stream": True,
    }
    with client.stream("POST", "/v1/chat/completions", json=body) as reply:
        assert reply.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in reply.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    assert json.loads(lines[-2][6:])["choices"][0]["finish_reason"] == "stop"


# ------------------------------------------------------------------------- native API
def test_ask_returns_the_answer_record(client: TestClient) -> None:
    record = client.post("/v1/ask", json={"question": QUESTION, "method": "rag"}).json()
    assert (record["answer"], record["method"], record["status"]) == (ANSWER, "rag", "finished")
    chunk_id = record["citations"][0]["chunk_id"]
    chunk = client.get(f"/v1/chunks/{quote(chunk_id, safe='')}").json()
    assert chunk["chunk_id"] == chunk_id and chunk["text"] and "context" in chunk
    missing = client.get("/v1/chunks/nowhere.md%230")
    assert missing.status_code == 404
    assert client.post("/v1/ask", json={"question": "  "}).status_code == 400
    assert client.post("/v1/ask", json={"question": QUESTION, "method": "clara"}).status_code == 404
    bad = client.post("/v1/ask", json={"nothing": 1})
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "InputError"


def test_a_full_queue_is_503_and_a_slow_answer_504(settings: Settings, index: Index) -> None:
    held = HeldGenerator()
    app = make_app(settings, index, held, max_queue=1, request_timeout_s=30)
    body = {"question": QUESTION, "method": "closed"}
    with serving(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        first: dict[str, httpx.Response] = {}
        waiting = threading.Thread(target=lambda: first.update(r=http.post("/v1/ask", json=body)))
        waiting.start()
        assert held.started.wait(10)
        busy = http.post("/v1/ask", json=body)
        assert busy.status_code == 503 and "max_queue" in busy.json()["error"]["message"]
        stream = {
            "model": "reasonrag-closed",
            "messages": [{"role": "user", "content": "q"}],
            "stream": True,
        }
        assert http.post("/v1/chat/completions", json=stream).status_code == 503
        held.release.set()
        waiting.join(10)
    assert first["r"].status_code == 200 and first["r"].json()["answer"] == ANSWER

    slow = HeldGenerator()
    app = make_app(settings, index, slow, request_timeout_s=0.2)
    reply = TestClient(app).post("/v1/ask", json=body)
    slow.release.set()
    assert reply.status_code == 504 and reply.json()["error"]["type"] == "AnswerTimeoutError"


def test_cors_is_closed_unless_origins_are_set(settings: Settings, index: Index) -> None:
    origin = {"Origin": "https://elsewhere.example"}
    closed = TestClient(make_app(settings, index)).get("/v1/models", headers=origin)
    assert "access-control-allow-origin" not in closed.headers
    opened = TestClient(make_app(settings, index, cors_origins=["https://elsewhere.example"]))
    reply = opened.get("/v1/models", headers=origin)
    assert reply.headers["access-control-allow-origin"] == "https://elsewhere.example"
