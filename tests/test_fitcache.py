"""The in-memory fit cache of the inner-CV search: identical choices and predictions to
no cache at all, each shared step fitted once, and keys that tell data apart."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from imblearn.over_sampling import SMOTE
from imblearn.pipeline import Pipeline
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline as SkPipeline
from sklearn.preprocessing import StandardScaler

from radiotx import evaluate, fitcache


class CountingScaler(StandardScaler):
    fits = 0

    def fit(self, X, y=None, sample_weight=None):
        type(self).fits += 1
        return super().fit(X, y, sample_weight)


@pytest.fixture()
def data():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(60, 8)), columns=[f"f{i}" for i in range(8)])
    y = pd.Series((X["f0"] + rng.normal(scale=0.5, size=60) > 0).astype(int))
    return X, y


def test_a_shared_step_is_fitted_once_per_split_and_the_choice_is_unchanged(data):
    X, y = data
    pipeline = Pipeline(
        [("scale", CountingScaler()), ("balance", SMOTE(random_state=0)),
         ("clf", LogisticRegression())]
    )  # fmt: skip
    spaces = {"a": [{"clf__C": [0.01, 0.1]}], "b": [{"clf__C": [1.0, 10.0]}]}
    cv = StratifiedKFold(3, shuffle=True, random_state=1)
    CountingScaler.fits = 0
    shared = evaluate.tune_each(pipeline, spaces, X, y, cv, union="all", share=True)
    # 3 splits + the refit on all rows, once each however many candidates share them
    assert CountingScaler.fits == 3 + 1
    CountingScaler.fits = 0
    alone = evaluate.tune_each(pipeline, spaces, X, y, cv, union="all", share=False)
    assert CountingScaler.fits > 3 + 1
    for name in shared:
        assert shared[name].params == alone[name].params
        assert shared[name].inner_score == alone[name].inner_score
        np.testing.assert_array_equal(
            shared[name].estimator.predict_proba(X), alone[name].estimator.predict_proba(X)
        )
        assert shared[name].estimator.memory is None


def test_scikit_learns_own_pipeline_uses_it_too(data):
    # scikit-learn's Pipeline (the survival models') asks the cache to ignore its messages
    X, y = data
    pipeline = SkPipeline([("scale", CountingScaler()), ("clf", LogisticRegression())])
    spaces = {"a": [{"clf__C": [0.1, 1.0]}]}
    cv = StratifiedKFold(3, shuffle=True, random_state=1)
    CountingScaler.fits = 0
    tuned = evaluate.tune_each(pipeline, spaces, X, y, cv)
    assert CountingScaler.fits == 3 + 1
    assert tuned["a"].params["clf__C"] in (0.1, 1.0)


def test_keys_tell_apart_values_names_types_and_steps(data):
    X, y = data
    key = fitcache.digest(StandardScaler(), X, y)
    assert key == fitcache.digest(StandardScaler(), X.copy(), y.copy())
    changed = X.copy()
    changed.iloc[5, 3] += 1e-12
    assert fitcache.digest(StandardScaler(), changed, y) != key
    assert fitcache.digest(StandardScaler(), X.rename(columns={"f1": "g1"}), y) != key
    assert fitcache.digest(StandardScaler(), X.astype(np.float32), y) != key
    assert fitcache.digest(StandardScaler(with_mean=False), X, y) != key
    assert fitcache.digest(StandardScaler(), X, 1 - y) != key
    text = pd.DataFrame({"a": ["1", "2"]})
    assert fitcache.digest(text) != fitcache.digest(pd.DataFrame({"a": [1, "2"]}, dtype=object))


def test_cached_results_are_copies_and_clones_share_the_store():
    cache = fitcache.FitCache()
    calls = []

    def fit(estimator, X, y):
        calls.append(1)
        return X * 2, estimator

    cached = cache.cache(fit)
    first = cached(StandardScaler(), np.ones((3, 2)), None)
    first[0][0, 0] = 99  # a caller changing its copy does not change the store
    second = cache.cache(fit)(StandardScaler(), np.ones((3, 2)), None)
    assert len(calls) == 1 and second[0][0, 0] == 2
    pipeline = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())])
    assert clone(pipeline.set_params(memory=cache)).memory is cache
    assert len(cache) == 1


def test_memo_keeps_the_last_results():
    memo = fitcache.Memo(size=2)
    for key in "abc":
        memo.get(key, lambda key=key: [key])
    assert memo.get("c", lambda: ["new"]) == ["c"]
    assert memo.get("a", lambda: ["new"]) == ["new"]  # the oldest was dropped
