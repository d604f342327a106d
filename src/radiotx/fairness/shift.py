"""Covariate shift between two sets of patients.

Every validation number assumes that the patients a model is tested on resemble the
patients it was trained on. Two acquisition sites (other scanners, protocols, sequencing
batches) or a development set and the locked hold-out set can break that assumption
quietly: a feature whose distribution differs between the sets lets a model learn the
set rather than the biology, and a performance estimate on one set no longer transfers to
the other. This module measures such shift two ways:

* :func:`feature_tests`: one two-sample test per feature (Kolmogorov-Smirnov for numeric
  features, chi-square for categorical ones) with an effect size and a Benjamini-Hochberg
  correction, to say *which* features moved;
* :func:`classifier_test`: the classifier two-sample test (Lopez-Paz & Oquab 2017), which
  asks whether a regularised classifier can tell the sets apart from all features at once,
  and so also sees shift spread thinly over many features;

and :func:`compare` runs both for one named comparison.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from scipy.stats.contingency import association
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, permutation_test_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from radiotx.errors import InputError

COLUMNS = [
    "feature",
    "test",
    "statistic",
    "effect",
    "n_a",
    "n_b",
    "p_value",
    "q_value",
    "shifted",
]
MIN_PER_SET = 3  # fewer non-missing values than this in a set and a test means nothing


def _is_numeric(column: pd.Series) -> bool:
    # Booleans are yes/no levels, not quantities.
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def _align(X: pd.DataFrame, group: pd.Series) -> tuple[pd.DataFrame, np.ndarray]:
    """The patients of ``X`` with a known set, and their set (True = A) as a bool array."""
    g = group.reindex(X.index)
    known = g.notna().to_numpy()
    return X.loc[known], g[known].astype(bool).to_numpy()


def _smd(a: np.ndarray, b: np.ndarray) -> float:
    """Standardised mean difference (A minus B) over the pooled SD; NaN when that is 0."""
    pooled_var = ((a.size - 1) * a.var(ddof=1) + (b.size - 1) * b.var(ddof=1)) / (
        a.size + b.size - 2
    )
    if not pooled_var > 0:
        return float("nan")
    return float((a.mean() - b.mean()) / np.sqrt(pooled_var))


def _numeric_row(column: pd.Series, in_a: np.ndarray) -> dict:
    a = column[in_a].dropna().to_numpy(dtype=float)
    b = column[~in_a].dropna().to_numpy(dtype=float)
    row = {"test": "ks", "n_a": a.size, "n_b": b.size}
    if min(a.size, b.size) < MIN_PER_SET or np.unique(np.concatenate([a, b])).size < 2:
        return row
    result = stats.ks_2samp(a, b)
    return row | {
        "statistic": float(result.statistic),
        "effect": _smd(a, b),
        "p_value": float(result.pvalue),
    }


def _categorical_row(column: pd.Series, in_a: np.ndarray) -> dict:
    # Missingness can itself differ between sites, so it is a level of its own; n counts
    # every patient of the set because every patient enters the table.
    row = {"test": "chi2", "n_a": int(in_a.sum()), "n_b": int((~in_a).sum())}
    observed = column.notna().to_numpy()
    if min((observed & in_a).sum(), (observed & ~in_a).sum()) < MIN_PER_SET:
        return row
    levels = column.astype(object).where(column.notna(), "<missing>").astype(str)
    table = pd.crosstab(levels.to_numpy(), in_a)
    if table.shape[0] < 2:
        return row
    result = stats.chi2_contingency(table.to_numpy())
    return row | {
        "statistic": float(result.statistic),
        # From the uncorrected statistic: Yates' correction is for the p-value only.
        "effect": float(association(table.to_numpy(), method="cramer", correction=False)),
        "p_value": float(result.pvalue),
    }


def feature_tests(X: pd.DataFrame, group: pd.Series, *, alpha: float = 0.05) -> pd.DataFrame:
    """One two-sample test per feature between set A (``group`` True) and set B (False).

    Numeric features get a Kolmogorov-Smirnov test on their non-missing values with the
    standardised mean difference as effect; other columns a chi-square test of levels by set
    with Cramér's V. Features with fewer than 3 non-missing values in a set, or a single
    value overall, are not tested (p NaN). q values are Benjamini-Hochberg over the tested
    features; ``shifted`` is q < ``alpha``. Sorted by p value, untested features last.
    """
    data, in_a = _align(X, group)
    rows = []
    for name in data.columns:
        column = data[name]
        row = _numeric_row(column, in_a) if _is_numeric(column) else _categorical_row(column, in_a)
        rows.append({"feature": name} | row)
    table = pd.DataFrame(rows, columns=COLUMNS)
    for col in ("statistic", "effect", "p_value", "q_value"):
        table[col] = table[col].astype(float)
    tested = table["p_value"].notna().to_numpy()
    if tested.any():
        table.loc[tested, "q_value"] = stats.false_discovery_control(
            table.loc[tested, "p_value"].to_numpy(), method="bh"
        )
    table["shifted"] = (table["q_value"] < alpha).fillna(False).astype(bool)
    table[["n_a", "n_b"]] = table[["n_a", "n_b"]].astype(int)
    return table.sort_values("p_value", na_position="last", kind="stable").reset_index(drop=True)


class RowSpan(TransformerMixin, BaseEstimator):
    """Features wider than the training rows (voxels, genes), projected onto the span of
    those rows. An L2-penalised linear model has its optimum in that span (a component
    orthogonal to every training row changes no training score, only the penalty), so it
    fits the same function on at most n instead of p columns: the deep crops' 13,824
    voxels become some 60 columns. Narrow data pass through."""

    def fit(self, X, y=None):
        X = validate_data(self, X, dtype=float)
        self.basis_ = None
        if X.shape[1] > X.shape[0]:
            # an orthonormal basis of the rows' span from the n x n Gram matrix (cheaper than
            # an SVD of X); directions with a negligible eigenvalue are dropped
            values, vectors = np.linalg.eigh(X @ X.T)
            keep = values > values.max() * X.shape[0] * 1e-12
            self.basis_ = X.T @ (vectors[:, keep] / np.sqrt(values[keep]))
        return self

    def transform(self, X):
        check_is_fitted(self, "basis_")
        X = validate_data(self, X, dtype=float, reset=False)
        return X if self.basis_ is None else X @ self.basis_


def classifier_test(
    X: pd.DataFrame,
    group: pd.Series,
    *,
    n_permutations: int = 99,
    folds: int = 5,
    seed: int = 42,
) -> dict:
    """Classifier two-sample test: the cross-validated AUC of a regularised logistic
    regression telling set A from set B, and its permutation p value ((C+1)/(n+1)).

    An AUC near 0.5 means the sets cannot be told apart from these features.
    """
    data, in_a = _align(X, group)
    n_a, n_b = int(in_a.sum()), int((~in_a).sum())
    if min(n_a, n_b) < 2:
        raise InputError(
            f"the classifier shift test needs at least 2 patients in each set, but set A "
            f"has {n_a} and set B has {n_b}",
            fix="compare sets with at least 2 patients each (and a group value for each)",
        )
    # Positional names: sklearn wants string feature names, the caller's may be anything.
    data = data.set_axis([f"f{i}" for i in range(data.shape[1])], axis=1)
    numeric = [c for c in data.columns if _is_numeric(data[c])]
    categorical = [c for c in data.columns if c not in numeric]
    cv = StratifiedKFold(n_splits=min(folds, n_a, n_b), shuffle=True, random_state=seed)
    if not categorical:  # all numeric (radiomics, expression): see _numeric_permutation_test
        auc, p_value = _numeric_permutation_test(
            data.astype(float).to_numpy(), np.asarray(in_a, dtype=int), cv, n_permutations, seed
        )
        return _classifier_result(auc, p_value, n_permutations, n_a, n_b, X.shape[1])
    # Cast to str so that NaN becomes a level and mixed-type columns encode cleanly.
    data[categorical] = data[categorical].astype(str)
    numeric_steps = make_pipeline(
        SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler()
    )
    preprocess = ColumnTransformer(
        [
            ("categorical", OneHotEncoder(handle_unknown="ignore"), categorical),
            ("numeric", numeric_steps, numeric),
        ]
    )
    model = Pipeline([("preprocess", preprocess), ("classify", _classifier())])
    auc, _, p_value = permutation_test_score(
        model,
        data,
        in_a.astype(int),
        cv=cv,
        n_permutations=n_permutations,
        scoring="roc_auc",
        n_jobs=1,
        random_state=seed,
    )
    return _classifier_result(auc, p_value, n_permutations, n_a, n_b, X.shape[1])


def _classifier() -> LogisticRegression:
    # Regularised: features may outnumber patients, and an overfit model would call noise shift.
    return LogisticRegression(C=0.1, max_iter=1000)


def _classifier_result(auc, p_value, n_permutations, n_a, n_b, n_features) -> dict:
    return {
        "auc": float(auc),
        "p_value": float(p_value),
        "n_permutations": int(n_permutations),
        "n_a": n_a,
        "n_b": n_b,
        "n_features": int(n_features),
    }


def _numeric_permutation_test(X, y, cv, n_permutations: int, seed: int) -> tuple[float, float]:
    """scikit-learn's ``permutation_test_score`` of the pipeline median imputation ->
    scaling -> :class:`RowSpan` -> logistic regression with ROC AUC, step for step (the
    same splits, permutations, fits and scores, so the same numbers), without the
    pipeline, scorer and validation machinery around each of its (permutations + 1) x
    folds fits, which cost three times the fits on a cohort's few patients. The
    imputation is left out where no value is missing (it would change nothing); wide
    blocks (voxels, genes) are fitted in the span of the training rows."""
    missing = bool(np.isnan(X).any())
    rng = check_random_state(seed)

    def cv_auc(labels: np.ndarray) -> float:
        scores = []
        for train, test in cv.split(X, labels):
            X_train, X_test = X[train], X[test]
            if missing:
                imputer = SimpleImputer(strategy="median", keep_empty_features=True)
                X_train, X_test = imputer.fit_transform(X_train), imputer.transform(X_test)
            for step in (StandardScaler(), RowSpan()):
                X_train, X_test = step.fit_transform(X_train), step.transform(X_test)
            model = _classifier().fit(X_train, labels[train])
            scores.append(roc_auc_score(labels[test], model.decision_function(X_test)))
        return float(np.mean(scores))

    observed = cv_auc(y)
    null = np.array([cv_auc(y[rng.permutation(len(y))]) for _ in range(n_permutations)])
    return observed, (np.sum(null >= observed) + 1.0) / (n_permutations + 1)


def compare(
    X: pd.DataFrame,
    group: pd.Series,
    *,
    name: str,
    alpha: float = 0.05,
    n_permutations: int = 99,
    seed: int = 42,
) -> tuple[pd.DataFrame, dict]:
    """Both shift tests for one comparison (e.g. "site A vs site B", "development vs
    hold-out"): the feature table with a leading ``comparison`` column, and the classifier
    result with ``comparison``, ``n_tested`` and ``n_shifted`` added."""
    table = feature_tests(X, group, alpha=alpha)
    table.insert(0, "comparison", name)
    summary = {"comparison": name} | classifier_test(
        X, group, n_permutations=n_permutations, seed=seed
    )
    summary["n_tested"] = int(table["p_value"].notna().sum())
    summary["n_shifted"] = int(table["shifted"].sum())
    return table, summary
