"""Fast paths for wide DataFrames inside scikit-learn pipelines.

A modality block can hold thousands of columns (genes, voxels). scikit-learn handles a
DataFrame column by column in places that run thousands of times per job: finding a
ColumnTransformer's columns by name (quadratic in the width) and checking each column's
dtype on every fit and transform. These steps do the same on whole arrays.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_selection import VarianceThreshold
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted, validate_data

from radiotx.errors import InputError


class Columns:
    """A ColumnTransformer's column selector: the named columns of a DataFrame, in this
    order, found by one hash lookup."""

    def __init__(self, names):
        self.names = list(names)

    def __call__(self, X) -> np.ndarray:
        found = pd.Index(X.columns).get_indexer(self.names)
        if (found < 0).any():
            missing = [name for name, i in zip(self.names, found, strict=True) if i < 0]
            raise ValueError(f"{len(missing)} columns are not in the data: {missing[:5]}")
        return found

    def __repr__(self) -> str:
        return f"Columns({len(self.names)} columns)"


class Values(TransformerMixin, BaseEstimator):
    """A numeric DataFrame as the array scikit-learn would make of it, its column names
    kept for ``get_feature_names_out``: the next steps then check one array instead of
    every column's dtype on each call."""

    def fit(self, X, y=None):
        if isinstance(X, pd.DataFrame):
            self.n_features_in_ = X.shape[1]
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        else:  # an array: scikit-learn's checks are cheap
            validate_data(self, X, dtype="numeric", ensure_all_finite=False)
        return self

    def transform(self, X):
        check_is_fitted(self, "n_features_in_")
        if not isinstance(X, pd.DataFrame):
            return validate_data(self, X, dtype="numeric", ensure_all_finite=False, reset=False)
        names = getattr(self, "feature_names_in_", None)
        if names is None or not np.array_equal(X.columns.to_numpy(dtype=object), names):
            raise ValueError("the columns differ from those seen in fit (names or order)")
        if all(isinstance(d, np.dtype) and d.kind in "fiu" for d in set(X.dtypes)):
            return X.to_numpy()
        return X.to_numpy(dtype=float, na_value=np.nan)  # nullable, bool or mixed columns

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "n_features_in_")
        return _check_feature_names_in(self, input_features)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


class Varying(VarianceThreshold):
    """scikit-learn's ``VarianceThreshold`` that names its block when none of the block's
    features varies among a fold's training patients (scikit-learn names neither the table
    nor the modality)."""

    def __init__(self, threshold: float = 0.0, block: str = ""):
        super().__init__(threshold=threshold)
        self.block = block

    def fit(self, X, y=None):
        try:
            return super().fit(X, y)
        except ValueError as err:
            if "No feature in X meets the variance threshold" not in str(err):
                raise
            raise InputError(
                f"no feature of '{self.block}' varies among the {len(X)} training patients "
                "of a fold",
                fix=f"check '{self.block}' (a column that is constant in most patients is "
                f"not a feature), or remove '{self.block}' from the pipeline",
            ) from err
