"""In-process generation with llama.cpp (the ``xllamacpp`` wheel): the default backend for
GGUF models, the embedded SmolLM2 included.

Prompts are encoded by :func:`reasonrag.llm.chat.encode_chat` with the Hugging Face tokenizer
stored in the GGUF and sent as token ids, so this backend, the transformers backend and
training all see the same tokens. A batch runs concurrently on the server's parallel slots;
each prompt goes to the slot that already holds the longest prefix of it (the agent's
previous step, a document shared by several chunks), and llama.cpp computes only the rest.
A prefix that every prompt of a batch shares (the system prompt of the agent's first step)
is computed on one slot and copied into the others through llama.cpp's slot save/restore,
so n slots pay for it once instead of n times.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import threading
import time
import warnings
import weakref
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reasonrag.config import LLMConfig
from reasonrag.errors import ConfigError, ContextLengthError, GenerationError
from reasonrag.fingerprint import fingerprint
from reasonrag.llm.base import Completion, GenParams, Prompt, TokenLogprob, as_messages
from reasonrag.llm.chat import encode_chat, shared_prefix_length
from reasonrag.llm.decoding import decode_generation, piece
from reasonrag.llm.models import EMBEDDED_MODEL, gguf_tokenizer, resolve_model_path
from reasonrag.progress import quiet_model_loading

_DEFAULTS = LLMConfig()
"""The defaults and the reasons for them live in the configuration."""
SEED_MIN_TOKENS = 64
"""Shorter shared prefixes are computed by each slot: a copy costs about as much (the KV
state of 500 tokens is 23 MB in float32)."""
_SEED_FILE = "shared-prefix.bin"


@dataclass(frozen=True)
class _Step:
    """One generated token as llama.cpp streams it."""

    token: int
    logprob: float
    top: tuple[tuple[int, float], ...]


@dataclass(frozen=True)
class _Generated:
    steps: tuple[_Step, ...]
    finish_reason: str
    cached_tokens: int
    latency_s: float


class SlotRouter:
    """Chooses a slot for every prompt of a batch: the open slot whose last prompt shares the
    longest prefix with it. Loads stay balanced (they differ by at most one prompt), so a
    batch keeps every slot busy. A prompt queued on a slot counts as that slot's last prompt
    for the prompts assigned after it, so chunks of one document gather on one slot."""

    def __init__(self, n_slots: int) -> None:
        self._last: list[tuple[int, ...]] = [() for _ in range(n_slots)]
        self._lock = threading.Lock()

    def assign(self, prompts: Sequence[Sequence[int]]) -> list[list[int]]:
        """Positions of ``prompts`` to run on each slot, in the order to run them."""
        with self._lock:
            tails = list(self._last)
        even, extra = divmod(len(prompts), len(tails))
        queues: list[list[int]] = [[] for _ in tails]
        best = [max(_common_prefix(tail, p) for tail in tails) for p in prompts]
        # Prompts whose prefix a slot holds choose first, so that a fresh prompt cannot take
        # the slot another prompt needs.
        for i in sorted(range(len(prompts)), key=lambda i: -best[i]):
            full = sum(len(q) > even for q in queues) >= extra
            open_slots = [s for s, q in enumerate(queues) if len(q) < even + (not full)]
            slot = max(
                open_slots, key=lambda s: (_common_prefix(tails[s], prompts[i]), -len(queues[s]))
            )
            queues[slot].append(i)
            tails[slot] = tuple(prompts[i])
        return queues

    def ran(self, slot: int, prompt: Sequence[int]) -> None:
        with self._lock:
            self._last[slot] = tuple(prompt)

    def held(self, slot: int, prompt: Sequence[int]) -> int:
        """Leading tokens of ``prompt`` that ``slot`` holds."""
        with self._lock:
            return _common_prefix(self._last[slot], prompt)


class LlamaCppGenerator:
    """Generator running a GGUF model with llama.cpp in this process.

    ``n_ctx`` is the context of each prompt (prompt plus completion); the server holds
    ``n_parallel`` of them. ``reuse_prefixes=False`` recomputes every prompt from scratch.
    Safe to call from several threads: their requests share the slots."""

    def __init__(
        self,
        model: str = EMBEDDED_MODEL,
        *,
        threads: int = _DEFAULTS.threads,
        n_ctx: int = _DEFAULTS.n_ctx,
        n_parallel: int = _DEFAULTS.n_parallel,
        reuse_prefixes: bool = True,
        verbose: bool = False,
        cache_dir: Path,
    ) -> None:
        quiet_model_loading()
        path = resolve_model_path(model)
        if not (path.is_file() and path.suffix == ".gguf"):
            raise ConfigError(
                f"llm.model: the llamacpp backend needs a .gguf file, not {path}; "
                "use llm.backend = 'transformers' for Hugging Face folders"
            )
        self.n_ctx = n_ctx
        self.n_parallel = n_parallel
        self.threads = threads
        self.reuse_prefixes = reuse_prefixes
        self.tokenizer = gguf_tokenizer(path, Path(cache_dir))
        self._special_ids = frozenset(self.tokenizer.all_special_ids)
        # Fast tokenizers raise "Already borrowed" when threads use them concurrently.
        self._tokenizer_lock = threading.Lock()
        self._name = f"llamacpp:{path.stem}@{fingerprint(path)}"
        self._router = SlotRouter(n_parallel)
        self._slot_files = tempfile.mkdtemp(prefix="reasonrag-slots-")
        weakref.finalize(self, shutil.rmtree, self._slot_files, ignore_errors=True)
        self._server, self._api_key = _start_server(
            path, threads, n_ctx, n_parallel, verbose, self._slot_files
        )
        self._seeding = reuse_prefixes and n_parallel > 1

    @property
    def name(self) -> str:
        return self._name

    def generate(self, prompts: Sequence[Prompt], params: GenParams) -> list[Completion]:
        """Greedy when ``params.temperature`` is 0. Logprobs are those of the raw logits,
        before temperature and top-p, as in the transformers backend."""
        if not prompts:
            return []
        with self._tokenizer_lock:
            encoded = [encode_chat(self.tokenizer, as_messages(p)).ids for p in prompts]
        self._check_fits(encoded)
        if self.reuse_prefixes:
            queues = self._router.assign(encoded)
            if self._seeding:
                self._seed_shared_prefix(encoded, queues)
        else:
            queues = [list(range(s, len(encoded), self.n_parallel)) for s in range(self.n_parallel)]
        body = self._request_body(params)
        results: dict[int, _Generated] = {}

        def run(slot: int, queue: list[int]) -> None:
            for i in queue:
                results[i] = self._run(encoded[i], slot, body)
                self._router.ran(slot, encoded[i])

        active = [(slot, queue) for slot, queue in enumerate(queues) if queue]
        with ThreadPoolExecutor(max_workers=len(active)) as pool:
            for future in [pool.submit(run, slot, queue) for slot, queue in active]:
                future.result()
        with self._tokenizer_lock:
            return [self._completion(ids, results[i], params) for i, ids in enumerate(encoded)]

    def _seed_shared_prefix(
        self, encoded: Sequence[Sequence[int]], queues: Sequence[Sequence[int]]
    ) -> None:
        """Give every slot about to run a prompt the prefix all of them share, computed once."""
        slots = [slot for slot, queue in enumerate(queues) if queue]
        if len(slots) < 2:
            return
        firsts = [encoded[queues[slot][0]] for slot in slots]
        shared = tuple(firsts[0][: shared_prefix_length(firsts)])
        if len(shared) < SEED_MIN_TOKENS:
            return
        held = {slot: self._router.held(slot, shared) for slot in slots}
        lacking = [slot for slot in slots if held[slot] < len(shared)]
        source = max(slots, key=lambda slot: held[slot])
        targets = [slot for slot in lacking if slot != source]
        if not targets:
            return
        try:
            if held[source] < len(shared):
                self._run(shared, source, self._request_body(GenParams(max_tokens=1)))
                self._router.ran(source, shared)
            self._slot_action(source, "save")
            for slot in targets:
                self._slot_action(slot, "restore")
                self._router.ran(slot, shared)
        except (GenerationError, OSError) as exc:
            # Only speed is lost: every slot can still compute the prefix itself.
            self._seeding = False
            warnings.warn(
                f"{self._name}: copying a shared prefix between slots failed, "
                f"each slot computes it from now on ({exc})",
                stacklevel=3,
            )

    def _slot_action(self, slot: int, action: str) -> None:
        import httpx

        response = httpx.post(
            f"{self._server.listening_address}/slots/{slot}?action={action}",
            json={"filename": _SEED_FILE},
            headers={"Authorization": f"Bearer {self._api_key}"},
            timeout=120,
        )
        if response.status_code != 200:
            raise GenerationError(f"slot {action}: HTTP {response.status_code} {response.text}")

    def _check_fits(self, encoded: Sequence[Sequence[int]]) -> None:
        for i, ids in enumerate(encoded):
            # A prompt filling the whole context would leave no room for one new token.
            if len(ids) >= self.n_ctx:
                raise ContextLengthError(
                    f"prompt {i} has {len(ids)} tokens, but the llama.cpp context holds "
                    f"{self.n_ctx} tokens per prompt, completion included (llm.n_ctx)"
                )

    def _request_body(self, params: GenParams) -> dict[str, Any]:
        body: dict[str, Any] = {
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            # llama.cpp truncates to the top 40 tokens and min_p 0.05 unless told otherwise;
            # the knobs should mean what they mean in the OpenAI API.
            "top_k": 0,
            "min_p": 0.0,
            "stop": list(params.stop),
            # Streamed with at least one logprob, every generated token arrives with its id:
            # the completion is decoded here exactly as the transformers backend decodes it.
            "stream": True,
            "logprobs": max(params.logprobs, 1),
            "cache_prompt": self.reuse_prefixes,
        }
        if params.seed is not None:
            body["seed"] = params.seed
        return body

    def _run(self, ids: Sequence[int], slot: int, body: dict[str, Any]) -> _Generated:
        request = {**body, "prompt": list(ids)}
        if self.reuse_prefixes:
            request["id_slot"] = slot
        chunks: list[Any] = []
        started = time.perf_counter()
        try:
            self._server.handle_completions(request, chunks.append)
        except (RuntimeError, ValueError) as exc:
            raise GenerationError(f"{self._name}: {exc}") from exc
        return self._parse(chunks, time.perf_counter() - started)

    def _parse(self, chunks: list[Any], latency: float) -> _Generated:
        steps: list[_Step] = []
        finish, usage = "", dict[str, Any]()
        for chunk in chunks:
            if "error" in chunk:
                raise GenerationError(f"{self._name}: {chunk['error'].get('message', chunk)}")
            for choice in chunk.get("choices") or ():
                steps.extend(
                    _step(entry) for entry in (choice.get("logprobs") or {}).get("content") or ()
                )
                finish = choice.get("finish_reason") or finish
            usage = chunk.get("usage") or usage
        reported = int(usage.get("completion_tokens", len(steps)))
        # llama.cpp counts but never streams the tokens of a stop string, matched or only
        # begun when generation ended (at max_tokens too); more streamed than counted means
        # a confused stream.
        if len(steps) > reported:
            raise GenerationError(
                f"{self._name}: streamed {len(steps)} tokens but reported "
                f"{usage.get('completion_tokens')}"
            )
        cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
        return _Generated(tuple(steps), finish, int(cached), latency)

    def _completion(
        self, ids: Sequence[int], generated: _Generated, params: GenParams
    ) -> Completion:
        tokens = [s.token for s in generated.steps]
        # llama.cpp reports "stop" for both an end-of-turn token and a stop string; only the
        # former ends on a special token.
        ended_by_eot = (
            bool(tokens) and generated.finish_reason == "stop" and tokens[-1] in self._special_ids
        )
        decoded = decode_generation(
            self.tokenizer, tokens, len(tokens) - 1 if ended_by_eot else None, params.stop
        )
        logprobs = None
        if params.logprobs > 0:
            logprobs = tuple(
                TokenLogprob(
                    token=piece(self.tokenizer, s.token),
                    logprob=s.logprob,
                    top=tuple((piece(self.tokenizer, t), lp) for t, lp in s.top),
                )
                for s in generated.steps[: len(decoded.content)]
            )
        return Completion(
            text=decoded.text,
            prompt_tokens=len(ids),
            completion_tokens=decoded.completion_tokens,
            finish_reason=decoded.finish_reason,
            logprobs=logprobs,
            latency_s=generated.latency_s,
            extra={"cache_read_input_tokens": generated.cached_tokens},
        )


def _start_server(
    path: Path, threads: int, n_ctx: int, n_parallel: int, verbose: bool, slot_files: str
) -> tuple[Any, str]:
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(path)
    params.n_parallel = n_parallel
    # Without a unified KV cache llama.cpp gives every slot an equal share of n_ctx, so each
    # prompt gets exactly the n_ctx it was promised.
    params.kv_unified = False
    params.n_ctx = n_ctx * n_parallel
    # llama.cpp can also park slot states in host memory and restore them for later
    # prompts, but with concurrent requests pinned to slots that mixed up states (8 of 40
    # greedy answers wrong in a 3-slot test, none without it), so only the slots' own
    # caches are reused.
    params.cache_ram_mib = 0
    # With flash attention or a float16 KV cache, a prompt continued from a slot's cache and
    # the same prompt computed afresh round differently and greedy answers part ways; plain
    # attention over float32 keys and values keeps reuse an optimisation, not a change of
    # output. (0 is llama.cpp's "disabled" and GGML_TYPE_F32.)
    params.flash_attn_type = 0
    params.cache_type_k = 0
    params.cache_type_v = 0
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.verbosity = 3 if verbose else -1
    # The server also listens on a loopback port; a key nobody knows keeps other local users
    # from generating through it. Calls from this process do not need it.
    key = secrets.token_hex(16)
    params.api_keys = [key]
    params.slot_save_path = slot_files
    try:
        return xllamacpp.Server(params), key
    except RuntimeError as exc:
        raise GenerationError(f"llama.cpp could not load {path}: {exc}") from exc


def _step(entry: dict[str, Any]) -> _Step:
    top = tuple((int(alt["id"]), float(alt["logprob"])) for alt in entry.get("top_logprobs") or ())
    return _Step(int(entry["id"]), float(entry["logprob"]), top)


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
