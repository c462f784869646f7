"""Answer metrics (SQuAD/HotpotQA style) and per-query retrieval metrics.

Every function scores one question; average them (with ``stats.bootstrap_ci``) over a run.
"""

from __future__ import annotations

import math
import operator
import re
import string
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import TypeVar

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)
_SPECIAL = frozenset({"yes", "no", "noanswer"})


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lowercase, drop punctuation and articles, collapse whitespace."""
    text = text.lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _gold_list(golds: str | Iterable[str]) -> list[str]:
    gold_list = [golds] if isinstance(golds, str) else list(golds)
    if not gold_list:
        raise ValueError("no gold answers given")
    return gold_list


def exact_match(prediction: str, golds: str | Iterable[str]) -> float:
    """1.0 if the normalised prediction equals any normalised gold answer."""
    gold_list = _gold_list(golds)
    if not prediction.strip():
        return 0.0
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(g) for g in gold_list))


def _token_f1(pred: str, gold: str) -> float:
    # HotpotQA's rule: a yes/no/noanswer answer earns nothing unless it matches exactly.
    if (pred in _SPECIAL or gold in _SPECIAL) and pred != gold:
        return 0.0
    common = Counter(pred.split()) & Counter(gold.split())
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(pred.split())
    recall = overlap / len(gold.split())
    return 2 * precision * recall / (precision + recall)


def f1(prediction: str, golds: str | Iterable[str]) -> float:
    """Token-level F1 against the best-matching gold answer."""
    gold_list = _gold_list(golds)
    if not prediction.strip():
        return 0.0
    pred = normalize_answer(prediction)
    return max(_token_f1(pred, normalize_answer(g)) for g in gold_list)


def cover_em(prediction: str, golds: str | Iterable[str]) -> float:
    """1.0 if a normalised gold answer occurs in the normalised prediction.

    Matching is on whole tokens, so gold "1" is not found in "1990".
    """
    gold_list = _gold_list(golds)
    if not prediction.strip():
        return 0.0
    padded = f" {normalize_answer(prediction)} "
    return float(any(f" {g} " in padded for g in map(normalize_answer, gold_list) if g))


# --- retrieval -----------------------------------------------------------------------------

R = TypeVar("R")
G = TypeVar("G")


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")


def supporting_recall(found_ids: Iterable[str], gold_ids: Collection[str]) -> float:
    """Share of the gold documents among the cited (or retrieved) documents."""
    if not gold_ids:
        raise ValueError("no gold documents given")
    gold = set(gold_ids)
    return len(gold.intersection(found_ids)) / len(gold)


def recall_at_k(retrieved_ids: Sequence[str], relevant_ids: Collection[str], k: int) -> float:
    """Share of the relevant ids found in the top ``k`` retrieved."""
    _check_k(k)
    return supporting_recall(retrieved_ids[:k], relevant_ids)


def pass_at_k(
    retrieved: Sequence[R],
    golden: Collection[G],
    k: int,
    match: Callable[[G, R], bool] | None = None,
) -> float:
    """Anthropic's Pass@k for one query: share of golden chunks found in the top ``k``.

    ``match(golden, retrieved)`` decides whether a retrieved item covers a golden one, e.g.
    golden text contained in a retrieved chunk; without it items are compared by equality,
    which makes this ``recall_at_k``.
    """
    _check_k(k)
    if not golden:
        raise ValueError("no golden items given")
    covers = match or operator.eq
    top = retrieved[:k]
    return sum(any(covers(g, r) for r in top) for g in golden) / len(golden)


def mrr_at_k(retrieved_ids: Sequence[str], relevant_ids: Collection[str], k: int = 10) -> float:
    """Reciprocal rank of the first relevant id in the top ``k`` (0 if none)."""
    _check_k(k)
    if not relevant_ids:
        raise ValueError("no relevant ids given")
    relevant = set(relevant_ids)
    for rank, doc in enumerate(retrieved_ids[:k], 1):
        if doc in relevant:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(retrieved_ids: Sequence[str], relevance: Mapping[str, int], k: int = 10) -> float:
    """nDCG@k with linear gains (gain = graded relevance) and a log2 rank discount.

    The same definition as BEIR/pytrec_eval's ``ndcg_cut``. A document retrieved twice counts
    once, so repeats cannot raise the score.
    """
    _check_k(k)
    ideal_gains = sorted((g for g in relevance.values() if g > 0), reverse=True)[:k]
    if not ideal_gains:
        raise ValueError("no document with positive relevance given")
    ranked = list(dict.fromkeys(retrieved_ids))[:k]
    dcg = sum(
        max(relevance.get(doc, 0), 0) / math.log2(rank + 1) for rank, doc in enumerate(ranked, 1)
    )
    idcg = sum(gain / math.log2(rank + 1) for rank, gain in enumerate(ideal_gains, 1))
    return dcg / idcg
