from pathlib import Path

import numpy as np
import pytest

from conftest import HashEmbedder
from reasonrag.config import Settings
from reasonrag.index import Index
from reasonrag.index.fusion import reciprocal_rank_fusion, single, weighted_fusion


def test_rrf_sums_reciprocal_ranks_by_hand() -> None:
    dense = np.array([3, 1, 2])
    sparse = np.array([1, 4, -1])
    fused = dict(reciprocal_rank_fusion([dense, sparse], k=10))
    assert fused[1] == pytest.approx(1 / 12 + 1 / 11)
    assert fused[3] == pytest.approx(1 / 11)
    assert fused[4] == pytest.approx(1 / 12)
    assert -1 not in fused
    order = [row for row, _ in reciprocal_rank_fusion([dense, sparse], k=10)]
    assert order[0] == 1


def test_weighted_fusion_normalises_each_list() -> None:
    dense = (np.array([0.9, 0.5, 0.1], dtype=np.float32), np.array([0, 1, 2]))
    sparse = (np.array([30.0, 10.0], dtype=np.float32), np.array([2, 1]))
    fused = dict(weighted_fusion([dense, sparse], [0.25, 0.75]))
    # dense normalised: 0 -> 1.0, 1 -> 0.5, 2 -> 0.0; sparse: 2 -> 1.0, 1 -> 0.0
    assert fused[0] == pytest.approx(0.25)
    assert fused[1] == pytest.approx(0.125)
    assert fused[2] == pytest.approx(0.75)


def test_weighted_fusion_needs_a_weight_per_list() -> None:
    with pytest.raises(ValueError, match="one weight per"):
        weighted_fusion([(np.array([1.0]), np.array([0]))], [0.5, 0.5])


def test_single_drops_missing_rows() -> None:
    assert single(np.array([2.0, 0.0]), np.array([5, -1])) == [(5, 2.0)]


def test_rrf_and_weighted_rank_a_small_case_by_hand() -> None:
    # dense:  A=0 (0.9), B=1 (0.7), C=2 (0.5)      sparse: C (12), D=3 (8), A (4)
    dense = (np.array([0.9, 0.7, 0.5], dtype=np.float32), np.array([0, 1, 2]))
    sparse = (np.array([12.0, 8.0, 4.0], dtype=np.float32), np.array([2, 3, 0]))
    # RRF, k=1: A = 1/2 + 1/4, C = 1/4 + 1/2, B = 1/3, D = 1/3
    rrf = dict(reciprocal_rank_fusion([dense[1], sparse[1]], k=1))
    assert rrf == pytest.approx({0: 0.75, 2: 0.75, 1: 1 / 3, 3: 1 / 3})
    # weighted 0.8 / 0.2 on min-max scores: dense A 1, B .5, C 0; sparse C 1, D .5, A 0
    weighted = weighted_fusion([dense, sparse], [0.8, 0.2])
    assert [row for row, _ in weighted] == [0, 1, 2, 3]
    assert dict(weighted) == pytest.approx({0: 0.8, 1: 0.4, 2: 0.2, 3: 0.1})


def test_a_deeper_pool_lets_a_one_sided_item_into_the_fused_list() -> None:
    # Row 9 is last in the dense list but first in the sparse list: with a pool of 2 per
    # side it never enters the dense side, and its sparse rank alone does not win.
    dense = np.array([1, 2, 3, 9])
    sparse = np.array([9, 4, 5, 6])

    def fused(depth: int) -> list[int]:
        return [row for row, _ in reciprocal_rank_fusion([dense[:depth], sparse[:depth]], k=1)]

    assert fused(2)[:2] == [1, 9] and 3 not in fused(2)
    assert fused(4)[0] == 9  # 1/2 + 1/5 beats row 1's 1/2
    assert set(fused(4)) - set(fused(2)) == {3, 5, 6}


def test_candidates_sets_the_depth_of_both_pools(
    corpus_dir: Path, settings: Settings, hash_embedder: HashEmbedder, tmp_path: Path
) -> None:
    Index.build([corpus_dir], settings, tmp_path / "idx", embedder=hash_embedder, progress=False)
    for fusion in ("rrf", "weighted"):
        retrieval = settings.retrieval.model_copy(update={"fusion": fusion, "candidates": 1})
        shallow = settings.model_copy(update={"retrieval": retrieval})
        index = Index.open(tmp_path / "idx", shallow, embedder=hash_embedder)
        hits = index.search("who rebuilt the mill in stone", k=10)
        assert 1 <= len(hits) <= 2  # one candidate from each side, at most
        deep = Index.open(tmp_path / "idx", settings, embedder=hash_embedder)
        assert len(deep.search("who rebuilt the mill in stone", k=10)) > 2
