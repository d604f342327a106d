"""Class balancing inside training folds: a registry of over-samplers, a Gaussian copula
over-sampler and a fidelity measure of the synthetic rows.

Every balancer is an imbalanced-learn sampler, so inside an ``imblearn.pipeline.Pipeline`` it
acts during ``fit`` only: cross-validation resamples the training rows of each fold, and
``predict``/``score`` on a validation or test fold pass through it untouched. A synthetic
patient can therefore never be scored, and no test patient ever seeds a synthetic one.

Neighbour-based samplers (SMOTE and its variants) are wrapped so that a training fold with too
few minority patients fails with the same advice as :func:`radiotx.experiment.check_smote`
instead of a bare scikit-learn error from deep inside the search.
"""

from __future__ import annotations

import numbers

import numpy as np
from imblearn.over_sampling import (
    ADASYN,
    SMOTE,
    SMOTEN,
    SMOTENC,
    BorderlineSMOTE,
    RandomOverSampler,
)
from imblearn.over_sampling.base import BaseOverSampler
from scipy import stats
from sklearn.covariance import ledoit_wolf_shrinkage
from sklearn.neighbors import NearestNeighbors
from sklearn.utils import check_array, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions

# ---------------------------------------------------------------------------------------------
# Neighbour-based samplers with a clear error for small training folds
# ---------------------------------------------------------------------------------------------


class _NeighbourCheck:
    """Mixin: before resampling, every class to oversample must have more training rows than
    the sampler's neighbours (SMOTE interpolates towards ``k`` neighbours of the same class)."""

    _neighbours_param = "k_neighbors"

    def _fit_resample(self, X, y, **params):
        k = getattr(self, self._neighbours_param)
        if isinstance(k, numbers.Integral):  # a NearestNeighbors object is left to imblearn
            for klass, n_new in self.sampling_strategy_.items():
                count = int(np.sum(y == klass))
                if n_new > 0 and count <= k:
                    raise ValueError(
                        f"{type(self).__name__}: a training fold has only {count} patients of "
                        f"class {np.asarray(klass).item()!r} to oversample, not more than "
                        f"{self._neighbours_param} ({k}). Fix: set model.smote_neighbors below "
                        f"{count}, use fewer cv folds, add patients, or balance by "
                        "random_oversampling or class_weight"
                    )
        return super()._fit_resample(X, y, **params)


class CheckedSMOTE(_NeighbourCheck, SMOTE):
    """:class:`imblearn.over_sampling.SMOTE` with the small-fold check."""


class CheckedADASYN(_NeighbourCheck, ADASYN):
    """:class:`imblearn.over_sampling.ADASYN` with the small-fold check. ADASYN weights each
    minority row by the share of majority rows among its neighbours; a fold whose minority rows
    have no majority neighbour at all still fails inside imbalanced-learn (RuntimeError)."""

    _neighbours_param = "n_neighbors"


class CheckedBorderlineSMOTE(_NeighbourCheck, BorderlineSMOTE):
    """:class:`imblearn.over_sampling.BorderlineSMOTE` with the small-fold check. It
    interpolates only from minority rows "in danger" (most of their ``m_neighbors`` are
    majority rows); when a fold has none, it adds no rows and the fold stays imbalanced."""


class CheckedSMOTENC(_NeighbourCheck, SMOTENC):
    """:class:`imblearn.over_sampling.SMOTENC` with the small-fold check, tolerant of
    categorical columns that in-fold feature selection removed.

    Categorical columns given by name (the sampler then needs a DataFrame, see
    :func:`balancer`) that the fold's matrix lacks are ignored; when none is left, the fold
    is resampled by plain SMOTE, and when only categorical ones are left, by SMOTE-N. This
    tolerance is written here: imbalanced-learn raises for unknown names, for an empty
    categorical set and for a matrix without continuous columns.
    """

    def _present_categorical(self, X) -> list | None:
        """The named categorical columns present in ``X``; None when they are not names."""
        names = self.categorical_features
        if isinstance(names, str) or not hasattr(X, "columns"):
            return None
        names = list(names)
        if not names or not all(isinstance(name, str) for name in names):
            return None
        columns = set(X.columns)
        return [name for name in names if name in columns]

    def _validate_column_types(self, X):
        present = self._present_categorical(X)
        if present is None:
            return super()._validate_column_types(X)
        self.categorical_features_ = np.flatnonzero(X.columns.isin(present))
        self.continuous_features_ = np.flatnonzero(~X.columns.isin(present))

    def _fit_resample(self, X, y, **params):
        present = self._present_categorical(X)
        targets = {k: int(np.sum(y == k)) + n for k, n in self.sampling_strategy_.items()}
        if present == []:
            smote = CheckedSMOTE(
                sampling_strategy=targets,
                k_neighbors=self.k_neighbors,
                random_state=self.random_state,
            )
            return smote.fit_resample(np.asarray(X, dtype=float), y)
        if present is not None and len(present) == X.shape[1]:
            # only categorical columns left after selection: SMOTE-N (nominal only)
            smoten = SMOTEN(
                sampling_strategy=targets,
                k_neighbors=self.k_neighbors,
                random_state=self.random_state,
            )
            return smoten.fit_resample(X, y)
        return super()._fit_resample(X, y, **params)


