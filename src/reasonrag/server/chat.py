"""The OpenAI chat-completions format: requests in, answers and streamed steps out."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from reasonrag.config import MethodName, Settings
from reasonrag.errors import InputError, NotFoundError
from reasonrag.reason.records import Answer, Step

MODEL_PREFIX = "reasonrag-"
TEXT_METHODS: tuple[MethodName, ...] = ("tao", "rag", "rare", "closed")


class ChatMessage(BaseModel):
    # Clients send fields we do not use (name, tool_calls); they must not be refused.
    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[ChatMessage]
    stream: bool = False


def methods(settings: Settings) -> list[MethodName]:
    """The methods served: clara only where a CLaRa model is configured."""
    return [*TEXT_METHODS, "clara"] if settings.clara.model else list(TEXT_METHODS)


def model_list(settings: Settings) -> dict[str, Any]:
    created = int(time.time())
    return {
        "object": "list",
        "data": [
            {"id": MODEL_PREFIX + m, "object": "model", "created": created, "owned_by": "reasonrag"}
            for m in methods(settings)
        ],
    }


def method_of(model: str, settings: Settings) -> MethodName:
    served = methods(settings)
    for method in served:
        if model == MODEL_PREFIX + method:
            return method
    names = ", ".join(MODEL_PREFIX + m for m in served)
    raise NotFoundError(f"no model {model!r}; this server has {names}")


def question_of(request: ChatRequest) -> str:
    """The last user message: earlier turns are not evidence, and every method answers
    one standalone question."""
    for message in reversed(request.messages):
        if message.role == "user":
            text = _text(message.content)
            if text.strip():
                return text
            break
    raise InputError("the request holds no user message with text to answer")


def _text(content: str | list[dict[str, Any]] | None) -> str:
    if isinstance(content, list):  # the parts form: only text parts can be a question
        return "\n".join(str(p.get("text", "")) for p in content if p.get("type") == "text")
    return content or ""


def content_of(answer: Answer) -> str:
    """The answer with numbered citation markers and the sources they stand for."""
    if not answer.citations:
        return answer.answer
    markers = "".join(f"[{n}]" for n in range(1, len(answer.citations) + 1))
    sources = "\n".join(
        f"[{n}] {c.title} ({c.chunk_id})" for n, c in enumerate(answer.citations, start=1)
    )
    return f"{answer.answer} {markers}\n\n{sources}"


def _usage(answer: Answer) -> dict[str, int]:
    usage = answer.usage
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }


def completion(model: str, answer: Answer) -> dict[str, Any]:
    """A ``chat.completion`` whose extra ``reasonrag`` field is the whole answer record."""
    return {
        "id": _id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content_of(answer)},
                "finish_reason": "stop",
            }
        ],
        "usage": _usage(answer),
        "reasonrag": answer.to_dict(),
    }


def _id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


class ChunkStream:
    """The ``chat.completion.chunk`` events of one streamed reply, as SSE lines."""

    def __init__(self, model: str):
        self.model = model
        self.id = _id()
        self.created = int(time.time())

    def event(
        self,
        delta: dict[str, Any],
        finish: Literal["stop"] | None = None,
        **extra: Any,
    ) -> str:
        chunk = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return sse(chunk)

    def start(self) -> str:
        return self.event({"role": "assistant", "content": ""})

    def step(self, step: Step, snippet_chars: int) -> str:
        """A reasoning step: readable text for chat clients (``reasoning_content``, as vLLM
        and DeepSeek stream it), the step record and the retrieved snippets for the UI."""
        snippets = [
            {"chunk_id": h.chunk_id, "title": h.title, "text": h.text[:snippet_chars]}
            for h in step.hits
        ]
        return self.event(
            {"reasoning_content": step_text(step)},
            reasonrag={"step": step.to_dict(), "snippets": snippets},
        )

    def answer(self, answer: Answer) -> list[str]:
        return [
            self.event({"content": content_of(answer)}),
            self.event({}, "stop", usage=_usage(answer), reasonrag=answer.to_dict()),
            DONE,
        ]


DONE = "data: [DONE]\n\n"


def sse(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


def step_text(step: Step) -> str:
    lines = [f"Step {step.index}."]
    if step.thought:
        lines.append(f"Thought: {step.thought}")
    lines.append(f"Action: {step.action}" + (f" {step.argument}" if step.argument else ""))
    lines += [f"  [{h.chunk_id}] {h.title}" for h in step.hits]
    if step.note:
        lines.append(f"Note: {step.note}")
    return "\n".join(lines) + "\n\n"
