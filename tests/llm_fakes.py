"""Test doubles for generator backends: a tiny random causal LM built offline, and a real
HTTP server on 127.0.0.1 that imitates the OpenAI chat/embeddings and Anthropic messages
endpoints."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

TINY_CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
_TINY_CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Paris is the capital of France and Berlin is the capital of Germany.",
    "Retrieval augmented generation answers questions from documents. What? Why!",
]


def build_tiny_llama(folder: Path, *, seed: int = 0) -> Path:
    """Save a random 2-layer Llama and a byte-level BPE tokenizer trained on three
    sentences. Its alphabet is only the corpus' ASCII characters, so every token decodes to
    clean text. The end token's output row is zeroed so greedy decoding (practically) never
    ends early, which keeps length-based assertions deterministic."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=["<|end|>", "<|system|>", "<|user|>", "<|assistant|>"],
    )
    bpe.train_from_iterator(_TINY_CORPUS, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="<|end|>", chat_template=TINY_CHAT_TEMPLATE
    )
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=bpe.get_vocab_size(),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
    )
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        model.lm_head.weight[tokenizer.eos_token_id] = 0.0
    tokenizer.save_pretrained(folder)
    model.save_pretrained(folder)
    return folder


def build_tiny_sentence_transformer(folder: Path, *, seed: int = 0) -> Path:
    """Save a random one-layer BERT with mean pooling as a sentence-transformers folder
    ``folder/model`` and return it; different seeds give different weights of one shape."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import modules as models
    from tokenizers import Tokenizer, pre_tokenizers, trainers
    from tokenizers import models as token_models
    from transformers import BertConfig, BertModel, BertTokenizerFast

    wordpiece = Tokenizer(token_models.WordPiece(unk_token="[UNK]"))
    wordpiece.pre_tokenizer = pre_tokenizers.Whitespace()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    wordpiece.train_from_iterator(
        _TINY_CORPUS, trainers.WordPieceTrainer(vocab_size=200, special_tokens=specials)
    )
    tokenizer = BertTokenizerFast(
        tokenizer_object=wordpiece,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=wordpiece.get_vocab_size(),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
    )
    raw = folder / "raw"
    BertModel(config).save_pretrained(raw)
    tokenizer.save_pretrained(raw)
    word = models.Transformer(str(raw), max_seq_length=64)
    pooling = models.Pooling(word.get_embedding_dimension())
    out = folder / "model"
    SentenceTransformer(modules=[word, pooling], device="cpu").save(str(out))
    return out


@dataclass
class FakeAPIState:
    """What the fake server saw; tests assert on it."""

    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    attempts: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [body for p, body in self.requests if p == path]


def fake_vector(text: str, dim: int = 8) -> list[float]:
    """Deterministic, unnormalised embedding of ``text``."""
    digest = hashlib.sha256(text.encode()).digest()
    return [float(b) + 1.0 for b in digest[:dim]]


class _Handler(BaseHTTPRequestHandler):
    server: _FakeServer

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        state = self.server.state
        with state.lock:
            state.requests.append((self.path, body))
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            self._route(body)
        finally:
            with state.lock:
                state.in_flight -= 1

    def _route(self, body: dict[str, Any]) -> None:
        if self.path == "/v1/chat/completions":
            self._chat(body)
        elif self.path == "/v1/embeddings":
            self._send(200, {"data": _embeddings(body["input"]), "model": body["model"]})
        elif self.path == "/v1/messages":
            self._send(200, _anthropic_message(body))
        else:
            self._send(404, {"error": f"no route {self.path}"})

    def _chat(self, body: dict[str, Any]) -> None:
        model = body["model"]
        prompt = body["messages"][-1]["content"]
        state = self.server.state
        with state.lock:
            state.attempts[prompt] = state.attempts.get(prompt, 0) + 1
            attempt = state.attempts[prompt]
        if model == "always-500":
            self._send(500, {"error": "boom"})
        elif model == "flaky" and attempt == 1:
            self._send(429, {"error": "slow down"}, headers={"Retry-After": "0"})
        else:
            if model == "slow":
                time.sleep(0.1)
            self._send(200, _chat_response(body))

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)


def _chat_response(body: dict[str, Any]) -> dict[str, Any]:
    """Answers "echo <last user message>", cut at the first stop string like a real server."""
    text = "echo " + body["messages"][-1]["content"]
    finish = "length"
    for stop in body.get("stop") or []:
        if stop in text:
            text, finish = text[: text.index(stop)], "stop"
    words = text.split(" ")
    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": text},
        "finish_reason": finish,
    }
    if body.get("logprobs"):
        top_n = body.get("top_logprobs", 0)
        choice["logprobs"] = {
            "content": [
                {
                    "token": w,
                    "logprob": -0.1 * (i + 1),
                    "top_logprobs": [
                        {"token": w if k == 0 else f"alt{k}", "logprob": -0.1 * (i + 1) - k}
                        for k in range(top_n)
                    ],
                }
                for i, w in enumerate(words)
            ]
        }
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": body["model"],
        "choices": [choice],
        "usage": {"prompt_tokens": 7, "completion_tokens": len(words), "total_tokens": 0},
    }


def _embeddings(inputs: list[str]) -> list[dict[str, Any]]:
    # Reversed order: clients must sort by "index", as the API does not promise order.
    rows = [
        {"index": i, "embedding": fake_vector(t), "object": "embedding"}
        for i, t in enumerate(inputs)
    ]
    return rows[::-1]


def _anthropic_message(body: dict[str, Any]) -> dict[str, Any]:
    last = body["messages"][-1]["content"]
    text = last[-1]["text"] if isinstance(last, list) else last
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": [{"type": "text", "text": f"claude says {text}"}],
        "stop_reason": "max_tokens" if body["max_tokens"] < 5 else "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 11,
            "output_tokens": 3,
            "cache_creation_input_tokens": 100,
            "cache_read_input_tokens": 50,
        },
    }


class _FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = FakeAPIState()


@dataclass(frozen=True)
class FakeAPI:
    base_url: str
    """Root without the ``/v1`` suffix (Anthropic's SDK adds it itself)."""
    state: FakeAPIState

    @property
    def openai_url(self) -> str:
        return f"{self.base_url}/v1"


@contextmanager
def fake_api_server() -> Iterator[FakeAPI]:
    server = _FakeServer()
    # A short poll interval keeps shutdown, and so each test, fast.
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield FakeAPI(f"http://{host}:{port}", server.state)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