# ---------------------------------------------------------------------------------------------
# Gaussian copula over-sampler
# ---------------------------------------------------------------------------------------------


class GaussianCopulaSampler(BaseOverSampler):
    """Over-sample each class by a Gaussian copula fitted on that class's training rows only.

    Per class to oversample: each column keeps its own empirical distribution (marginal); the
    dependence between columns is a Gaussian copula, the correlation matrix of the rows' normal
    scores (``Phi^-1(rank / (n + 1))``, ties given their average rank). Synthetic rows are
    correlated standard normals mapped back through ``Phi`` and each column's inverse
    empirical CDF:

    - a continuous column interpolates linearly between its sorted values, placed at
      ``u = i / (n - 1)`` (the smallest at 0, the largest at 1), so new values lie between
      observed ones, never outside the class's observed range (tails are not extrapolated),
      and without repeating the extremes;
    - a discrete column, one with at most ``discrete_max`` distinct values of which at least
      one repeats (indicator and other coded clinical columns), takes the step form of the
      inverse CDF and returns only observed values, in their observed proportions; binary
      columns thus stay binary. The indicator columns of one variable are drawn as separate
      correlated columns, so a synthetic row may, rarely, have none or two of them set.

    The correlation matrix is shrunk towards the identity, ``(1 - s) R + s I``: every
    eigenvalue is then at least ``s``, so the matrix is full rank even when a fold has fewer
    rows of the class than columns, and every correlation is multiplied by ``1 - s``.
    ``shrinkage`` is the fixed ``s`` (default 0.05) or ``"ledoit_wolf"`` for the Ledoit-Wolf
    intensity of the normal scores. The small fixed default is deliberate: Ledoit-Wolf
    minimises the error of the whole matrix, which with about as many columns as rows is
    dominated by the many near-zero correlations, so it shrinks hard (about 0.7 on 20 rows x 20
    columns, taking a correlation of 0.97 down to about 0.35) and flattens the strong
    correlations that radiomic features do have.

    Written here because no copula library is installed (``copulas``/SDV are not dependencies);
    it is vectorised numpy/scipy. Dense, finite, numeric input only: place it after imputation.

    Attributes
    ----------
    fidelity_ : dict
        Per resampled class, :func:`fidelity` of its synthetic rows against its training rows.
    shrinkage_ : dict
        Per resampled class, the shrinkage intensity used.
    """

    _parameter_constraints: dict = {
        **BaseOverSampler._parameter_constraints,
        "shrinkage": [Interval(numbers.Real, 0, 1, closed="both"), StrOptions({"ledoit_wolf"})],
        "discrete_max": [Interval(numbers.Integral, 1, None, closed="left")],
    }

    def __init__(
        self, sampling_strategy="auto", random_state=None, *, shrinkage=0.05, discrete_max=10
    ):
        super().__init__(sampling_strategy=sampling_strategy)
        self.random_state = random_state
        self.shrinkage = shrinkage
        self.discrete_max = discrete_max

    def _fit_resample(self, X, y):
        X = check_array(X, dtype=np.float64)  # dense and finite; sparse input raises
        rng = check_random_state(self.random_state)
        X_parts, y_parts = [X], [y]
        self.fidelity_, self.shrinkage_ = {}, {}
        for klass, n_new in self.sampling_strategy_.items():
            if n_new == 0:
                continue
            rows = X[y == klass]
            if len(rows) < 2:
                raise ValueError(
                    f"GaussianCopulaSampler: a training fold has {len(rows)} patient of class "
                    f"{np.asarray(klass).item()!r}; a copula needs at least 2"
                )
            copula = _Copula(rows, self.shrinkage, self.discrete_max)
            synthetic = copula.sample(n_new, rng)
            key = np.asarray(klass).item()
            self.fidelity_[key] = fidelity(rows, synthetic)
            self.shrinkage_[key] = copula.shrinkage
            X_parts.append(synthetic)
            y_parts.append(np.full(n_new, klass, dtype=y.dtype))
        return np.vstack(X_parts), np.concatenate(y_parts)


