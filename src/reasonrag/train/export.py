"""From a trained adapter to the folders and files other engines load: a merged Hugging
Face folder (for vLLM, transformers, or llama.cpp's own converter) and a GGUF file for the
local llama.cpp engine.

The GGUF is written against the base model's own GGUF: its metadata (architecture, context,
tokenizer, chat template) is copied and only the weights are replaced, so the exported
model tokenizes and templates exactly as the base does. Weights are stored as Q8_0 (norms
as F32), close enough to the float weights that greedy decoding agrees with them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from reasonrag.errors import InputError, NotFoundError
from reasonrag.files import atomic_write_text
from reasonrag.llm.local import MODEL_META, hf_folder

_SKIPPED_FIELDS = ("GGUF.", "general.architecture", "general.file_type", "general.name")
"""Written by the GGUF writer itself, or changed by the export."""


def read_meta(folder: Path) -> dict[str, Any]:
    path = folder / MODEL_META
    if not path.is_file():
        raise NotFoundError(
            f"{folder} is not a model trained by reasonrag: {MODEL_META} is missing"
        )
    meta: dict[str, Any] = json.loads(path.read_text())
    return meta


def reference_gguf(adapter: Path) -> Path:
    """The GGUF the adapter's base model was converted from; a GGUF export copies its
    tokenizer and settings."""
    from reasonrag.llm.models import resolve_model_path

    base = resolve_model_path(read_meta(adapter)["base_model"])
    if base.suffix != ".gguf":
        raise InputError(
            f"{adapter}: its base {base} is not a GGUF, so there is no GGUF to copy settings "
            "from; export --to hf and convert that folder with llama.cpp's convert_hf_to_gguf.py"
        )
    return base


def merge_adapter(adapter: Path, out: Path, cache_dir: Path) -> Path:
    """Base model plus LoRA adapter as one plain Hugging Face folder at ``out``."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    meta = read_meta(adapter)
    if meta.get("kind") != "lora":
        raise InputError(f"{adapter} is not a LoRA adapter (kind {meta.get('kind')!r})")
    base = hf_folder(meta["base_model"], cache_dir)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    merged.save_pretrained(tmp)
    AutoTokenizer.from_pretrained(adapter).save_pretrained(tmp)
    atomic_write_text(tmp / MODEL_META, json.dumps(meta | {"kind": "merged"}, indent=2) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def _permute(weights: np.ndarray[Any, Any], heads: int) -> np.ndarray[Any, Any]:
    """Undo the rotary layout change transformers makes when it reads a llama GGUF: llama.cpp
    stores q and k with each head's two rotary halves interleaved."""
    rows = weights.shape[0]
    return (
        weights.reshape(heads, 2, rows // heads // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def export_gguf(folder: Path, out_file: Path, reference: Path) -> Path:
    """Write the weights of the Hugging Face folder ``folder`` into a GGUF at ``out_file``
    that takes everything else from the ``reference`` GGUF of the same architecture."""
    import gguf
    from safetensors.numpy import load_file

    reader = gguf.GGUFReader(str(reference))
    arch = reader.fields["general.architecture"].contents()
    if arch != "llama":
        raise InputError(f"GGUF export supports llama models; {reference} is {arch!r}")
    weights: dict[str, np.ndarray[Any, Any]] = {}
    for file in sorted(folder.glob("*.safetensors")):
        weights.update(load_file(file))
    n_blocks = int(reader.fields["llama.block_count"].contents())
    heads = int(reader.fields["llama.attention.head_count"].contents())
    kv_heads = int(reader.fields["llama.attention.head_count_kv"].contents())
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, n_blocks)
    by_gguf = {names.get_name(k, try_suffixes=(".weight", ".bias")): k for k in weights}
    # Tied embeddings are saved once, under whichever name the saver kept.
    by_gguf.setdefault("token_embd.weight", by_gguf.get("output.weight", ""))
    tmp = out_file.with_name(f".{out_file.name}.tmp")
    writer = gguf.GGUFWriter(str(tmp), arch)
    for key, field in reader.fields.items():
        if key.startswith(_SKIPPED_FIELDS):
            continue
        sub = field.types[1] if len(field.types) > 1 else None
        writer.add_key_value(key, field.contents(), field.types[0], sub)
    writer.add_name(folder.name)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    for tensor in reader.tensors:
        source = by_gguf.get(tensor.name)
        if not source:
            raise InputError(f"{folder} has no weight for GGUF tensor {tensor.name}")
        data = weights[source].astype(np.float32)
        if tensor.name.endswith("attn_q.weight"):
            data = _permute(data, heads)
        elif tensor.name.endswith("attn_k.weight"):
            data = _permute(data, kv_heads)
        if data.ndim == 1:
            writer.add_tensor(tensor.name, data)
        else:
            quantized = gguf.quants.quantize(data, gguf.GGMLQuantizationType.Q8_0)
            writer.add_tensor(
                tensor.name,
                quantized,
                raw_shape=quantized.shape,
                raw_dtype=gguf.GGMLQuantizationType.Q8_0,
            )
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.rename(out_file)
    return out_file
