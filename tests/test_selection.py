"""Feature selectors of :mod:`radiotx.selection` on radiomics-like synthetic data: what they
keep, the mRMR formula against a loop over candidates, and their scikit-learn manners."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from imblearn.over_sampling import SMOTE
from imblearn.pipeline import Pipeline
from scipy.stats import f_oneway, hypergeom, rankdata
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, ParameterGrid, StratifiedKFold
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from radiotx import selection

N_PATIENTS, N_FEATURES, N_BLOCK = 80, 300, 20
NAMES = sorted({**selection.SELECTORS, **selection.FILTERS})


def cohort(seed: int, n_classes: int = 2):
    """80 patients x 300 standardised features, columns shuffled. Signal: 8 informative
    columns, 8 linear combinations of them, and a block of 20 near-copies (pairwise
    r > 0.9) of one outcome-related latent, like the many shape and intensity features that
    all measure tumour size. The rest is noise. Returns X, y, and the positions of the
    signal columns and of the block."""
    X, y = make_classification(
        n_samples=N_PATIENTS, n_features=N_FEATURES - N_BLOCK, n_informative=8, n_redundant=8,
        n_classes=n_classes, n_clusters_per_class=1, class_sep=1.5, shuffle=False,
        random_state=seed,
    )  # fmt: skip
    rng = np.random.default_rng(seed)
    size = 2 * (y == 1) + rng.normal(size=N_PATIENTS)
    block = size[:, None] + 0.25 * rng.normal(size=(N_PATIENTS, N_BLOCK))
    X = np.hstack([X[:, :16], block, X[:, 16:]])
    order = rng.permutation(N_FEATURES)  # so that column order favours nothing
    position = np.argsort(order)  # where each original column went
    return StandardScaler().fit_transform(X[:, order]), y, position[: 16 + N_BLOCK], position[16:36]


@pytest.fixture(scope="module")
def cohorts():
    return {seed: cohort(seed) for seed in (0, 1, 2)}


@pytest.fixture(scope="module")
def data(cohorts):
    return cohorts[1]


def chance_p(chosen, signal, n_features=N_FEATURES) -> float:
    """P(at least this many signal columns among the chosen) for a random choice."""
    hits = np.isin(chosen, signal).sum()
    return hypergeom.sf(hits - 1, n_features, len(signal), len(chosen))


# ---------------------------------------------------------------------- what they keep


@pytest.mark.parametrize("name", sorted(selection.SELECTORS))
def test_selectors_keep_signal_far_above_chance(cohorts, name):
    hits, p_values = [], []
    for X, y, signal, _ in cohorts.values():
        chosen = np.flatnonzero(selection.selector(name, k=10, seed=0).fit(X, y).get_support())
        assert len(chosen) == 10
        hits.append(np.isin(chosen, signal).sum())
        p_values.append(chance_p(chosen, signal))
    # 36 of 300 columns carry signal: 1.2 of 10 expected by chance, 3.6 over three cohorts
    assert max(p_values) < 0.05 and sum(hits) >= 15, hits


@pytest.mark.parametrize("name", ["anova", "lasso", "mrmr", "ridge", "lasso_regression"])
def test_multiclass_labels(name):
    X, y, signal, _ = cohort(seed=0, n_classes=3)
    fitted = selection.selector(name, k=10, seed=0).fit(X, y)
    assert chance_p(np.flatnonzero(fitted.get_support()), signal) < 1e-3


def test_lasso_ranks_by_the_largest_coefficient_over_classes():
    X, y, _, _ = cohort(seed=0, n_classes=3)
    fitted = selection.selector("lasso", k=10, seed=0).fit(X, y)
    coef = np.vstack([model.coef_ for model in fitted.estimator_.estimators_])
    assert coef.shape == (3, N_FEATURES)
    top = np.argsort(-np.abs(coef).max(axis=0), kind="stable")[:10]
    assert set(np.flatnonzero(fitted.get_support())) == set(top)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_mrmr_takes_fewer_copies_than_anova(n_classes):
    for seed in range(4):
        X, y, _, block = cohort(seed, n_classes)
        anova = np.flatnonzero(selection.selector("anova", k=10).fit(X, y).get_support())
        mrmr = selection.MRMR(k=10).fit(X, y).ranking_
        # F / mean |r| divides a near-copy's F by about 0.95 only: a block much more
        # relevant than everything else still gives several copies, but fewer
        assert np.isin(mrmr, block).sum() < np.isin(anova, block).sum(), seed


def test_correlation_filter_leaves_no_correlated_pair(data):
    X, y, _, block = data
    for method in ("pearson", "spearman"):
        kept = selection.CorrelationFilter(threshold=0.8, method=method).fit(X, y).get_support()
        values = X[:, kept] if method == "pearson" else rankdata(X[:, kept], axis=0)
        corr = np.abs(np.corrcoef(values, rowvar=False))
        assert corr[np.triu_indices_from(corr, 1)].max() <= 0.8
        assert kept[block].sum() == 1  # one representative of the size block
        assert kept.sum() > N_FEATURES - N_BLOCK - 5  # noise columns are not correlated


def test_correlation_filter_keeps_the_more_relevant_of_a_pair():
    rng = np.random.default_rng(2)
    y = np.repeat([0, 1], 30)
    signal = y + rng.normal(scale=0.5, size=60)
    # noise without class effect and orthogonal to the signal's within-class part: the
    # copy has the same between-class and more within-class variance, so a smaller F
    within = signal - np.where(y == 1, signal[y == 1].mean(), signal[y == 0].mean())
    noise = rng.normal(size=60)
    noise -= np.where(y == 1, noise[y == 1].mean(), noise[y == 0].mean())
    noise -= (noise @ within) / (within @ within) * within
    weaker_copy = signal + 0.2 * noise
    X = np.column_stack([weaker_copy, rng.normal(size=(60, 3)), signal])
    kept = selection.CorrelationFilter(threshold=0.9).fit(X, y).get_support()
    assert kept.tolist() == [False, True, True, True, True]
    # without labels, the one with the larger variance stays
    X[:, 0] *= 3
    kept = selection.CorrelationFilter(threshold=0.9).fit(X).get_support()
    assert kept.tolist() == [True, True, True, True, False]


# ------------------------------------------------------------------ mRMR, the formula


def mrmr_reference(X, y, k, redundancy="pearson"):
    """The FCQ formula one candidate at a time: F by scipy's one-way ANOVA (0 for a constant
    column), mean of max(|r|, 0.001) over the chosen features, ties to the first column."""
    values = rankdata(X, axis=0) if redundancy == "spearman" else X
    constant = [np.ptp(X[:, j]) == 0 for j in range(X.shape[1])]
    relevance = [
        0.0 if constant[j] else f_oneway(*(X[y == c, j] for c in np.unique(y))).statistic
        for j in range(X.shape[1])
    ]

    def r(a, b):
        return 0.0 if constant[a] or constant[b] else abs(np.corrcoef(values[:, [a, b]].T)[0, 1])

    chosen = []
    while len(chosen) < k:
        scores = {}
        for j in range(X.shape[1]):
            if j not in chosen:
                floored = [max(r(j, s), selection.REDUNDANCY_FLOOR) for s in chosen]
                scores[j] = relevance[j] / np.mean(floored) if chosen else relevance[j]
        best = max(scores.values())
        chosen.append(min(j for j, score in scores.items() if score >= best * (1 - 1e-10)))
    return chosen


@pytest.mark.parametrize("redundancy", ["pearson", "spearman"])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_mrmr_equals_the_formula(redundancy, n_classes):
    X, y = make_classification(
        n_samples=40, n_features=20, n_informative=4, n_redundant=4, n_classes=n_classes,
        n_clusters_per_class=1, random_state=n_classes,
    )  # fmt: skip
    # an exact copy (a tie: the first column wins), a constant, a near copy
    X = np.column_stack([X, X[:, 5], np.full(40, 0.1), X[:, 0] + 0.1 * X[:, 1]])
    fitted = selection.MRMR(k=23, redundancy=redundancy).fit(X, y)
    assert fitted.ranking_.tolist() == mrmr_reference(X, y, 23, redundancy)
    assert fitted.ranking_[-1] == 21  # constant: last
    assert fitted.ranking_.tolist().index(5) < fitted.ranking_.tolist().index(20)


def test_mrmr_on_a_radiomics_sized_block():
    X, y = make_classification(n_samples=100, n_features=3000, n_informative=20, random_state=0)
    fitted = selection.MRMR(k=50).fit(X, y)  # timings: tests/benchmarks/mrmr.py
    assert len(set(fitted.ranking_)) == 50 and fitted.scores_.shape == (50,)


def test_mrmr_never_prefers_a_constant_column():
    X, y, signal, _ = cohort(seed=1)
    X = np.column_stack([np.zeros(N_PATIENTS), X[:, signal[:3]]])
    assert selection.MRMR(k=4).fit(X, y).ranking_.tolist()[-1] == 0


def test_missing_values_are_rejected(data):
    X, y, _, _ = data
    X = X.copy()
    X[3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        selection.MRMR(k=3).fit(X, y)
    with pytest.raises(ValueError, match="NaN"):
        selection.CorrelationFilter().fit(X, y)


def test_invalid_parameters_are_rejected(data):
    X, y, _, _ = data
    with pytest.raises(ValueError, match="relevance"):
        selection.MRMR(relevance="mi").fit(X, y)
    with pytest.raises(ValueError, match="kendall"):
        selection.CorrelationFilter(method="kendall").fit(X, y)
    with pytest.raises(ValueError, match="k == 0"):
        selection.MRMR(k=0).fit(X, y)


# ----------------------------------------------------------- scikit-learn manners


@pytest.mark.parametrize("name", NAMES)
def test_names_are_kept(data, name):
    X, y, _, _ = data
    frame = pd.DataFrame(X, columns=[f"radiomics:f{i}" for i in range(N_FEATURES)])
    fitted = selection.selector(name, k=5).fit(frame, y)
    names = fitted.get_feature_names_out()
    assert list(names) == list(frame.columns[fitted.get_support()])
    out = fitted.set_output(transform="pandas").transform(frame)
    assert list(out.columns) == list(names)


@pytest.mark.parametrize("name", sorted(selection.SELECTORS))
def test_k_above_the_width_keeps_every_column_quietly(data, name):
    X, y, _, _ = data
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fitted = selection.selector(name, k=500).fit(X[:, :30], y)
    assert fitted.get_support().all() and fitted.k == 500


@pytest.mark.parametrize("name", NAMES)
def test_clone_refits_identically(data, name):
    X, y, _, _ = data
    original = selection.selector(name, k=8, seed=3)
    copy = clone(original)
    assert copy.get_params().keys() == original.get_params().keys()
    np.testing.assert_array_equal(original.fit(X, y).get_support(), copy.fit(X, y).get_support())


@pytest.mark.parametrize("name", NAMES)
def test_grids_name_parameters_of_their_selector(name):
    space = selection.grid(name)
    assert "k" not in space
    for params in ParameterGrid(space):
        selection.selector(name).set_params(**params)


def test_unknown_names_are_rejected():
    with pytest.raises(ValueError, match="unknown selector 'boruta'"):
        selection.selector("boruta")
    with pytest.raises(ValueError, match="unknown selector"):
        selection.grid("boruta")


def test_selectors_tune_inside_an_imblearn_pipeline(data):
    X, y, _, _ = data
    pipeline = Pipeline(
        [
            ("select", selection.selector("anova")),
            ("balance", SMOTE(k_neighbors=3, random_state=0)),
            ("clf", LogisticRegression(C=0.1)),
        ]
    )
    prefixed = {f"select__{key}": values for key, values in selection.grid("lasso").items()}
    space = [
        {"select": [selection.selector("lasso", k=10)], **prefixed},
        {"select": [selection.selector(name, k=10) for name in ("anova", "mrmr")]},
        {"select": [selection.selector("correlation")]},
    ]
    search = GridSearchCV(pipeline, space, cv=StratifiedKFold(3), scoring="roc_auc").fit(X, y)
    assert len(search.cv_results_["params"]) == 6
    assert search.best_score_ > 0.8
    refit = clone(search.best_estimator_).fit(X, y)
    np.testing.assert_array_equal(
        refit.named_steps["select"].get_support(),
        search.best_estimator_.named_steps["select"].get_support(),
    )


@parametrize_with_checks(
    [
        selection.MRMR(k=2),
        selection.MRMR(k=2, redundancy="spearman"),
        selection.CorrelationFilter(),
        selection.selector("anova", k=2),
        selection.selector("lasso", k=2),
        selection.selector("lasso_regression", k=2),
        selection.selector("ridge", k=2),
    ]
)
def test_scikit_learn_conventions(estimator, check):
    check(estimator)
