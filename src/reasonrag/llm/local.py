"""In-process generation with transformers: any Hugging Face model folder or LoRA adapter
folder (training uses this backend), the embedded SmolLM2 GGUF or any ``.gguf`` file
(de-quantized to a float copy once)."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_model
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.cache_utils import DynamicCache, DynamicLayer

from reasonrag.fingerprint import fingerprint
from reasonrag.llm.base import Completion, GenParams, Message, Prompt, TokenLogprob, as_messages
from reasonrag.llm.chat import encode_chat, shared_prefix_length
from reasonrag.llm.decoding import decode_generation, piece
from reasonrag.llm.models import EMBEDDED_MODEL, build_once, resolve_model_path
from reasonrag.progress import quiet_model_loading

MIN_SHARED_PREFIX = 32
"""Batches whose prompts share at least this many leading tokens (a system prompt, say)
compute that prefix once and reuse its key/value cache."""
_PREFIXES_KEPT = 4

_States = tuple[tuple[torch.Tensor, torch.Tensor], ...]
"""Per-layer (keys, values) of a prompt prefix, batch dimension 1."""


def float_copy_dir(gguf: Path, cache_dir: Path) -> Path:
    """Where the de-quantized copy of ``gguf`` lives; the hash changes when the file does."""
    stat = gguf.stat()
    ident = f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    digest = hashlib.sha256(ident.encode()).hexdigest()[:12]
    return cache_dir / "models" / f"{gguf.stem}-{digest}"


def hf_folder(model: str, cache_dir: Path) -> Path:
    """A Hugging Face folder of ``model`` (a GGUF is converted once into the cache)."""
    path = resolve_model_path(model)
    return ensure_float_copy(path, cache_dir) if path.suffix == ".gguf" else path


def ensure_float_copy(gguf: Path, cache_dir: Path) -> Path:
    """Convert ``gguf`` to a plain float HF folder once; later loads skip the slow
    de-quantization."""
    return build_once(
        float_copy_dir(gguf, cache_dir), lambda out: _write_float_copy(gguf, out), "config.json"
    )


def _write_float_copy(gguf: Path, out: Path) -> None:
    folder, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    # save_pretrained refuses GGUF-loaded models ("quantized with gguf and is not
    # serializable") although their weights are already plain floats, so the pieces are
    # written directly and the GGUF marker dropped from the config.
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.save_pretrained(out)
    model.generation_config.save_pretrained(out)
    save_model(model, str(out / "model.safetensors"))  # handles tied embeddings
    tokenizer.save_pretrained(out)


@dataclass(frozen=True)
class _Encoded:
    index: int
    ids: list[int]


class LocalGenerator:
    """Generator running a causal LM in this process. ``model`` and ``tokenizer`` are
    public so training and latent-compression code can reuse the loaded weights.

    Prompts sharing a long prefix (the system prompt of an agent's every step) read it
    once and reuse its key/value cache; ``reuse_prefixes=False`` turns that off."""

    def __init__(
        self,
        model: str = EMBEDDED_MODEL,
        *,
        device: str = "cpu",
        dtype: str = "float32",
        batch_size: int = 8,
        reuse_prefixes: bool = True,
        cache_dir: Path,
    ) -> None:
        quiet_model_loading()
        path = resolve_model_path(model)
        torch_dtype = getattr(torch, dtype)
        if path.suffix == ".gguf":
            loaded = _load_folder(ensure_float_copy(path, Path(cache_dir)), torch_dtype, device)
        elif (path / "adapter_config.json").is_file():
            loaded = _load_adapter(path, torch_dtype, device, Path(cache_dir))
        else:
            loaded = _load_folder(path, torch_dtype, device)
        self._setup(*loaded, f"local:{path.stem}@{fingerprint(path)}", batch_size, reuse_prefixes)

    @classmethod
    def from_model(
        cls,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        name: str,
        batch_size: int = 8,
        reuse_prefixes: bool = True,
    ) -> LocalGenerator:
        """Generate with weights already in memory (e.g. during training). ``name`` is
        extended with a revision that changes whenever the weights are modified, so a
        response cache never serves an answer of older weights."""
        generator = cls.__new__(cls)
        generator._setup(model, tokenizer, f"local:{name}", batch_size, reuse_prefixes)
        return generator

    def _setup(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        name: str,
        batch_size: int,
        reuse_prefixes: bool,
    ) -> None:
        self._base_name = name
        self.device = model.device
        self.batch_size = batch_size
        self.tokenizer = tokenizer
        self.model = model
        self.model.eval()
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "left"
        self._end_ids = self._end_token_ids()
        self._lock = threading.Lock()
        self.reuse_prefixes = reuse_prefixes
        self._prefixes: OrderedDict[tuple[int, ...], _States] = OrderedDict()
        self._revision = self._loaded_revision = self.weights_revision()

    def weights_revision(self) -> str:
        """Changes whenever a weight is modified in place (an optimiser step, a merge): it
        reads the tensors' version counters, not their values, so it costs microseconds."""
        versions = tuple(p._version for p in self.model.parameters())
        return hashlib.sha256(repr(versions).encode()).hexdigest()[:8]

    @property
    def name(self) -> str:
        """The model's identity; once its weights change in memory, plus their revision."""
        revision = self.weights_revision()
        return (
            self._base_name
            if revision == self._loaded_revision
            else f"{self._base_name}+{revision}"
        )

    def generate(self, prompts: Sequence[Prompt], params: GenParams) -> list[Completion]:
        """Greedy when ``params.temperature`` is 0. Logprobs come from the raw logits,
        before temperature and top-p, as OpenAI-compatible servers report them."""
        # One call at a time: the model is the bottleneck anyway, and a fast tokenizer
        # raises "Already borrowed" when threads encode with it concurrently.
        with self._lock:
            revision = self.weights_revision()
            if revision != self._revision:
                # Cached prefixes hold keys and values the old weights computed.
                self._prefixes.clear()
                self._revision = revision
            encoded = [_Encoded(i, self._encode(as_messages(p))) for i, p in enumerate(prompts)]
            # Similar lengths share a batch so left padding wastes little compute.
            encoded.sort(key=lambda e: len(e.ids))
            results: dict[int, Completion] = {}
            for start in range(0, len(encoded), self.batch_size):
                batch = encoded[start : start + self.batch_size]
                completions = self._generate_batch(batch, params)
                results.update((item.index, c) for item, c in zip(batch, completions, strict=True))
            return [results[i] for i in range(len(prompts))]

    def _encode(self, messages: Sequence[Message]) -> list[int]:
        return list(encode_chat(self.tokenizer, messages).ids)

    def _end_token_ids(self) -> set[int]:
        eos = self.model.generation_config.eos_token_id
        ids = set(eos) if isinstance(eos, list) else {eos} if eos is not None else set()
        for token_id in (self.tokenizer.eos_token_id, self.tokenizer.pad_token_id):
            if token_id is not None:
                ids.add(token_id)
        return ids

    def _generation_config(self, params: GenParams) -> GenerationConfig:
        config = GenerationConfig(
            max_new_tokens=params.max_tokens,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=sorted(self._end_ids),
            stop_strings=list(params.stop) or None,
            return_dict_in_generate=True,
            output_logits=params.logprobs > 0,
        )
        if params.temperature > 0:
            # top_k=0 switches off transformers' default top-k of 50: the knobs mean what
            # they mean in the OpenAI API.
            config.update(
                do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=0
            )
        else:
            config.update(do_sample=False)
        return config

    def _generate_batch(self, batch: Sequence[_Encoded], params: GenParams) -> list[Completion]:
        inputs = self._batch_inputs([e.ids for e in batch])
        config = self._generation_config(params)
        started = time.perf_counter()
        with torch.inference_mode(), torch.random.fork_rng():
            if params.seed is not None:
                torch.manual_seed(params.seed)
            # transformers annotates PreTrainedModel without its GenerationMixin methods.
            out = self.model.generate(  # type: ignore[operator]
                **inputs, generation_config=config, tokenizer=self.tokenizer
            )
        latency = time.perf_counter() - started
        prompt_width = inputs["input_ids"].shape[1]
        new_tokens = out.sequences[:, prompt_width:].tolist()
        step_logprobs = (
            torch.log_softmax(torch.stack(out.logits, dim=1).float(), dim=-1).cpu()
            if params.logprobs > 0
            else None
        )
        return [
            self._completion(
                item,
                tokens,
                None if step_logprobs is None else step_logprobs[row],
                params,
                latency,
            )
            for row, (item, tokens) in enumerate(zip(batch, new_tokens, strict=True))
        ]

    def _batch_inputs(self, rows: list[list[int]]) -> dict[str, Any]:
        """Left-padded ids and mask. When the rows share a long prefix (a system prompt),
        the layout is ``[prefix][padding][rest]`` and the prefix's keys and values come from
        a cache; positions follow the attention mask, so the padding in the middle shifts
        nothing."""
        found = self._reusable_prefix(rows) if self.reuse_prefixes else None
        if found is None:
            padded = self.tokenizer.pad({"input_ids": rows}, return_tensors="pt")
            return {k: v.to(self.device) for k, v in padded.items()}
        prefix, states = found
        width, n = len(prefix), len(rows)
        padded = self.tokenizer.pad({"input_ids": [r[width:] for r in rows]}, return_tensors="pt")
        prefix_ids = torch.tensor(prefix).expand(n, -1)
        cache = DynamicCache(
            ddp_cache_data=[(k.expand(n, -1, -1, -1), v.expand(n, -1, -1, -1)) for k, v in states],
            config=self.model.config,
        )
        ids = torch.cat([prefix_ids, padded["input_ids"]], dim=1)
        mask = torch.cat([torch.ones_like(prefix_ids), padded["attention_mask"]], dim=1)
        return {
            "input_ids": ids.to(self.device),
            "attention_mask": mask.to(self.device),
            "cache": cache,
        }

    def _reusable_prefix(self, rows: list[list[int]]) -> tuple[tuple[int, ...], _States] | None:
        """The longest cached prefix of every row, or the rows' shared prefix computed now
        when a batch shares a markedly longer one; None when neither is long enough."""
        shared = shared_prefix_length(rows)
        head = tuple(rows[0][:shared])
        known = [p for p in self._prefixes if len(p) >= MIN_SHARED_PREFIX and head[: len(p)] == p]
        best = max(known, key=len, default=None)
        # Batches of different questions share slightly different heads ("Question: What"
        # vs "Question: Which"); a cached prefix a few tokens short still serves them.
        longer = shared - (0 if best is None else len(best)) >= MIN_SHARED_PREFIX
        if len(rows) > 1 and longer:
            states = self._compute_prefix(head)
            return None if states is None else (head, states)
        if best is None:
            return None
        self._prefixes.move_to_end(best)
        return best, self._prefixes[best]

    def _compute_prefix(self, prefix: tuple[int, ...]) -> _States | None:
        """Keys and values of ``prefix`` (batch of one), kept for the next calls; None for
        models whose cache is not plain (sliding windows), which take the ordinary path."""
        with torch.inference_mode():
            ids = torch.tensor([prefix], device=self.device)
            cache = self.model(input_ids=ids, use_cache=True).past_key_values
        if not all(type(layer) is DynamicLayer for layer in cache.layers):
            return None
        states = tuple((layer.keys, layer.values) for layer in cache.layers)
        self._prefixes[prefix] = states
        if len(self._prefixes) > _PREFIXES_KEPT:
            self._prefixes.popitem(last=False)
        return states

    def _completion(
        self,
        item: _Encoded,
        tokens: list[int],
        logprobs: torch.Tensor | None,
        params: GenParams,
        latency: float,
    ) -> Completion:
        ended = next((i for i, t in enumerate(tokens) if t in self._end_ids), None)
        decoded = decode_generation(self.tokenizer, tokens, ended, params.stop)
        content = list(decoded.content)
        return Completion(
            text=decoded.text,
            prompt_tokens=len(item.ids),
            completion_tokens=decoded.completion_tokens,
            finish_reason=decoded.finish_reason,
            logprobs=None if logprobs is None else self._logprobs(content, logprobs, params),
            latency_s=latency,
        )

    def _logprobs(
        self, tokens: list[int], logprobs: torch.Tensor, params: GenParams
    ) -> tuple[TokenLogprob, ...]:
        top_values, top_ids = logprobs[: len(tokens)].topk(params.logprobs, dim=-1)
        chosen = logprobs[torch.arange(len(tokens)), torch.tensor(tokens, dtype=torch.long)]
        return tuple(
            TokenLogprob(
                token=self._piece(token),
                logprob=float(chosen[step]),
                top=tuple(
                    (self._piece(int(i)), float(v))
                    for i, v in zip(top_ids[step], top_values[step], strict=True)
                ),
            )
            for step, token in enumerate(tokens)
        )

    def _piece(self, token_id: int) -> str:
        return piece(self.tokenizer, token_id)


MODEL_META = "reasonrag-model.json"
"""Written by ``reasonrag train`` into the folders it makes: the base model as reasonrag
names it (``smollm2``), so an adapter finds its base wherever the cache lives."""


def _load_folder(
    folder: Path, dtype: torch.dtype, device: str
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, device_map=device)
    return model, tokenizer


def adapter_base(adapter: Path) -> str:
    """The base model of a LoRA adapter folder: reasonrag's record of it, else PEFT's."""
    meta = adapter / MODEL_META
    if meta.is_file():
        return str(json.loads(meta.read_text())["base_model"])
    return str(json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"])


def _load_adapter(
    adapter: Path, dtype: torch.dtype, device: str, cache_dir: Path
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Base model with the adapter merged in: merged weights generate as fast as the base."""
    from peft import PeftModel

    model, _ = _load_folder(hf_folder(adapter_base(adapter), cache_dir), dtype, device)
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    return merged, AutoTokenizer.from_pretrained(adapter)
