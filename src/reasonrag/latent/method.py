"""CLaRa behind the ordinary protocols: a ``Retriever`` that searches the compressed vectors
with the query reasoner, and a ``Generator`` that reads documents as vectors. The reasoning
method is the ordinary single pass; only its prompt (``latent_prompt``) differs."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import torch

from reasonrag.config import Settings
from reasonrag.errors import ConfigError, InputError
from reasonrag.fingerprint import fingerprint
from reasonrag.index import Hit, Index, Retriever
from reasonrag.latent.model import ClaraModel
from reasonrag.latent.store import ATTACHMENT, LatentStore, encode_index
from reasonrag.llm.base import DOCUMENT_SLOT, Completion, Generator, GenParams, Prompt, as_messages


def compressor_id(model_folder: Path) -> str:
    """Identity of the vectors a model makes: its compressor (adapter and memory slots)."""
    return fingerprint(model_folder / "compressor")


class LatentRetriever:
    """Search by the query reasoner's vectors against the stored document vectors."""

    def __init__(self, model: ClaraModel, store: LatentStore, index: Index):
        self.model = model
        self.store = store
        self.index = index
        self._lock = threading.Lock()

    def search(self, query: str, k: int = 10) -> list[Hit]:
        with self._lock, torch.no_grad():
            vectors = self.model.encode_queries([query])
        scores, rows = self.store.search(vectors, k)
        hits = []
        for rank, (row, score) in enumerate(zip(rows[0].tolist(), scores[0].tolist(), strict=True)):
            if row < 0:
                continue
            hits.append(
                self.index.hit(
                    row, score=float(score), rank=rank, stage_scores={"latent": float(score)}
                )
            )
        return hits


class LatentGenerator:
    """Answers from prompts whose documents are vectors; ``prompt_tokens`` counts the input
    positions used (text tokens plus memory slots), the figure to set against text RAG."""

    def __init__(self, model: ClaraModel, store: LatentStore, index: Index, name: str):
        self.model = model
        self.store = store
        self._rows = {c.id: i for i, c in enumerate(index.chunks)}
        self._name = name
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._name

    def generate(self, prompts: Sequence[Prompt], params: GenParams) -> list[Completion]:
        requests, documents = [], []
        for prompt in prompts:
            messages = as_messages(prompt)
            system = next((m.content for m in messages if m.role == "system"), "")
            user = [m for m in messages if m.role == "user"]
            if len(user) != 1:
                raise InputError("a latent prompt has one user message holding the documents")
            ids = user[0].documents
            if user[0].content.count(DOCUMENT_SLOT) != len(ids):
                raise InputError("a latent prompt needs one slot per document it carries")
            unknown = [i for i in ids if i not in self._rows]
            if unknown:
                raise InputError(f"documents not in the encoded index: {unknown[:3]}")
            requests.append((system, user[0].content))
            documents.append(self.store.rows([self._rows[i] for i in ids]))
        with self._lock:
            answers = self.model.generate(requests, documents, max_new_tokens=params.max_tokens)
        return [
            Completion(
                text=text,
                prompt_tokens=positions,
                completion_tokens=len(self.model.tokenizer(text)["input_ids"]),
            )
            for text, positions in answers
        ]


def clara_parts(settings: Settings, index: Retriever | None) -> tuple[Retriever, Generator]:
    """The latent retriever and generator of ``settings.clara.model`` over ``index``."""
    folder = settings.clara.model
    if folder is None:
        raise ConfigError("clara.model: method 'clara' needs a model from `reasonrag clara train`")
    if not isinstance(index, Index):
        raise ConfigError("method 'clara' needs an index on disk (agent.index_dir)")
    model = ClaraModel.load(Path(folder), settings.cache_dir)
    model.eval()
    model_id = compressor_id(Path(folder))
    found = index.attachment(ATTACHMENT)
    if found is None or found[1].get("model") != model_id:
        # Documents are compressed once per index and model (resumable, cached).
        encode_index(index, model, model_id, settings.cache_dir)
    store = LatentStore.open(index, model_id)
    name = f"clara:{Path(folder).name}@{fingerprint(Path(folder))}"
    return LatentRetriever(model, store, index), LatentGenerator(model, store, index, name)
