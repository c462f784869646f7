"""Bootstrap confidence intervals for per-question scores (percentile method)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray


def _as_scores(values: Sequence[float] | NDArray[np.floating], name: str) -> NDArray[np.float64]:
    scores = np.asarray(values, dtype=np.float64)
    if scores.ndim != 1 or scores.size == 0:
        raise ValueError(f"{name}: expected a non-empty 1-D sequence of scores")
    if not np.isfinite(scores).all():
        raise ValueError(f"{name}: scores must be finite (no NaN or inf)")
    return scores


def _resampled_means(
    scores: NDArray[np.float64], n_resamples: int, seed: int
) -> NDArray[np.float64]:
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, scores.size, size=(n_resamples, scores.size))
    return scores[picks].mean(axis=1)


def _interval(means: NDArray[np.float64], alpha: float) -> tuple[float, float]:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def bootstrap_ci(
    values: Sequence[float] | NDArray[np.floating],
    n_resamples: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(mean, lower, upper) of a ``1 - alpha`` bootstrap interval for the mean score."""
    scores = _as_scores(values, "values")
    lo, hi = _interval(_resampled_means(scores, n_resamples, seed), alpha)
    return float(scores.mean()), lo, hi


def paired_bootstrap(
    a: Sequence[float] | NDArray[np.floating],
    b: Sequence[float] | NDArray[np.floating],
    n_resamples: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float, float, float]:
    """Compare two runs scored on the same questions (``a[i]`` and ``b[i]`` are one question).

    Returns (mean of a - b, lower, upper, two-sided p-value). The p-value is the share of
    resampled mean differences, shifted to a zero mean (the null hypothesis), at least as far
    from zero as the observed one; a +1 correction keeps it above zero.
    """
    if len(a) != len(b):
        raise ValueError(f"paired runs differ in length: {len(a)} vs {len(b)}")
    diffs = _as_scores(a, "a") - _as_scores(b, "b")
    observed = float(diffs.mean())
    means = _resampled_means(diffs, n_resamples, seed)
    lo, hi = _interval(means, alpha)
    extreme = np.abs(means - observed) >= abs(observed) - 1e-12
    p_value = (1 + int(extreme.sum())) / (1 + n_resamples)
    return observed, lo, hi, p_value
