"""The inner CV's pick among its candidates: the best, or the simplest within one
standard error of the best (radiotx.choice)."""

import numpy as np
import pandas as pd
import pytest
from imblearn.over_sampling import SMOTE
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_selection import SelectKBest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import SVC
from test_evaluate import informative  # noqa: F401  (the fixture)

from radiotx import choice, evaluate, models


def candidate(k=10, clf=None, C=None, balance=None):
    params = {
        "prep__a__select": SelectKBest(k=k),
        "clf": LogisticRegression() if clf is None else clf,
    }
    if C is not None:
        params["clf__C"] = C
    params["balance"] = balance
    return params


def test_simpler_candidates_sort_first():
    order = [
        candidate(k=5, C=0.01),
        candidate(k=5, C=1.0),
        candidate(k=5, C=1.0, balance=SMOTE()),
        candidate(k=5, clf=SVC(kernel="linear"), C=0.01),
        candidate(k=5, clf=SVC(), C=0.01),
        candidate(k=5, clf=RandomForestClassifier()),
        candidate(k=10, C=0.01),
        candidate(k=30, C=0.01),
    ]
    keys = [choice.complexity(params) for params in order]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    per_block = {"fusion__selector": {"a": SelectKBest(k=5), "b": SelectKBest(k=10)}}
    assert choice.complexity(per_block)[0] == 15  # a fusion's selectors per block add up


def test_one_standard_error_rule_takes_the_simplest_indistinguishable_candidate():
    params = [candidate(k=30), candidate(k=10), candidate(k=5), candidate(k=5, C=10.0)]
    mean = np.array([0.80, 0.78, 0.70, 0.79])
    se = np.array([0.03, 0.02, 0.02, 0.02])
    rows = np.arange(4)
    assert choice.pick(rows, mean, se, params, "best") == 0
    assert choice.pick(rows, mean, se, params, "one_se") == 3  # 0.79 >= 0.80 - 0.03, k=5
    assert choice.pick(np.array([0, 1]), mean, se, params, "one_se") == 1  # within rows
    with pytest.raises(ValueError, match="one_se"):
        choice.pick(rows, mean, se, params, "simplest")


def test_one_se_simplifies_within_the_best_fusion_strategy_only():
    early, single = object(), object()
    params = [
        {"fusion": early, **candidate(k=15)},
        {"fusion": early, **candidate(k=10)},
        {"fusion": single, **candidate(k=5)},
    ]
    mean = np.array([0.85, 0.83, 0.84])
    se = np.array([0.04, 0.04, 0.04])
    # the single-block strategy is within one SE and has the fewest features, but the
    # strategy is chosen by score: the rule simplifies within early fusion
    assert choice.pick(np.arange(3), mean, se, params, "one_se") == 1
    assert choice.pick(np.array([2]), mean, se, params, "one_se") == 2


def test_one_se_search_picks_within_one_standard_error_and_shared_equals_separate(
    informative,  # noqa: F811
):
    X, y, fold, blocks = informative
    train = (fold != 0).to_numpy()
    pipeline = models.build(blocks, models.SELECTED, seed=0)
    space = models.grid(blocks, models.SELECTED, [5, 10], seed=0, candidates=("logreg", "knn"))
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    search = evaluate.tune(pipeline, space, X[train], y[train], cv, rule="one_se")
    results = pd.DataFrame(search.cv_results_)
    best = results["mean_test_score"].idxmax()
    bar = results.loc[best, "mean_test_score"] - results.loc[best, "std_test_score"] / np.sqrt(3)
    picked = search.best_index_
    assert results.loc[picked, "mean_test_score"] >= bar
    eligible = results.index[results["mean_test_score"] >= bar]
    simplest = min(choice.complexity(results.loc[i, "params"]) for i in eligible)
    assert choice.complexity(results.loc[picked, "params"]) == simplest
    shared = evaluate.tune_each(
        pipeline, {"selected": space}, X[train], y[train], cv, rule="one_se"
    )["selected"]
    assert evaluate.plain(shared.params) == evaluate.plain(search.best_params_)
    kwargs = dict(inner_splits=3, seed=0, union=models.SELECTED, rule="one_se")
    spaces = {
        name: models.grid(blocks, models.SELECTED, [5, 10], seed=0, candidates=(name,))
        for name in ("logreg", "knn")
    }
    a = evaluate.nested_cv_each(pipeline, spaces, X, y, fold, share=True, **kwargs)
    b = evaluate.nested_cv_each(pipeline, spaces, X, y, fold, share=False, **kwargs)
    for name, result in a.items():
        pd.testing.assert_frame_equal(result.predictions, b[name].predictions)
