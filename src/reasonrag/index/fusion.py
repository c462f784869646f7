"""Combine ranked lists from several retrievers into one."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from reasonrag.index.dense import Rows, Scores

Ranking = list[tuple[int, float]]
"""(row, fused score), best first."""


def reciprocal_rank_fusion(rankings: Sequence[Rows], *, k: int = 60) -> Ranking:
    """Score each row by the sum of 1 / (k + rank) over the lists it appears in (rank from 1).

    Rank-based, so it needs no score calibration between BM25 and cosine similarity."""
    fused: dict[int, float] = {}
    for rows in rankings:
        for rank, row in enumerate(rows.tolist(), start=1):
            if row >= 0:
                fused[row] = fused.get(row, 0.0) + 1.0 / (k + rank)
    return sorted(fused.items(), key=lambda item: -item[1])


def weighted_fusion(results: Sequence[tuple[Scores, Rows]], weights: Sequence[float]) -> Ranking:
    """Weighted sum of min-max normalised scores; a row absent from a list gets 0 there.

    Min-max per query makes BM25's unbounded scores comparable to cosine similarities."""
    if len(results) != len(weights):
        raise ValueError("weighted_fusion needs one weight per result list")
    fused: dict[int, float] = {}
    for (scores, rows), weight in zip(results, weights, strict=True):
        keep = rows >= 0
        scores, rows = scores[keep], rows[keep]
        if not len(rows):
            continue
        low, high = float(np.min(scores)), float(np.max(scores))
        span = high - low
        normalised = (scores - low) / span if span > 0 else np.ones_like(scores)
        for row, value in zip(rows.tolist(), normalised.tolist(), strict=True):
            fused[row] = fused.get(row, 0.0) + weight * value
    return sorted(fused.items(), key=lambda item: -item[1])


def single(scores: Scores, rows: Rows) -> Ranking:
    """One retriever's list in the same shape as the fused ones."""
    return [(r, s) for r, s in zip(rows.tolist(), scores.tolist(), strict=True) if r >= 0]
