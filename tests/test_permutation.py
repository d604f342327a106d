"""The label-permutation test of the whole modelling procedure."""

import numpy as np
import pandas as pd
import pytest

from radiotx import permutation


def test_permute_shuffles_labels_reproducibly():
    labels = pd.Series([1, 1, 1, 0, 0, 0, 0, 0, 0, 0], index=[f"P{i}" for i in range(10)])
    first = permutation.permute(labels, seed=42, index=3)
    assert first.sort_values().tolist() == labels.sort_values().tolist()
    assert list(first.index) == list(labels.index)
    pd.testing.assert_series_equal(first, permutation.permute(labels, seed=42, index=3))
    others = [tuple(permutation.permute(labels, 42, i)) for i in range(20)]
    assert len(set(others)) > 10  # different permutations differ


def test_p_value_counts_the_real_run():
    assert permutation.p_value(0.9, [0.5] * 19) == pytest.approx(1 / 20)
    assert permutation.p_value(0.5, [0.5, 0.6, 0.4, 0.7]) == pytest.approx(4 / 5)
    result = permutation.summary(0.8, np.array([0.4, 0.5, 0.85]))
    assert result["p_value"] == pytest.approx(2 / 4) and result["n_permutations"] == 3
    assert result["null_mean"] == pytest.approx(0.5833333)