class _Copula:
    """Empirical marginals and a shrunk normal-score correlation of one class's rows."""

    def __init__(self, rows: np.ndarray, shrinkage, discrete_max: int):
        n, p = rows.shape
        self.sorted = np.sort(rows, axis=0)
        n_unique = 1 + np.count_nonzero(np.diff(self.sorted, axis=0), axis=0)
        self.discrete = n_unique <= min(discrete_max, n - 1)
        varying = n_unique > 1  # a constant column has no normal scores; it stays constant
        scores = stats.norm.ppf(stats.rankdata(rows[:, varying], axis=0) / (n + 1))
        scores = (scores - scores.mean(axis=0)) / scores.std(axis=0)
        if shrinkage == "ledoit_wolf":  # no correlation to shrink with fewer than 2 columns
            lw = varying.sum() > 1
            shrinkage = ledoit_wolf_shrinkage(scores, assume_centered=True) if lw else 0.0
        self.shrinkage = float(shrinkage)
        corr = np.eye(p)
        corr[np.ix_(varying, varying)] = (1 - self.shrinkage) * (scores.T @ scores) / n
        corr[np.diag_indices(p)] = 1.0
        # A symmetric square root instead of Cholesky: it also copes with a singular matrix
        # (shrinkage 0 and fewer rows than columns).
        eigenvalues, eigenvectors = np.linalg.eigh(corr)
        self.root = eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))

    def sample(self, n_new: int, rng: np.random.RandomState) -> np.ndarray:
        n, p = self.sorted.shape
        u = stats.norm.cdf(rng.standard_normal((n_new, p)) @ self.root.T)
        # Continuous: linear interpolation of the order statistics placed at i / (n - 1).
        position = u * (n - 1)
        low = np.minimum(np.floor(position).astype(int), n - 2)
        frac = position - low
        below = np.take_along_axis(self.sorted, low, axis=0)
        above = np.take_along_axis(self.sorted, low + 1, axis=0)
        continuous = below + frac * (above - below)
        # Discrete: the step inverse CDF, the smallest observed value with F(value) >= u.
        step = np.clip(np.ceil(u * n).astype(int) - 1, 0, n - 1)
        discrete = np.take_along_axis(self.sorted, step, axis=0)
        return np.where(self.discrete, discrete, continuous)


# ---------------------------------------------------------------------------------------------
# Fidelity of synthetic rows
# ---------------------------------------------------------------------------------------------


def fidelity(real, synthetic) -> dict:
    """How closely ``synthetic`` rows resemble the ``real`` rows they were made from.

    - ``ks``: the two-sample Kolmogorov-Smirnov statistic of each column, averaged over
      columns (0: identical marginals, 1: disjoint).
    - ``correlation_diff``: the mean absolute difference between the real and synthetic
      Pearson correlations, over the off-diagonal pairs of columns that vary in both (NaN
      with fewer than two such columns).
    - ``nn_ratio``: the median distance from a synthetic row to its nearest real row, over
      the median distance from a real row to its nearest other real row. Distances are
      Euclidean on columns scaled by the real rows' standard deviation (columns constant in
      the real rows are left out). About 1: synthetic rows sit among the real ones like
      another real patient would; near 0: copies or near-copies of real patients
      (memorisation); well above 1: rows off the real data. NaN when most real rows have an
      exact duplicate (the denominator is then 0).

    Also ``n_real`` and ``n_synthetic``. Plain floats and ints, ready for a JSON log.
    """
    real = check_array(real, dtype=np.float64)
    synthetic = check_array(synthetic, dtype=np.float64)
    if real.shape[1] != synthetic.shape[1]:
        raise ValueError(f"real has {real.shape[1]} columns, synthetic {synthetic.shape[1]}")
    if len(real) < 2:
        raise ValueError("fidelity needs at least 2 real rows")
    return {
        "ks": float(np.mean(_ks_statistic(real, synthetic))),
        "correlation_diff": _correlation_diff(real, synthetic),
        "nn_ratio": _nn_ratio(real, synthetic),
        "n_real": int(len(real)),
        "n_synthetic": int(len(synthetic)),
    }


