"""Feature selectors, fitted inside the training folds like every other pipeline step.

Every selector is a scikit-learn transformer with ``get_support`` and
``get_feature_names_out`` (DataFrame column names are kept), so it sits in the ``select``
step of a modality's block and the inner CV chooses among selectors, their ``k`` and the
hyper-parameters of :func:`grid`.

Selectors keeping ``k`` features (:data:`SELECTORS`):

* ``anova``: the k largest ANOVA F statistics (:class:`KBest` around ``SelectKBest``);
* ``lasso``: the k largest |coefficients| of an L1-penalised logistic regression;
* ``lasso_regression``: the same for a Lasso regression on the 0/1 label, as is common in
  radiomics papers;
* ``ridge``: the k largest |coefficients| of a ridge classifier (nothing is zeroed: a
  multivariate ranking);
* ``mrmr``: minimum redundancy maximum relevance (:class:`MRMR`).

Filters keeping whatever passes a threshold, ``k`` aside (:data:`FILTERS`):

* ``variance``: scikit-learn's ``VarianceThreshold``;
* ``correlation``: :class:`CorrelationFilter`, which drops the less relevant feature of
  every highly correlated pair.

Asked for more features than its input has, a selector keeps them all, silently: after the
filters and per-fold steps a block may be narrower than the largest k of the grid.
:class:`KBest` and :class:`TopK` therefore build their scikit-learn selector at fit time
with ``min(k, n_features)`` (``SelectKBest`` would warn on every such fit and
``SelectFromModel`` raises); ``k`` itself stays as given, so ``clone`` and grid searches see
the parameter they set.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from scipy.stats import rankdata
from sklearn.base import BaseEstimator, is_regressor
from sklearn.feature_selection import (
    SelectFromModel,
    SelectKBest,
    SelectorMixin,
    VarianceThreshold,
    f_classif,
)
from sklearn.linear_model import Lasso, LogisticRegression, RidgeClassifier
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_scalar
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

CORRELATIONS = ("pearson", "spearman")

# Each |r| in an mRMR redundancy is at least this (as in mrmr-selection), so that a column
# uncorrelated with the chosen ones gets a large but finite score.
REDUNDANCY_FLOOR = 1e-3

# Scores within this relative distance of the best count as tied (then column order
# decides): copies of one column may differ in the last bits of their correlations.
_TIE_RTOL = 1e-10

# A column whose centred norm is below this fraction of sqrt(n) * max|x| is constant up to
# round-off (a column of 0.1s does not centre to exact zeros).
_CONSTANT_RTOL = 1e-10

# Correlation rows computed per matrix product by CorrelationFilter: memory b x p, not p x p.
_ROWS_PER_PRODUCT = 256


def _n_kept(k, n_features: int) -> int:
    """``k`` capped at the number of features; ``"all"`` keeps every feature."""
    if isinstance(k, str) and k == "all":
        return n_features
    check_scalar(k, "k", Integral, min_val=1)
    return min(int(k), n_features)


def _unit_columns(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Columns centred and scaled to unit norm, so that ``z.T @ z`` is the Pearson
    correlation matrix, and which columns are constant (those become 0: no correlation
    with anything)."""
    centred = X - X.mean(axis=0)
    norm = np.linalg.norm(centred, axis=0)
    scale = np.sqrt(X.shape[0]) * np.abs(X).max(axis=0, initial=0.0)
    constant = norm <= _CONSTANT_RTOL * scale
    z = np.divide(centred, norm, out=np.zeros_like(centred), where=~constant)
    return z, constant


def _correlation_space(X: np.ndarray, method: str) -> np.ndarray:
    """``X`` itself for Pearson, its column ranks (ties averaged) for Spearman."""
    if method not in CORRELATIONS:
        raise ValueError(f"unknown correlation {method!r}; choose from {list(CORRELATIONS)}")
    return rankdata(X, axis=0) if method == "spearman" else X


