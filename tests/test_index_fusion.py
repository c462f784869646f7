import numpy as np
import pytest

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
