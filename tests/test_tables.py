"""Fast paths for wide DataFrames: the same results as scikit-learn's own handling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks
from sklearn.utils.validation import check_array

from radiotx import tables
from radiotx.fairness import shift


@parametrize_with_checks([tables.Values(), shift.RowSpan()])
def test_scikit_learn_conventions(estimator, check):
    check(estimator)


def wide_frame(n=30, p=500, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, p)), columns=[f"g{i}" for i in range(p)])
    X.iloc[::7, 3] = np.nan
    return X


def test_columns_are_selected_by_name_in_the_given_order():
    X = wide_frame()
    names = ["g10", "g2", "g499"]
    by_name = ColumnTransformer([("b", "passthrough", names)]).fit_transform(X)
    fast = ColumnTransformer([("b", "passthrough", tables.Columns(names))]).fit_transform(X)
    np.testing.assert_array_equal(fast, by_name)
    with pytest.raises(ValueError, match="1 columns are not in the data: \\['nope'\\]"):
        ColumnTransformer([("b", "passthrough", tables.Columns(["g1", "nope"]))]).fit(X)


def test_values_give_the_array_and_names_that_scikit_learn_would():
    X = wide_frame()
    plain = make_pipeline(SimpleImputer(strategy="median")).fit(X)
    fast = make_pipeline(tables.Values(), SimpleImputer(strategy="median")).fit(X)
    np.testing.assert_array_equal(fast.transform(X), plain.transform(X))
    assert list(fast.get_feature_names_out()) == list(plain.get_feature_names_out())
    # dtypes as check_array makes them: float32 kept, nullable integers with NaN
    mixed = pd.DataFrame(
        {
            "a": np.arange(4, dtype=np.float32),
            "b": pd.array([1, None, 3, 4], dtype="Int64"),
            "c": [True, False, True, True],
        }
    )
    for frame in (mixed[["a"]], mixed):
        out = tables.Values().fit(frame).transform(frame)
        expected = check_array(frame, dtype=None, ensure_all_finite=False)
        np.testing.assert_array_equal(out.astype(float), expected.astype(float))
    assert tables.Values().fit(mixed[["a"]]).transform(mixed[["a"]]).dtype == np.float32
    with pytest.raises(ValueError, match="columns differ"):
        tables.Values().fit(X).transform(X[X.columns[::-1]])