def _f_statistic(X: np.ndarray, y, constant: np.ndarray) -> np.ndarray:
    """ANOVA F of every column; 0 for constant columns (f_classif would divide round-off
    by round-off there). A column without variance within classes gets +inf."""
    relevance = np.zeros(X.shape[1])
    if (~constant).any():
        with np.errstate(divide="ignore", invalid="ignore"):
            relevance[~constant] = f_classif(X[:, ~constant], y)[0]
    return np.nan_to_num(relevance, nan=0.0, posinf=np.inf)


def _first_best(score: np.ndarray) -> int:
    """Index of the largest score, the first column among (near-)ties; scores are >= 0."""
    return int(np.argmax(score >= score.max() * (1.0 - _TIE_RTOL)))


class OvrCoef:
    """Importance getter: the coefficients of a fitted one-vs-rest model, one row per binary
    problem. A class rather than a function so that a selector's repr, which is logged and
    compared, shows no memory address."""

    def __call__(self, model) -> np.ndarray:
        return np.vstack([estimator.coef_ for estimator in model.estimators_])

    def __repr__(self) -> str:
        return "OvrCoef()"


# --------------------------------------------------------------------------- k best


class KBest(SelectorMixin, BaseEstimator):
    """``SelectKBest(score_func, k)`` keeping every feature when there are fewer than ``k``.

    Attributes: ``scores_`` and ``pvalues_`` of ``score_func``; ``selector_``, the fitted
    ``SelectKBest``.
    """

    def __init__(self, score_func=f_classif, k=20):
        self.score_func = score_func
        self.k = k

    def fit(self, X, y):
        X, y = validate_data(self, X, y)
        self.selector_ = SelectKBest(self.score_func, k=_n_kept(self.k, X.shape[1])).fit(X, y)
        self.scores_ = self.selector_.scores_
        self.pvalues_ = self.selector_.pvalues_
        return self

    def _get_support_mask(self):
        check_is_fitted(self, "selector_")
        return self.selector_.get_support()


class TopK(SelectorMixin, BaseEstimator):
    """The ``k`` features with the largest |coefficient| of ``estimator`` (all of them when
    there are fewer).

    ``SelectFromModel(estimator, threshold=-inf, max_features=k)``: every feature passes a
    threshold of -inf, so ``max_features`` alone decides and the selector is a ranking by
    |coef|. With several classes a feature's importance is its largest |coef| over the
    classes (``norm_order=inf``).

    An L1 model may zero all but fewer than k coefficients (on 80 patients x 300 features
    the default lasso and lasso_regression keep 12 to 20): the remaining places then go to
    zero-coefficient columns in column order (SelectFromModel's stable sort), which is
    arbitrary. The grids of :func:`grid` include milder penalties for that reason; the inner CV,
    choosing the penalty and k together, can avoid such choices.

    A regressor (``Lasso``) is fitted to the 0/1 indicator of the class: one column with
    two classes, one per class (fitted independently) with more. ``importance_getter`` is
    passed to ``SelectFromModel`` (a callable for meta-estimators without ``coef_``).

    Attributes: ``estimator_`` (the fitted model) and ``selector_`` (the fitted
    ``SelectFromModel``).
    """

    def __init__(self, estimator, k=20, importance_getter="auto"):
        self.estimator = estimator
        self.k = k
        self.importance_getter = importance_getter

    def fit(self, X, y):
        X, y = validate_data(self, X, y)
        check_classification_targets(y)
        target = y
        if is_regressor(self.estimator):
            target = LabelBinarizer().fit_transform(y)
            target = target.ravel() if target.shape[1] == 1 else target
        self.selector_ = SelectFromModel(
            self.estimator,
            threshold=-np.inf,
            max_features=_n_kept(self.k, X.shape[1]),
            norm_order=np.inf,
            importance_getter=self.importance_getter,
        ).fit(X, target)
        self.estimator_ = self.selector_.estimator_
        return self

    def _get_support_mask(self):
        check_is_fitted(self, "selector_")
        return self.selector_.get_support()


# ----------------------------------------------------------------------------- mRMR


