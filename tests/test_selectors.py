"""Feature selectors of the modelling core, and the inner-CV search space that chooses
among selectors, balancers and classifiers."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from imblearn.pipeline import Pipeline
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.feature_selection import f_classif
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, ParameterGrid, StratifiedKFold
from sklearn.preprocessing import StandardScaler

from radiotx import evaluate, models, selection


@pytest.fixture(scope="module")
def data():
    """120 patients: 6 informative, 6 redundant (their linear combinations), 88 noise
    columns; informative and redundant columns first."""
    X, y = make_classification(
        n_samples=120, n_features=100, n_informative=6, n_redundant=6, shuffle=False,
        class_sep=2.0, random_state=0,
    )  # fmt: skip
    return StandardScaler().fit_transform(X), y


@pytest.mark.parametrize("name", sorted(selection.SELECTORS))
def test_selectors_find_the_informative_columns(data, name):
    X, y = data
    chosen = np.flatnonzero(selection.selector(name, k=6, seed=0).fit(X, y).get_support())
    assert len(chosen) == 6
    # 12 of 100 columns carry signal (a 6-dimensional signal: the redundant ones are linear
    # combinations, so sparse models need only some): 0.7 expected by chance among 6
    assert (chosen < 12).sum() >= 3, chosen


@pytest.mark.parametrize("name", sorted(selection.SELECTORS))
def test_k_above_the_width_keeps_every_column_quietly(data, name):
    X, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        support = selection.selector(name, k=500, seed=0).fit(X[:, :30], y).get_support()
    assert support.all()


def test_names_are_kept(data):
    X, y = data
    frame = pd.DataFrame(X, columns=[f"radiomics:f{i}" for i in range(X.shape[1])])
    for name in selection.SELECTORS:
        out = selection.selector(name, k=4).fit(frame, y).get_feature_names_out()
        assert len(out) == 4 and all(n.startswith("radiomics:f") for n in out)


def mrmr_reference(X, y, k):
    """The FCQ formula, one candidate at a time."""
    relevance = np.nan_to_num(f_classif(X, y)[0])
    corr = np.abs(np.corrcoef(X, rowvar=False))
    chosen = [int(np.argmax(relevance))]
    while len(chosen) < k:
        best, best_score = None, -np.inf
        for j in range(X.shape[1]):
            if j in chosen:
                continue
            score = relevance[j] / max(np.mean([corr[j, c] for c in chosen]), 1e-12)
            if score > best_score:
                best, best_score = j, score
        chosen.append(best)
    return chosen


def test_mrmr_equals_the_formula(data):
    X, y = data
    X = X[:, :40]
    fitted = selection.MRMR(k=12).fit(X, y)
    assert list(fitted.ranking_) == mrmr_reference(X, y, 12)


def test_mrmr_avoids_copies_that_anova_takes():
    rng = np.random.default_rng(1)
    y = np.r_[np.ones(40, int), np.zeros(40, int)]
    strong = y[:, None] * 1.5 + rng.normal(size=(80, 1))
    copies = strong + 0.05 * rng.normal(size=(80, 4))  # four near-copies of one signal
    other = y[:, None] * 0.8 + rng.normal(size=(80, 3))  # three weaker, distinct signals
    X = np.hstack([strong, copies, other, rng.normal(size=(80, 20))])
    anova = selection.selector("anova", k=4).fit(X, y).get_support()
    mrmr = selection.MRMR(k=4).fit(X, y)
    assert anova[:5].sum() == 4  # all four from the same signal
    # after the strongest column, the next pick is not one of its copies
    assert mrmr.ranking_[0] < 5 and mrmr.ranking_[1] >= 5
    assert mrmr.get_support()[:5].sum() < 4


def test_mrmr_rejects_missing_values(data):
    X, y = data
    X = X.copy()
    X[3, 4] = np.nan
    with pytest.raises(ValueError):
        selection.MRMR(k=3).fit(X, y)


def test_correlation_filter_keeps_the_more_relevant_of_each_pair():
    rng = np.random.default_rng(2)
    y = np.r_[np.ones(30, int), np.zeros(30, int)]
    signal = y + rng.normal(scale=0.5, size=60)
    weaker_copy = signal + rng.normal(scale=0.2, size=60)
    X = np.column_stack([weaker_copy, signal, rng.normal(size=(60, 5))])
    kept = selection.CorrelationFilter(threshold=0.9).fit(X, y).get_support()
    assert not kept[0] and kept[1] and kept[2:].all()
    Xk = X[:, kept]
    corr = np.abs(np.corrcoef(Xk, rowvar=False))
    assert (corr[np.triu_indices_from(corr, 1)] <= 0.9).all()
    spearman = selection.CorrelationFilter(threshold=0.9, method="spearman").fit(X, y)
    assert spearman.get_support().sum() == 6


def test_selectors_tune_inside_a_pipeline(data):
    X, y = data
    pipeline = Pipeline([("select", selection.selector("anova")), ("clf", LogisticRegression())])
    space = {"select": [selection.selector(n, k=5) for n in ("anova", "mrmr", "lasso")]}
    search = GridSearchCV(pipeline, space, cv=StratifiedKFold(3), scoring="roc_auc").fit(X, y)
    assert search.best_score_ > 0.9
    assert clone(search.best_estimator_).get_params()["select"].k == 5


# ------------------------------------------------------------------ the inner-CV search space


@pytest.fixture(scope="module")
def blocks():
    return {"a": [f"a:f{i}" for i in range(10)], "b": [f"b:g{i}" for i in range(4)]}


def test_search_space_of_one_classifier(blocks):
    spaces = models.grid(
        blocks, "rf", [2, 8], selectors=("anova", "mrmr"), balancers=("smote", "class_weight")
    )
    # 2 balancers x 2 selectors x 2 k
    assert len(spaces) == 8
    weighted = [s for s in spaces if "clf__class_weight" in s]
    assert len(weighted) == 4 and all(s["balance"] == [None] for s in weighted)
    ks = {(type(s["prep__a__select"][0]).__name__, s["prep__b__select"][0].k) for s in spaces}
    assert ks == {("KBest", 2), ("KBest", 4), ("MRMR", 2), ("MRMR", 4)}
    pipeline = models.build(blocks, "rf")
    for params in ParameterGrid(spaces):
        clone(pipeline).set_params(**params)


def test_selected_model_searches_every_classifier(blocks):
    candidates = ("logreg", "knn", "xgboost")
    spaces = models.grid(
        blocks, models.SELECTED, [5], candidates=candidates, balancers=("smote", "class_weight")
    )
    chosen = {type(s["clf"][0]).__name__ for s in spaces}
    assert chosen == {"LogisticRegression", "KNeighborsClassifier", "XGBClassifier"}
    # class weights only where the classifier takes them
    weighted = {type(s["clf"][0]).__name__ for s in spaces if "clf__class_weight" in s}
    assert weighted == {"LogisticRegression"}
    pipeline = models.build(blocks, models.SELECTED)
    for params in ParameterGrid(spaces):
        clone(pipeline).set_params(**params)


def test_search_overrides_and_rejects_unknown_parameters(blocks):
    _, space = models.classifier("svm", search={"C": [5.0]})
    assert space == {"C": [5.0]}
    with pytest.raises(ValueError, match="model.search.svm has parameters \\['depth'\\]"):
        models.classifier("svm", search={"depth": [2]})


def test_the_selected_model_chooses_inside_the_inner_cv():
    X, y = make_classification(n_samples=90, n_features=30, n_informative=4, random_state=3)
    X = pd.DataFrame(X, columns=[f"a:f{i}" for i in range(30)])
    y = pd.Series(y)
    fold = pd.Series(np.arange(90) % 3)
    blocks = {"a": list(X.columns)}
    space = models.grid(blocks, models.SELECTED, [5], candidates=("logreg", "tree"))
    result = evaluate.nested_cv(models.build(blocks, models.SELECTED), space, X, y, fold)
    summary = result.summary(n_boot=100)
    assert summary["pooled"]["roc_auc"] > 0.75
    chosen = {r["best_params"]["clf"] for r in result.folds}
    assert chosen <= {"LogisticRegression", "DecisionTreeClassifier"} or all(
        c.split("(")[0] in {"LogisticRegression", "DecisionTreeClassifier"} for c in chosen
    )
