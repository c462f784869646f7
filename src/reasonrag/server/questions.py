"""Answering questions off the event loop, a bounded number at a time."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from reasonrag.agents import make_agent
from reasonrag.config import MethodName, Settings
from reasonrag.errors import AnswerTimeoutError, ServerBusyError
from reasonrag.index import Index
from reasonrag.llm.base import Generator
from reasonrag.reason import Agent
from reasonrag.reason.machine import StepCallback
from reasonrag.reason.records import Answer
from reasonrag.server.library import Library


class Questions:
    """Runs ``Agent.ask`` in worker threads, admitting at most ``server.max_queue``
    questions at once (the rest get ``ServerBusyError``) and giving up waiting after
    ``server.request_timeout_s`` (``AnswerTimeoutError``).

    A question keeps its place until its thread ends, even when its client has given up
    waiting: threads cannot be stopped, and admitting more than the generator is running
    would only grow a backlog nobody waits for."""

    def __init__(self, settings: Settings, library: Library, generator: Generator):
        self.settings = settings
        self.library = library
        self.generator = generator
        cfg = settings.server
        self._places = threading.BoundedSemaphore(cfg.max_queue)
        self._pool = ThreadPoolExecutor(cfg.max_queue, thread_name_prefix="reasonrag-ask")
        self._agents: dict[MethodName, tuple[Index, Agent]] = {}
        self._agents_lock = threading.Lock()

    def agent(self, method: MethodName) -> Agent:
        """The agent of ``method`` over the index served now; built once per index
        generation, since the clara method loads a model."""
        index = self.library.index
        with self._agents_lock:
            built = self._agents.get(method)
            if built is None or built[0] is not index:
                agent_cfg = self.settings.agent.model_copy(update={"method": method})
                settings = self.settings.model_copy(update={"agent": agent_cfg})
                built = index, make_agent(settings, retriever=index, generator=self.generator)
                self._agents[method] = built
            return built[1]

    def start(
        self, method: MethodName, question: str, on_step: StepCallback | None = None
    ) -> asyncio.Future[Answer]:
        """Admit the question and start answering it; raises ``ServerBusyError`` at once
        when the queue is full (so a streaming reply can still carry the status)."""
        agent = self.agent(method)
        if not self._places.acquire(blocking=False):
            raise ServerBusyError(
                f"the server is answering {self.settings.server.max_queue} questions already "
                "(server.max_queue); retry shortly"
            )

        def answer() -> Answer:
            try:
                return agent.ask(question, on_step)
            finally:
                self._places.release()

        try:
            return asyncio.get_running_loop().run_in_executor(self._pool, answer)
        except BaseException:
            self._places.release()
            raise

    async def wait(self, future: asyncio.Future[Answer]) -> Answer:
        timeout = self.settings.server.request_timeout_s
        try:
            # Shielded: cancelling a question still queued in the pool would lose its place.
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except asyncio.TimeoutError as exc:
            raise AnswerTimeoutError(
                f"no answer within {timeout:g} s (server.request_timeout_s)"
            ) from exc

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