def _ks_statistic(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Two-sample KS statistic of every column at once. Written here because
    ``scipy.stats.ks_2samp(axis=0)`` loops over columns and computes p-values, about 40 times
    slower on a few thousand columns; it gives the same statistic, ties included."""
    pooled = np.vstack([a, b])
    order = np.argsort(pooled, axis=0, kind="stable")
    values = np.take_along_axis(pooled, order, axis=0)
    # Walking up the pooled sorted values, the ECDF difference moves by 1/n_a or -1/n_b.
    gap = np.cumsum(np.where(order < len(a), 1.0 / len(a), -1.0 / len(b)), axis=0)
    # Within a run of tied values only its end is a point where both ECDFs are defined.
    run_end = np.ones(values.shape, dtype=bool)
    run_end[:-1] = values[1:] != values[:-1]
    return np.max(np.abs(np.where(run_end, gap, 0.0)), axis=0)


def _correlation_diff(real: np.ndarray, synthetic: np.ndarray) -> float:
    varying = (np.ptp(real, axis=0) > 0) & (np.ptp(synthetic, axis=0) > 0)
    if varying.sum() < 2:
        return float("nan")
    difference = np.corrcoef(real[:, varying], rowvar=False) - np.corrcoef(
        synthetic[:, varying], rowvar=False
    )
    off_diagonal = ~np.eye(len(difference), dtype=bool)
    return float(np.mean(np.abs(difference[off_diagonal])))


def _nn_ratio(real: np.ndarray, synthetic: np.ndarray) -> float:
    scale = real.std(axis=0)
    keep = scale > 0
    if not keep.any():
        return float("nan")
    real, synthetic = real[:, keep] / scale[keep], synthetic[:, keep] / scale[keep]
    neighbours = NearestNeighbors(n_neighbors=2).fit(real)
    among_real = np.median(neighbours.kneighbors(real)[0][:, 1])  # column 0 is the row itself
    to_real = np.median(neighbours.kneighbors(synthetic, n_neighbors=1)[0][:, 0])
    return float(to_real / among_real) if among_real > 0 else float("nan")


# ---------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------


def _none(seed, k_neighbors, categorical):
    return None


def _random_oversampling(seed, k_neighbors, categorical):
    return RandomOverSampler(random_state=seed)


def _smote(seed, k_neighbors, categorical):
    return CheckedSMOTE(k_neighbors=k_neighbors, random_state=seed)


def _adasyn(seed, k_neighbors, categorical):
    return CheckedADASYN(n_neighbors=k_neighbors, random_state=seed)


def _borderline_smote(seed, k_neighbors, categorical):
    return CheckedBorderlineSMOTE(k_neighbors=k_neighbors, random_state=seed)


def _smotenc(seed, k_neighbors, categorical):
    if categorical is None or (not isinstance(categorical, str) and len(categorical) == 0):
        raise ValueError(
            "smotenc needs categorical=: the columns (indices or names) of the categorical "
            "clinical variables, e.g. their one-hot indicator columns"
        )
    features = categorical if isinstance(categorical, str) else list(categorical)
    return CheckedSMOTENC(features, k_neighbors=k_neighbors, random_state=seed)


def _gaussian_copula(seed, k_neighbors, categorical):
    return GaussianCopulaSampler(random_state=seed)


BALANCERS = {
    "none": _none,
    "random_oversampling": _random_oversampling,
    "smote": _smote,
    "adasyn": _adasyn,
    "borderline_smote": _borderline_smote,
    "smotenc": _smotenc,
    "gaussian_copula": _gaussian_copula,
    "class_weight": _none,  # no resampling; see uses_class_weight
}


def balancer(name: str, *, seed: int, k_neighbors: int = 3, categorical=None):
    """An unfitted sampler for the ``balance`` step of an imblearn Pipeline, or None.

    None (for ``none`` and ``class_weight``) is a valid pipeline step that does nothing.
    ``k_neighbors`` (config ``model.smote_neighbors``) is the number of same-class neighbours
    of the SMOTE variants (``n_neighbors`` of ADASYN); each must stay below the smallest
    minority count of a training fold, or fitting raises a ValueError that says so.

    ``categorical`` (``smotenc`` only, required there) lists the categorical columns of the
    matrix the sampler receives, i.e. after the steps before it, not of the raw design matrix:

    - integer positions, when the column order before the sampler is fixed (no feature
      selection in between), or a boolean mask;
    - column names, when the steps before it output pandas (``set_output(transform="pandas")``);
      the only form that survives in-fold feature selection: names a fold dropped are ignored,
      and a fold left without any is resampled by plain SMOTE.

    For one-hot clinical variables, list every indicator column; each is then resampled as
    its own two-level variable (the neighbours' most frequent level), so it keeps its observed
    values, even after scaling. The indicators of one variable are voted on separately, so a
    few percent of synthetic rows can have none (or two) of them set; a variable passed as one
    integer-coded column instead keeps exactly one level per synthetic row.
    """
    if name not in BALANCERS:
        raise ValueError(f"unknown balancer {name!r}; choose from {sorted(BALANCERS)}")
    return BALANCERS[name](seed, k_neighbors, categorical)


def uses_class_weight(name: str) -> bool:
    """Whether balancing ``name`` is done by the classifier instead of a sampler.

    The contract: when True, :func:`balancer` returns None and the caller must build the
    classifier with ``class_weight="balanced"`` (LogisticRegression, SVC and
    RandomForestClassifier accept it; XGBClassifier does not and needs ``scale_pos_weight``,
    negatives over positives of the training rows, instead). Weights are then computed from
    each training fold's labels when the classifier is fitted, so they too stay in-fold.
    """
    if name not in BALANCERS:
        raise ValueError(f"unknown balancer {name!r}; choose from {sorted(BALANCERS)}")
    return name == "class_weight"
