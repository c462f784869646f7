"""Straight-through top-k: choose k documents exactly, yet let the loss of what was
generated from them reach every candidate's retrieval score.

Forward, the weights are hard one-hot rows (slot j selects the j-th best candidate).
Backward, each slot's gradient flows through a softmax over the candidates not taken by
earlier slots, at a temperature: the identity ``hard + soft - soft.detach()`` has the value
of ``hard`` and the gradient of ``soft``.
"""

from __future__ import annotations

import torch


def straight_through_topk(
    scores: torch.Tensor, k: int, temperature: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(weights, indices)`` for ``scores`` of shape ``[batch, candidates]``: ``weights``
    is ``[batch, k, candidates]`` (one-hot rows in value), ``indices`` ``[batch, k]``."""
    if not 1 <= k <= scores.shape[-1]:
        raise ValueError(f"k={k} must be between 1 and the {scores.shape[-1]} candidates")
    scaled = scores / max(temperature, 1e-6)
    indices = scaled.topk(k, dim=-1).indices
    hard = torch.zeros(*scores.shape[:-1], k, scores.shape[-1], dtype=scores.dtype)
    hard = hard.to(scores.device).scatter(-1, indices.unsqueeze(-1), 1.0)
    soft = []
    taken = torch.zeros_like(scores)
    for slot in range(k):
        # Candidates already chosen by earlier slots get no probability in this one.
        masked = scaled.masked_fill(taken.bool(), float("-inf"))
        soft.append(torch.softmax(masked, dim=-1))
        taken = taken + hard[..., slot, :]
    relaxed = torch.stack(soft, dim=-2)
    # The difference is exactly zero in value, so the forward weights are exactly one-hot.
    return hard + (relaxed - relaxed.detach()), indices
