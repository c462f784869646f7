"""The protocol every embedder implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


@runtime_checkable
class Embedder(Protocol):
    @property
    def name(self) -> str:
        """Stable identity written into index manifests: opening an index with another
        embedder is refused."""
        ...

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str], *, kind: str = "document") -> Vectors:
        """L2-normalised float32 vectors, one row per text. ``kind`` is "query" or
        "document" for models that embed the two differently."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens this model would see; chunking uses it to stay under the model's limit."""
        ...
