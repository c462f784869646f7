"""A summary of an index read from its files alone (no model is loaded)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from reasonrag.index.store import CHUNKS_FILE, check_index, damaged


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def describe(folder: Path) -> dict[str, Any]:
    """Documents, chunks, embedder, contexts, size and every document id of the index."""
    manifest = check_index(folder)
    path = folder / manifest.generation / CHUNKS_FILE
    try:
        columns = pq.read_table(path, columns=["doc_id", "title"]).to_pydict()
    except (OSError, pa.ArrowException, KeyError) as exc:
        raise damaged(folder, path, f"unreadable: {exc}") from exc
    documents: dict[str, dict[str, Any]] = {}
    for doc_id, title in zip(columns["doc_id"], columns["title"], strict=True):
        entry = documents.setdefault(doc_id, {"id": doc_id, "chunks": 0, "title": title})
        entry["chunks"] += 1
    chunking = manifest.settings.get("chunk", {})
    return {
        "documents_total": manifest.n_documents,
        "chunks": manifest.n_chunks,
        "embedder": f"{manifest.embedder} ({manifest.dim} dims)",
        "contexts": manifest.context_mode
        + (f" by {manifest.context_generator}" if manifest.context_generator else ""),
        "chunking": (
            f"{chunking.get('max_tokens')} tokens, {chunking.get('overlap_tokens')} overlap"
        ),
        "size": _human(sum(manifest.files.values())),
        "generation": manifest.generation,
        "created": manifest.created_at,
        "reasonrag": manifest.reasonrag_version,
        "documents": list(documents.values()),
    }