class MRMR(SelectorMixin, BaseEstimator):
    """Minimum-redundancy maximum-relevance selection of ``k`` features.

    The F-test correlation quotient ("FCQ") of Ding & Peng (2005), as in the
    ``mrmr-selection`` package: greedily, the first feature has the largest ANOVA F
    statistic; each next one maximises ``F(j) / mean_s max(|r(j, s)|, 0.001)`` over the
    features ``s`` already chosen, ``r`` the Pearson (or, with ``redundancy="spearman"``,
    Spearman) correlation. Unlike that package, k is not cut to the features with F > 0:
    constant columns get relevance 0 and therefore come after every informative one.
    Ties (to round-off) go to the first column.

    The quotient favours columns uncorrelated with those already chosen: once the strong
    signals are taken it can prefer a weak independent column to a strong redundant one,
    which is the point, but also weakly relevant noise; k is tuned by the inner CV.

    Vectorised because the greedy loop would otherwise cost k x p correlations in Python:
    the columns are standardised once, F is computed once, and each step adds the
    correlations of every column with the newly chosen one (one matrix-vector product) to
    a running sum, so 3,000 features x 100 patients with k = 50 take milliseconds.

    Input must be finite: the selector sits after imputation, and a missing value would
    make the correlations meaningless.

    Parameters
    ----------
    k : int or "all"
        Number of features to keep (every feature when there are fewer).
    relevance : {"f"}
        ANOVA F statistic (``f_classif``), for two or more classes.
    redundancy : {"pearson", "spearman"}

    Attributes
    ----------
    ranking_ : ndarray of int
        Chosen column indices in the order they were chosen.
    scores_ : ndarray of float
        The quotient with which each feature of ``ranking_`` was chosen (the first one's
        is its F statistic).
    relevance_ : ndarray of float
        F statistic of every input column.
    """

    def __init__(self, k=20, relevance="f", redundancy="pearson"):
        self.k = k
        self.relevance = relevance
        self.redundancy = redundancy

    def fit(self, X, y):
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        if self.relevance != "f":
            raise ValueError(f"unknown relevance {self.relevance!r}; MRMR supports 'f'")
        z, constant = _unit_columns(_correlation_space(X, self.redundancy))
        relevance = _f_statistic(X, y, constant)
        k = _n_kept(self.k, X.shape[1])

        ranking = np.empty(k, dtype=np.intp)
        scores = np.empty(k)
        redundancy_sum = np.zeros(X.shape[1])  # sum over chosen s of max(|r(j, s)|, floor)
        candidate = np.ones(X.shape[1], dtype=bool)
        score = relevance
        for step in range(k):
            if step:
                last = ranking[step - 1]
                redundancy_sum += np.maximum(np.abs(z.T @ z[:, last]), REDUNDANCY_FLOOR)
                with np.errstate(over="ignore", invalid="ignore"):
                    score = relevance / (redundancy_sum / step)
            score = np.where(candidate, score, -np.inf)
            best = _first_best(score)
            ranking[step], scores[step] = best, score[best]
            candidate[best] = False

        self.ranking_ = ranking
        self.scores_ = scores
        self.relevance_ = relevance
        return self

    def _get_support_mask(self):
        check_is_fitted(self, "ranking_")
        mask = np.zeros(self.n_features_in_, dtype=bool)
        mask[self.ranking_] = True
        return mask


# ---------------------------------------------------------------------- correlation


