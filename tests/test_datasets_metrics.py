"""Answer and retrieval metrics on hand-worked cases, and the bootstrap statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reasonrag.datasets.metrics import (
    cover_em,
    exact_match,
    f1,
    mrr_at_k,
    ndcg_at_k,
    normalize_answer,
    pass_at_k,
    recall_at_k,
    supporting_recall,
)
from reasonrag.eval.stats import bootstrap_ci, paired_bootstrap


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The  Blue River!", "blue river"),
        ("an Apple, a pear", "apple pear"),
        ("Rufus T. Firefly", "rufus t firefly"),
        ("Theater", "theater"),  # "the" inside a word stays
        ("  ", ""),
    ],
)
def test_normalize_answer(text: str, expected: str) -> None:
    assert normalize_answer(text) == expected


def test_exact_match_ignores_case_punctuation_and_articles() -> None:
    assert exact_match("The Blue River.", ["blue river"]) == 1.0
    assert exact_match("Blue", ["blue river"]) == 0.0
    assert exact_match("firefly!", ["Rufus T. Firefly", "Firefly"]) == 1.0
    assert exact_match("Marxville", "marxville") == 1.0  # a lone string is one gold answer


def test_f1_partial_overlap_by_hand() -> None:
    # pred tokens: blue river in freedonia (4); gold: blue river (2); overlap 2
    # precision 1/2, recall 1 -> F1 = 2 * 0.5 * 1 / 1.5 = 2/3
    assert f1("the Blue River in Freedonia", ["Blue River"]) == pytest.approx(2 / 3)
    # repeated tokens count once per gold occurrence: P = 1/2, R = 1
    assert f1("river river", ["river"]) == pytest.approx(2 / 3)
    assert f1("Lake", ["blue river"]) == 0.0


def test_f1_takes_best_gold() -> None:
    assert f1("blue", ["red", "blue river"]) == pytest.approx(2 / 3)
    assert f1("blue river", ["red", "blue river"]) == 1.0


def test_f1_yes_no_special_case() -> None:
    # "yes it is" shares the token "yes" with the gold, but yes/no answers must match exactly
    assert f1("yes it is", ["yes"]) == 0.0
    assert f1("No.", ["no"]) == 1.0
    assert f1("yes", ["no"]) == 0.0
    assert f1("no", ["no way"]) == 0.0  # would be 2/3 without the rule


def test_cover_em_matches_whole_tokens() -> None:
    assert cover_em("It is the Blue River, I think.", ["blue river"]) == 1.0
    assert cover_em("in 1990", ["1990"]) == 1.0
    assert cover_em("1990", ["1"]) == 0.0
    assert cover_em("Sylvania", ["Freedonia", "Sylvania"]) == 1.0


@pytest.mark.parametrize("metric", [exact_match, f1, cover_em])
def test_empty_prediction_scores_zero(metric) -> None:
    assert metric("", ["the"]) == 0.0
    assert metric("   ", ["blue river"]) == 0.0


@pytest.mark.parametrize("metric", [exact_match, f1, cover_em])
def test_empty_gold_list_is_an_error(metric) -> None:
    with pytest.raises(ValueError, match="gold"):
        metric("blue", [])


def test_recall_at_k() -> None:
    assert recall_at_k(["a", "x", "b"], {"a", "b", "c"}, 2) == pytest.approx(1 / 3)
    assert recall_at_k(["a", "x", "b"], {"a", "b", "c"}, 3) == pytest.approx(2 / 3)
    assert recall_at_k([], {"a"}, 5) == 0.0
    with pytest.raises(ValueError):
        recall_at_k(["a"], set(), 1)
    with pytest.raises(ValueError, match="k must be"):
        recall_at_k(["a"], {"a"}, 0)


def test_pass_at_k_share_of_golden_chunks_found() -> None:
    golden = ["Marxville was founded", "Firefly leads Freedonia"]
    retrieved = ["In 1933 Marxville was founded by settlers.", "Unrelated text."]
    contains = lambda g, r: g in r  # noqa: E731
    assert pass_at_k(retrieved, golden, 1, match=contains) == 0.5
    assert pass_at_k(retrieved[1:], golden, 1, match=contains) == 0.0
    # without a matcher ids are compared by equality
    assert pass_at_k(["c1", "c7", "c2"], ["c1", "c2"], 2) == 0.5
    assert pass_at_k(["c1", "c7", "c2"], ["c1", "c2"], 3) == 1.0


def test_mrr_at_k() -> None:
    assert mrr_at_k(["x", "y", "a"], {"a", "b"}) == pytest.approx(1 / 3)
    assert mrr_at_k(["b", "a"], {"a", "b"}) == 1.0
    assert mrr_at_k(["x", "y", "a"], {"a"}, k=2) == 0.0


def test_ndcg_hand_computed_three_items() -> None:
    relevance = {"a": 2, "b": 1, "c": 0}
    # DCG = 1/log2(2) + 0/log2(3) + 2/log2(4) = 2; IDCG = 2/log2(2) + 1/log2(3)
    expected = 2 / (2 + 1 / math.log2(3))
    assert ndcg_at_k(["b", "c", "a"], relevance, k=3) == pytest.approx(expected)
    assert expected == pytest.approx(0.76019, abs=1e-5)
    # k=1: DCG = 1, IDCG = 2
    assert ndcg_at_k(["b", "c", "a"], relevance, k=1) == pytest.approx(0.5)
    assert ndcg_at_k(["a", "b", "c"], relevance, k=3) == pytest.approx(1.0)


def test_ndcg_counts_a_repeated_document_once() -> None:
    relevance = {"a": 2, "b": 2}
    assert ndcg_at_k(["a", "a"], relevance, k=2) == pytest.approx(2 / (2 + 2 / math.log2(3)))


def test_ndcg_needs_a_relevant_document() -> None:
    with pytest.raises(ValueError, match="positive relevance"):
        ndcg_at_k(["a"], {"a": 0})


def test_supporting_recall() -> None:
    assert supporting_recall(["a", "z", "a"], {"a", "b"}) == 0.5
    assert supporting_recall([], {"a"}) == 0.0
    with pytest.raises(ValueError):
        supporting_recall(["a"], [])


# --- stats ---------------------------------------------------------------------------------


def test_bootstrap_ci_contains_mean_and_narrows_with_more_data() -> None:
    rng = np.random.default_rng(1)
    small = (rng.random(50) < 0.6).astype(float)
    large = (rng.random(2000) < 0.6).astype(float)
    mean, lo, hi = bootstrap_ci(small)
    assert mean == pytest.approx(small.mean())
    assert lo < mean < hi
    mean_l, lo_l, hi_l = bootstrap_ci(large)
    assert lo_l < mean_l < hi_l
    assert hi_l - lo_l < (hi - lo) / 3  # width shrinks roughly as 1/sqrt(n)


def test_bootstrap_ci_is_deterministic_for_a_seed() -> None:
    values = [0.0, 1.0, 1.0, 0.5, 0.0, 1.0]
    assert bootstrap_ci(values, seed=3) == bootstrap_ci(values, seed=3)
    assert bootstrap_ci([1.0, 1.0, 1.0]) == (1.0, 1.0, 1.0)


def test_bootstrap_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        bootstrap_ci([])
    with pytest.raises(ValueError, match="finite"):
        bootstrap_ci([1.0, float("nan")])
    with pytest.raises(ValueError, match="alpha"):
        bootstrap_ci([1.0, 0.0], alpha=1.5)


def test_paired_bootstrap_sign_and_significance() -> None:
    rng = np.random.default_rng(7)
    better = (rng.random(300) < 0.7).astype(float)
    worse = (rng.random(300) < 0.4).astype(float)
    diff, lo, hi, p = paired_bootstrap(better, worse)
    assert diff == pytest.approx(better.mean() - worse.mean())
    assert 0 < lo < diff < hi
    assert p < 0.01
    diff_r, lo_r, hi_r, p_r = paired_bootstrap(worse, better)
    assert diff_r == pytest.approx(-diff)
    assert lo_r < diff_r < hi_r < 0
    assert p_r < 0.01


def test_paired_bootstrap_identical_runs_are_not_different() -> None:
    scores = [1.0, 0.0, 1.0, 1.0, 0.0]
    assert paired_bootstrap(scores, scores) == (0.0, 0.0, 0.0, 1.0)


def test_paired_bootstrap_small_noisy_difference_is_not_significant() -> None:
    a = [1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0]
    b = [0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0]
    _, lo, hi, p = paired_bootstrap(a, b)
    assert lo <= 0 <= hi
    assert p > 0.05


def test_paired_bootstrap_needs_equal_lengths() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        paired_bootstrap([1.0, 0.0], [1.0])
