"""Tests for the model pipelines: per-block preprocessing, selection, SMOTE, classifiers."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from imblearn.pipeline import Pipeline
from sklearn.base import clone
from sklearn.model_selection import ParameterGrid

from radiotx import models
from radiotx.errors import InputError

SEP = models.SEPARATOR


@pytest.fixture(scope="module")
def data():
    """40 patients, block 'a' (8 columns, two informative) and block 'b' (4 columns), with
    NaN cells, a constant column and an all-missing column; 30 % positives."""
    rng = np.random.default_rng(0)
    n = 40
    y = np.r_[np.ones(12, int), np.zeros(n - 12, int)]
    a = rng.normal(size=(n, 8))
    a[:, 0] += 2.0 * y
    a[:, 1] -= 1.5 * y
    a[:, 7] = 3.0  # constant
    b = rng.normal(size=(n, 4))
    b[:, 2] += 1.5 * y
    b[:, 3] = np.nan  # never measured
    a[rng.random(a.shape) < 0.1] = np.nan
    b[rng.random(b.shape) < 0.1] = np.nan
    index = pd.Index([f"P{i:02d}" for i in range(n)], name="patient_id")
    X = pd.concat(
        [
            pd.DataFrame(a, index=index, columns=[f"a{SEP}f{i}" for i in range(8)]),
            pd.DataFrame(b, index=index, columns=[f"b{SEP}g{i}" for i in range(4)]),
        ],
        axis=1,
    )
    blocks = {
        "a": [c for c in X.columns if c.startswith(f"a{SEP}")],
        "b": [c for c in X.columns if c.startswith(f"b{SEP}")],
    }
    return X, pd.Series(y, index=index, name="response"), blocks


@pytest.mark.parametrize("name", sorted(models.CLASSIFIERS))
def test_build_fits_and_predicts(data, name):
    X, y, blocks = data
    pipeline = models.build(blocks, name, seed=0, k=3)
    assert isinstance(pipeline, Pipeline)
    assert [step for step, _ in pipeline.steps] == ["prep", "balance", "clf"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        pipeline.fit(X, y)
    pred = pipeline.predict(X)
    assert pred.shape == (len(X),)
    assert set(np.unique(pred)) <= {0, 1}
    # The informative columns carry enough signal to beat chance on the training rows.
    assert (pred == y.to_numpy()).mean() > 0.7
    transformed = pipeline.named_steps["prep"].transform(X)
    assert transformed.shape == (len(X), 6)
    assert np.isfinite(transformed).all()

    selected = models.selected_features(pipeline)
    assert len(selected) == 6
    assert all(isinstance(pair, tuple) and len(pair) == 2 for pair in selected)
    per_block = pd.Series([m for m, _ in selected]).value_counts()
    assert per_block.to_dict() == {"a": 3, "b": 3}
    assert ("a", "f0") in selected and ("b", "g2") in selected
    # Constant and never-measured columns cannot be selected.
    assert ("a", "f7") not in selected and ("b", "g3") not in selected


def test_build_is_reproducible(data):
    X, y, blocks = data
    first = models.build(blocks, "rf", seed=3, k=2).fit(X, y)
    second = models.build(blocks, "rf", seed=3, k=2).fit(X, y)
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))


def test_selected_features_capped_by_k(data):
    X, y, blocks = data
    pipeline = models.build(blocks, "logreg", seed=0, k=1).fit(X, y)
    selected = models.selected_features(pipeline)
    assert selected == [("a", "f0"), ("b", "g2")]


def test_block_narrower_than_k_keeps_its_usable_features(data):
    X, y, blocks = data
    pipeline = models.build(blocks, "logreg", seed=0, k=50)
    assert pipeline.named_steps["prep"].transformers[0][1].named_steps["select"].k == 8
    with pytest.warns(UserWarning, match="greater than n_features"):
        pipeline.fit(X, y)
    selected = models.selected_features(pipeline)
    assert [f for m, f in selected if m == "a"] == [f"f{i}" for i in range(7)]
    assert [f for m, f in selected if m == "b"] == ["g0", "g1", "g2"]


def test_feature_names_may_contain_the_separator():
    blocks = {"rnaseq": [f"rnaseq{SEP}HLA:A", f"rnaseq{SEP}B"]}
    X = pd.DataFrame(np.random.default_rng(1).normal(size=(20, 2)), columns=blocks["rnaseq"])
    y = pd.Series([1] * 8 + [0] * 12)
    X.iloc[:8, 0] += 3
    pipeline = models.build(blocks, "logreg", k=1).fit(X, y)
    assert models.selected_features(pipeline) == [("rnaseq", "HLA:A")]


def test_only_block_columns_are_used(data):
    X, y, blocks = data
    pipeline = models.build({"b": blocks["b"]}, "logreg", seed=0, k=2).fit(X, y)
    assert {m for m, _ in models.selected_features(pipeline)} == {"b"}
    shuffled_a = X.copy()
    shuffled_a[blocks["a"]] = shuffled_a[blocks["a"]].sample(frac=1.0, random_state=0).to_numpy()
    np.testing.assert_array_equal(pipeline.predict_proba(X), pipeline.predict_proba(shuffled_a))


@pytest.mark.parametrize("name", sorted(models.CLASSIFIERS))
def test_grid_one_space_per_distinct_k(data, name):
    _, _, blocks = data
    spaces = models.grid(blocks, name, [20, 5, 5, 2])
    assert len(spaces) == 3
    ks = [(s["prep__a__select"][0].k, s["prep__b__select"][0].k) for s in spaces]
    assert ks == [(2, 2), (5, 4), (8, 4)]
    _, clf_grid = models.classifier(name)
    for space in spaces:
        assert all(isinstance(v, list) for v in space.values())
        for key, values in clf_grid.items():
            assert space[f"clf__{key}"] == values
    # Every point of the grid is a valid parameter setting of the built pipeline.
    pipeline = models.build(blocks, name)
    for params in ParameterGrid(spaces):
        clone(pipeline).set_params(**params)


def test_classifier_grids():
    assert models.classifier("logreg", seed=5)[0].random_state == 5
    assert models.classifier("svm")[1] == {"C": [0.1, 1.0, 10.0]}


def test_unknown_classifier():
    with pytest.raises(ValueError, match="unknown classifier 'lasso'"):
        models.classifier("lasso")
    with pytest.raises(ValueError, match="unknown classifier"):
        models.build({"a": ["a:x"]}, "lasso")
    with pytest.raises(ValueError, match="unknown classifier"):
        models.grid({"a": ["a:x"]}, "lasso", [5])


def test_a_block_with_no_varying_feature_in_a_fold_is_named():
    """scikit-learn's own error names neither the table nor the modality."""
    X = pd.DataFrame({"crp": np.ones(20), "ldh": np.full(20, 2.0), "age": np.arange(20.0)})
    y = np.tile([0, 1], 10)
    model = models.build({"lab": ["crp", "ldh"], "clinical": ["age"]}, "logreg")
    with pytest.raises(InputError, match="no feature of 'lab' varies among the 20 training"):
        model.fit(X, y)
    models.build({"clinical": ["age"]}, "logreg").fit(X, y)  # a block that varies fits
