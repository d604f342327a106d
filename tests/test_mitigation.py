"""Tests for the in-fold bias mitigations: group thresholds that shrink a planted
equalized-odds gap, reweighing weights, group-aware oversampling, applicability and
reproducibility."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import equalized_odds_difference
from sklearn.base import clone
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import train_test_split

from radiotx import models
from radiotx.evaluate import scores
from radiotx.fairness.mitigation import METHODS, Mitigated, applies, oversample, reweighing_weights


@pytest.fixture(scope="module")
def data():
    """300 patients x 20 radiomic features, 30 % positives, 3 informative features, and a
    scanner-like bias: group B's informative features are 1 SD higher whatever the label.
    Split 50/50, stratified on the label."""
    rng = np.random.default_rng(0)
    y = rng.permutation(np.r_[np.ones(90, dtype=int), np.zeros(210, dtype=int)])
    group = rng.permutation(np.repeat(["A", "B"], 150))
    X = rng.normal(size=(300, 20))
    X[:, :3] += 0.8 * y[:, None]
    X[group == "B", :3] += 1.0
    ids = [f"P{i:03d}" for i in range(300)]
    X = pd.DataFrame(X, index=ids, columns=[f"radiomics:f{j:02d}" for j in range(20)])
    y, group = pd.Series(y, index=ids), pd.Series(group, index=ids)
    return train_test_split(X, y, group, test_size=0.5, stratify=y, random_state=0)


def _pipeline(X: pd.DataFrame, name: str = "logreg"):
    return models.build({"radiomics": list(X.columns)}, name, seed=0, k=5)


def test_threshold_shrinks_equalized_odds_gap(data):
    X_train, X_test, y_train, y_test, g_train, g_test = data
    pipe = _pipeline(X_train)
    plain = clone(pipe).fit(X_train, y_train)
    before = plain.predict(X_test)
    gap_before = equalized_odds_difference(y_test, before, sensitive_features=g_test)
    assert gap_before > 0.2

    mitigated = Mitigated(pipe, "threshold", seed=0).fit(
        X_train, y_train, sensitive_features=g_train
    )
    after = mitigated.predict(X_test, sensitive_features=g_test)
    gap_after = equalized_odds_difference(y_test, after, sensitive_features=g_test)
    assert gap_after <= gap_before / 2
    drop = balanced_accuracy_score(y_test, before) - balanced_accuracy_score(y_test, after)
    assert drop < 0.1
    assert mitigated.applicable_ and mitigated.groups_ == ["A", "B"]
    # thresholds leave the ranking, hence the AUC, of the refitted model unchanged
    score = mitigated.decision_scores(X_test, sensitive_features=g_test)
    np.testing.assert_allclose(score, scores(plain, X_test))


def test_reweighing_weights_balance_classes_within_groups():
    groups = np.array(["A"] * 10 + ["B"] * 30)
    y = np.array([1, 1] + [0] * 8 + [1] * 15 + [0] * 15)
    weights = reweighing_weights(groups, y)
    assert weights.mean() == pytest.approx(1.0)
    for g in ("A", "B"):
        in_group = groups == g
        positive = weights[in_group & (y == 1)].sum()
        negative = weights[in_group & (y == 0)].sum()
        assert positive == pytest.approx(negative)
        assert weights[in_group].sum() == pytest.approx(in_group.sum())  # groups keep size


def test_reweighing_replaces_smote_and_class_weight(data):
    X_train, X_test, y_train, _, g_train, g_test = data
    pipe = _pipeline(X_train)
    pipe.set_params(clf__class_weight="balanced")
    assert pipe.named_steps["balance"] is not None and applies(pipe, "reweighing")
    mitigated = Mitigated(pipe, "reweighing").fit(X_train, y_train, sensitive_features=g_train)
    fitted = mitigated.estimator_
    assert fitted.named_steps["balance"] is None
    assert fitted.named_steps["clf"].class_weight is None
    assert pipe.named_steps["balance"] is not None  # the wrapped estimator is untouched
    score = mitigated.decision_scores(X_test, sensitive_features=g_test)
    assert score.shape == (len(X_test),) and np.all((score >= 0) & (score <= 1))
    assert mitigated.predict(X_test, sensitive_features=g_test).shape == (len(X_test),)


def test_group_oversampling_equalises_cells(data):
    X_train, X_test, y_train, _, g_train, g_test = data
    X_res, y_res, g_res = oversample(X_train, y_train, g_train, seed=0)
    assert isinstance(X_res, pd.DataFrame) and list(X_res.columns) == list(X_train.columns)
    assert X_res.index.equals(y_res.index) and X_res.index.has_duplicates
    cells = pd.Series(g_res).groupby([g_res, y_res.to_numpy()]).size()
    assert len(cells) == 4 and cells.nunique() == 1
    assert cells.iloc[0] == pd.crosstab(g_train, y_train).to_numpy().max()

    mitigated = Mitigated(_pipeline(X_train), "group_oversampling", seed=0)
    mitigated.fit(X_train, y_train, sensitive_features=g_train)
    assert mitigated.cell_sizes_.nunique() == 1
    predicted = mitigated.predict(X_test, sensitive_features=g_test)
    assert set(np.unique(predicted)) <= {0, 1} and len(predicted) == len(X_test)
    assert mitigated.decision_scores(X_test, sensitive_features=g_test).shape == (len(X_test),)


def test_reweighing_needs_sample_weights(data):
    X_train, _, y_train, _, g_train, _ = data
    knn = _pipeline(X_train, "knn")
    assert not applies(knn, "reweighing")
    assert applies(knn, "threshold") and applies(knn, "group_oversampling")
    with pytest.raises(ValueError, match="KNeighborsClassifier"):
        Mitigated(knn, "reweighing").fit(X_train, y_train, sensitive_features=g_train)
    with pytest.raises(ValueError, match="unknown mitigation"):
        applies(knn, "massaging")


@pytest.mark.parametrize("method", METHODS)
def test_predictions_are_reproducible(data, method):
    X_train, X_test, y_train, _, g_train, g_test = data
    pipe = _pipeline(X_train)
    first = Mitigated(pipe, method, seed=0).fit(X_train, y_train, sensitive_features=g_train)
    again = first.predict(X_test, sensitive_features=g_test)
    np.testing.assert_array_equal(first.predict(X_test, sensitive_features=g_test), again)
    refit = Mitigated(pipe, method, seed=0).fit(X_train, y_train, sensitive_features=g_train)
    np.testing.assert_array_equal(refit.predict(X_test, sensitive_features=g_test), again)


def test_unseen_group_is_named(data):
    X_train, X_test, y_train, _, g_train, g_test = data
    mitigated = Mitigated(_pipeline(X_train), "threshold", seed=0)
    mitigated.fit(X_train, y_train, sensitive_features=g_train)
    unseen = g_test.where(g_test == "A", "C")
    with pytest.raises(ValueError, match=r"'C'.*merge small groups"):
        mitigated.predict(X_test, sensitive_features=unseen)
