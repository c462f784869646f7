"""``create_app``: the routes of the server over one index and one generator."""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from reasonrag import __version__
from reasonrag.config import MethodName, Settings
from reasonrag.errors import AnswerTimeoutError, InputError, ReasonRAGError, UnauthorizedError
from reasonrag.index import Index
from reasonrag.index.info import describe
from reasonrag.llm.base import Generator
from reasonrag.reason.records import Step
from reasonrag.server.chat import (
    DONE,
    MODEL_PREFIX,
    ChatRequest,
    ChunkStream,
    completion,
    method_of,
    model_list,
    question_of,
    sse,
)
from reasonrag.server.library import Library
from reasonrag.server.questions import Questions
from reasonrag.server.security import BodyLimit, error_body, key_checker
from reasonrag.server.uploads import target

STATIC = Path(__file__).parent / "static"
MAX_FILES = 100
"""Files per upload request."""

log = logging.getLogger(__name__)


class AskRequest(BaseModel):
    question: str
    method: MethodName | None = None
    """Default: ``agent.method`` of the server's settings."""


class SearchRequest(BaseModel):
    query: str
    k: int = Field(10, ge=1, le=100)


def create_app(settings: Settings, index: Index, generator: Generator | None = None) -> FastAPI:
    """The server over ``index``; ``generator`` answers every method but clara (default:
    the one ``settings.llm`` describes, loaded now so a bad model fails at start)."""
    if generator is None:
        from reasonrag.llm.factory import make_generator

        generator = make_generator(settings.llm, settings.cache_dir)
    library = Library(index)
    questions = Questions(settings, library, generator)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        questions.close()

    app = FastAPI(title="reasonrag", version=__version__, lifespan=lifespan)
    _handle_errors(app)
    app.add_middleware(BodyLimit, max_bytes=int(settings.server.max_upload_mb * 2**20))
    if settings.server.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.server.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(_openai_routes(settings, questions))
    app.include_router(_native_routes(settings, library, questions))
    app.mount("/", StaticFiles(directory=STATIC, html=True), name="ui")
    return app


def _handle_errors(app: FastAPI) -> None:
    """Every error leaves as ``{"error": {"message", "type"}}`` with its class's status."""

    @app.exception_handler(ReasonRAGError)
    async def known(_: Request, exc: ReasonRAGError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, UnauthorizedError) else None
        return JSONResponse(error_body(exc), status_code=exc.http_status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        fields = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        return JSONResponse(error_body(InputError(f"invalid request: {fields}")), status_code=400)

    @app.exception_handler(HTTPException)
    async def http(_: Request, exc: HTTPException) -> JSONResponse:
        body = {"error": {"message": str(exc.detail), "type": "HTTPException"}}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


def _openai_routes(settings: Settings, questions: Questions) -> APIRouter:
    api = APIRouter(prefix="/v1", dependencies=[Depends(key_checker(settings.server))])

    @api.get("/models")
    def models() -> dict[str, Any]:
        return model_list(settings)

    @api.post("/chat/completions", response_model=None)
    async def chat(body: ChatRequest) -> dict[str, Any] | StreamingResponse:
        method = method_of(body.model, settings)
        question = question_of(body)
        if not body.stream:
            answer = await questions.wait(questions.start(method, question))
            return completion(body.model, answer)
        events = _stream(questions, method, question, ChunkStream(body.model))
        return StreamingResponse(
            events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    return api


def _stream(
    questions: Questions, method: MethodName, question: str, chunks: ChunkStream
) -> AsyncIterator[str]:
    """Start answering now, so a full queue is still an HTTP status, and stream each step
    as the worker thread reports it, then the answer."""
    loop = asyncio.get_running_loop()
    steps: asyncio.Queue[Step | None] = asyncio.Queue()

    def on_step(_: str, step: Step) -> None:
        loop.call_soon_threadsafe(steps.put_nowait, step)

    future = questions.start(method, question, on_step)
    # Scheduled after the steps the thread reported, so None arrives last.
    future.add_done_callback(lambda _: steps.put_nowait(None))
    timeout = questions.settings.server.request_timeout_s
    snippet_chars = questions.settings.agent.snippet_chars

    async def events() -> AsyncIterator[str]:
        yield chunks.start()
        deadline = loop.time() + timeout
        try:
            while True:
                step = await asyncio.wait_for(steps.get(), max(deadline - loop.time(), 0.0))
                if step is None:
                    break
                yield chunks.step(step, snippet_chars)
            answer = future.result()
        except asyncio.TimeoutError:
            yield sse(error_body(AnswerTimeoutError(f"no answer within {timeout:g} s")))
            yield DONE
            return
        except ReasonRAGError as exc:
            yield sse(error_body(exc))
            yield DONE
            return
        except Exception:  # the status line is gone; the client still deserves an end
            log.exception("streamed question failed")
            yield sse({"error": {"message": "internal error", "type": "InternalError"}})
            yield DONE
            return
        for event in chunks.answer(answer):
            yield event

    return events()


def _native_routes(settings: Settings, library: Library, questions: Questions) -> APIRouter:
    api = APIRouter(prefix="/v1", dependencies=[Depends(key_checker(settings.server))])

    @api.post("/ask")
    async def ask(body: AskRequest) -> dict[str, Any]:
        method = method_of(MODEL_PREFIX + (body.method or settings.agent.method), settings)
        if not body.question.strip():
            raise InputError("the question is empty")
        return (await questions.wait(questions.start(method, body.question))).to_dict()

    @api.post("/search")
    async def search(body: SearchRequest) -> dict[str, Any]:
        hits = await run_in_threadpool(library.index.search, body.query, body.k)
        return {"query": body.query, "hits": [asdict(h) for h in hits]}

    @api.get("/index")
    async def index_info() -> dict[str, Any]:
        return await run_in_threadpool(describe, library.index.folder)

    @api.get("/documents")
    def documents() -> dict[str, Any]:
        return {"documents": list(_documents(library.index))}

    @api.post("/documents")
    async def upload(request: Request) -> dict[str, Any]:
        async with request.form(max_files=MAX_FILES) as form:
            files = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
            if not files:
                raise InputError("the upload holds no files (multipart form, field 'files')")
            with tempfile.TemporaryDirectory(prefix="reasonrag-upload-") as tmp:
                paths = [target(Path(tmp), f.filename or "") for f in files]
                for file, path in zip(files, paths, strict=True):
                    with path.open("wb") as out:
                        shutil.copyfileobj(file.file, out)
                added, skipped = await run_in_threadpool(library.add, paths)
        return {
            "added": added,
            "skipped": [{"file": Path(p).name, "reason": r} for p, r in skipped],
            "documents": len(library.index.documents()),
            "chunks": len(library.index),
        }

    @api.delete("/documents/{doc_id:path}")
    async def delete(doc_id: str) -> dict[str, Any]:
        removed = await run_in_threadpool(library.delete, doc_id)
        return {"deleted": doc_id, "chunks": removed}

    @api.get("/chunks/{chunk_id:path}")
    def chunk(chunk_id: str) -> dict[str, Any]:
        index = library.index
        found = index.get([chunk_id])[0]
        return {
            "chunk_id": found.id,
            "doc_id": found.doc_id,
            "title": found.title,
            "text": found.text,
            "context": index.context_of(chunk_id),
            "headings": list(found.headings),
        }

    return api


def _documents(index: Index) -> Iterator[dict[str, Any]]:
    titles = {c.doc_id: c.title for c in reversed(index.chunks)}
    for doc_id, chunks in index.documents().items():
        yield {"id": doc_id, "chunks": chunks, "title": titles[doc_id]}
