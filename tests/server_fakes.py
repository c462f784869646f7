"""Test doubles for the server: a model that searches once and cites what it read, the
same model held back by an event, and a uvicorn server on a free loopback port."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

from reason_fakes import action
from reasonrag.llm.base import Completion, GenParams, Prompt, as_messages

ANSWER = "Port Quillan"
_CHUNK_ID = re.compile(r"\[([^\[\]\s]+#\d+)\]")


class ReaderGenerator:
    """Any method's model: a TAO step searches the question, then finishes citing the
    first chunk it was shown; a final-answer prompt gets ``ANSWER`` with that citation.
    Deterministic, so a streamed and a plain reply to one question are equal."""

    @property
    def name(self) -> str:
        return "test:reader"

    def generate(self, prompts: Sequence[Prompt], params: GenParams) -> list[Completion]:
        return [Completion(self._reply(p), prompt_tokens=7, completion_tokens=3) for p in prompts]

    def _reply(self, prompt: Prompt) -> str:
        messages = as_messages(prompt)
        # Only what follows the system prompt: its worked example names chunks too.
        shown = "\n".join(m.content for m in messages if m.role != "system")
        cited = _CHUNK_ID.search(shown)
        answer = f"{ANSWER} [{cited.group(1)}]" if cited else ANSWER
        if messages[-1].content.rstrip().endswith("Answer:"):
            return answer
        if not any(m.content.startswith("Observation:") for m in messages):
            question = messages[1].content.removeprefix("Question: ")
            return action("search", query=question)
        return action("finish", answer=answer)


class HeldGenerator(ReaderGenerator):
    """Waits for ``release`` before each generation after the first ``free`` ones, and
    sets ``started`` when one waits."""

    def __init__(self, free: int = 0) -> None:
        self.free = free
        self.started = threading.Event()
        self.release = threading.Event()

    def generate(self, prompts: Sequence[Prompt], params: GenParams) -> list[Completion]:
        if self.free:
            self.free -= 1
        else:
            self.started.set()
            assert self.release.wait(30), "the test never released the generator"
        return super().generate(prompts, params)


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """``app`` under uvicorn in a thread; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