class CorrelationFilter(SelectorMixin, BaseEstimator):
    """Drop redundant features: walking from the most relevant feature to the least, drop
    each one whose |correlation| with a feature already kept exceeds ``threshold``.

    Relevance is the ANOVA F statistic with the training labels, or the variance when
    ``fit`` gets no labels; ties keep column order. So of two near-copies the one more
    related to the outcome stays. ``method``: ``"pearson"`` or ``"spearman"`` (Pearson on
    column ranks). Constant columns correlate with nothing and are kept; a variance filter
    removes them.

    The walk is sequential, but each kept feature marks all its correlates at once, and the
    correlation rows come from one matrix product per 256 features in walking order: fast
    without a features x features matrix in memory (3.2 GB for 20,000 genes).

    Attributes: ``support_`` (kept columns) and ``relevance_`` (the walking order's key).
    """

    def __init__(self, threshold=0.9, method="pearson"):
        self.threshold = threshold
        self.method = method

    def fit(self, X, y=None):
        if y is None:
            X = validate_data(self, X, dtype=np.float64)
        else:
            X, y = validate_data(self, X, y, dtype=np.float64)
            check_classification_targets(y)
        check_scalar(self.threshold, "threshold", Real, min_val=0.0, max_val=1.0)
        z, constant = _unit_columns(_correlation_space(X, self.method))
        relevance = X.var(axis=0) if y is None else _f_statistic(X, y, constant)

        order = np.argsort(-relevance, kind="stable")
        keep = np.zeros(X.shape[1], dtype=bool)
        redundant = np.zeros(X.shape[1], dtype=bool)
        for start in range(0, len(order), _ROWS_PER_PRODUCT):
            rows = order[start : start + _ROWS_PER_PRODUCT]
            rows = rows[~redundant[rows]]
            corr = np.abs(z[:, rows].T @ z)
            for j, corr_j in zip(rows, corr, strict=True):
                if not redundant[j]:
                    keep[j] = True
                    redundant |= corr_j > self.threshold

        self.support_ = keep
        self.relevance_ = relevance
        return self

    def _get_support_mask(self):
        check_is_fitted(self, "support_")
        return self.support_


# ------------------------------------------------------------------------- registry


def _anova(k, seed):
    return KBest(f_classif, k=k), {}


def _lasso(k, seed):
    # liblinear fits these small L1 problems in milliseconds, a hundred times faster than
    # saga (the multinomial L1 solver), but only for two classes; one-vs-rest extends it to
    # more, and a feature then ranks by its largest |coef| over the classes. l1_ratio=1 is
    # the L1 penalty (``penalty`` is deprecated since scikit-learn 1.8).
    l1 = LogisticRegression(C=1.0, l1_ratio=1.0, solver="liblinear", random_state=seed)
    selector = TopK(OneVsRestClassifier(l1), k=k, importance_getter=OvrCoef())
    return selector, {"estimator__estimator__C": [0.5, 1.0, 5.0]}


def _lasso_regression(k, seed):
    lasso = Lasso(alpha=0.05, max_iter=10_000, random_state=seed)
    return TopK(lasso, k=k), {"estimator__alpha": [0.01, 0.02, 0.05]}


def _ridge(k, seed):
    return TopK(RidgeClassifier(alpha=10.0), k=k), {"estimator__alpha": [1.0, 10.0, 100.0]}


def _mrmr(k, seed):
    return MRMR(k=k), {}


def _variance(k, seed):
    # a variance threshold depends on the units of the data (after scaling, every
    # non-constant column has variance 1): no default search space
    return VarianceThreshold(threshold=0.0), {}


def _correlation(k, seed):
    return CorrelationFilter(threshold=0.9), {"threshold": [0.8, 0.9, 0.95]}


# name -> factory(k, seed) -> (unfitted selector, default search space)
SELECTORS = {
    "anova": _anova,
    "lasso": _lasso,
    "lasso_regression": _lasso_regression,
    "ridge": _ridge,
    "mrmr": _mrmr,
}
FILTERS = {"variance": _variance, "correlation": _correlation}  # these ignore k


def _factory(name: str):
    factories = {**SELECTORS, **FILTERS}
    if name not in factories:
        raise ValueError(f"unknown selector {name!r}; choose from {sorted(factories)}")
    return factories[name]


def selector(name: str, *, k: int = 20, seed: int = 42):
    """An unfitted selector keeping (at most) ``k`` features; filters ignore ``k``."""
    return _factory(name)(k, seed)[0]


def grid(name: str) -> dict[str, list]:
    """Default inner-CV search space of selector ``name``, keyed by its own parameter names
    (prefix them with the pipeline step, ``"select__"``). ``k`` is not part of it: callers
    choose it per block."""
    return {key: list(values) for key, values in _factory(name)(20, 42)[1].items()}
