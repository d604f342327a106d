"""Bias mitigation for a binary endpoint, wrapped around an already tuned model.

:class:`Mitigated` is itself an estimator: every mitigation (sample reweighing, group-aware
oversampling, group-specific decision thresholds) is fitted on the training rows it is given
and on nothing else. Placed inside the outer cross-validation, its effect on fairness and on
accuracy is therefore measured honestly on the outer test folds, exactly like the model it
wraps.

* ``"reweighing"`` (Kamiran & Calders 2012, with class balance): training rows are weighted
  so that within every group each class carries the same total weight.
* ``"group_oversampling"``: every (group, label) cell is randomly oversampled to the size of
  the largest cell before the model is refitted.
* ``"threshold"``: fairlearn's ``ThresholdOptimizer`` chooses group-specific (randomised)
  thresholds on out-of-fold scores of the training rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from fairlearn.postprocessing import ThresholdOptimizer
from imblearn.over_sampling import RandomOverSampler
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline as SkPipeline
from sklearn.utils.validation import check_is_fitted, has_fit_parameter

from radiotx.evaluate import scores

METHODS = ("reweighing", "group_oversampling", "threshold")


def groups_of(sensitive_features) -> np.ndarray:
    """One group label per row; several sensitive columns are combined into one label
    per combination, as fairlearn does."""
    if isinstance(sensitive_features, pd.DataFrame):
        if sensitive_features.shape[1] == 1:
            return sensitive_features.iloc[:, 0].to_numpy()
        return sensitive_features.astype(str).agg(",".join, axis=1).to_numpy()
    values = np.asarray(sensitive_features)
    if values.ndim == 2:
        if values.shape[1] == 1:
            return values[:, 0]
        return np.array([",".join(map(str, row)) for row in values])
    return values


def reweighing_weights(groups, y) -> np.ndarray:
    """Weights 1 / (K * P(y | g)), normalised to mean 1: within every group each of the K
    classes carries the same total weight, and every group keeps its size."""
    frame = pd.DataFrame({"g": groups_of(groups), "y": np.asarray(y)})
    n_classes = frame["y"].nunique()
    cell = frame.groupby(["g", "y"])["y"].transform("size").to_numpy(dtype=float)
    group = frame.groupby("g")["y"].transform("size").to_numpy(dtype=float)
    weights = group / (n_classes * cell)
    return weights / weights.mean()


def _take(data, rows: np.ndarray):
    return data.iloc[rows] if hasattr(data, "iloc") else np.asarray(data)[rows]


def oversample(X, y, groups, seed: int = 42):
    """Rows resampled with replacement so that every (group, label) cell has the size of
    the largest one; returns the resampled ``X``, ``y`` and groups (a DataFrame keeps its
    form and its, now repeated, index)."""
    groups, labels = groups_of(groups), np.asarray(y)
    strata = np.array([f"{g}|{label}" for g, label in zip(groups, labels, strict=True)])
    # resampling a row index instead of X keeps DataFrame columns, dtypes and patient ids
    rows, _ = RandomOverSampler(random_state=seed).fit_resample(
        np.arange(len(labels)).reshape(-1, 1), strata
    )
    rows = rows[:, 0]
    return _take(X, rows), _take(y, rows), groups[rows]


def _is_pipeline(estimator) -> bool:
    return isinstance(estimator, SkPipeline) and estimator.steps[-1][0] == "clf"


def applies(estimator, method: str) -> bool:
    """Whether ``method`` can mitigate ``estimator``: reweighing needs a platform pipeline
    (final step ``clf``) whose classifier takes sample weights; the others fit any model."""
    if method not in METHODS:
        raise ValueError(f"unknown mitigation {method!r}; choose from {list(METHODS)}")
    if method != "reweighing":
        return True
    return _is_pipeline(estimator) and has_fit_parameter(estimator.steps[-1][1], "sample_weight")


class _Score(ClassifierMixin, BaseEstimator):
    """Pass-through 'model' whose prediction is the score held in column 0, so that the
    threshold optimizer can be fitted on out-of-fold scores."""

    def fit(self, X, y=None):
        self.fitted_ = True
        return self

    def predict(self, X):
        return np.asarray(X, dtype=float)[:, 0]


class Mitigated(ClassifierMixin, BaseEstimator):
    """A tuned binary model refitted with a bias mitigation (one of :data:`METHODS`).

    ``constraint`` (fairlearn's name, e.g. ``"equalized_odds"``, ``"demographic_parity"``,
    ``"true_positive_rate_parity"``) is used by ``"threshold"``; ``inner_splits`` folds give
    its out-of-fold training scores. ``sensitive_features`` are aligned to the rows of X.
    """

    def __init__(
        self, estimator, method="threshold", constraint="equalized_odds", inner_splits=3, seed=42
    ):
        self.estimator = estimator
        self.method = method
        self.constraint = constraint
        self.inner_splits = inner_splits
        self.seed = seed

    def fit(self, X, y, *, sensitive_features):
        """Fit the mitigation and the model on these (training) rows only."""
        if self.method not in METHODS:
            raise ValueError(f"unknown mitigation {self.method!r}; choose from {list(METHODS)}")
        groups = groups_of(sensitive_features)
        if len(groups) != len(y):
            raise ValueError(f"{len(groups)} sensitive feature values for {len(y)} rows")
        self.classes_ = np.unique(np.asarray(y))
        self.groups_ = sorted(pd.unique(groups).tolist())
        getattr(self, f"_fit_{self.method}")(X, y, groups)
        self.applicable_ = True
        return self

    def _fit_reweighing(self, X, y, groups) -> None:
        if not applies(self.estimator, "reweighing"):
            final = self.estimator.steps[-1][1] if _is_pipeline(self.estimator) else None
            name = type(final if final is not None else self.estimator).__name__
            raise ValueError(
                f"reweighing needs a pipeline whose classifier takes sample weights; "
                f"{name} does not: use 'group_oversampling' or 'threshold'"
            )
        model = clone(self.estimator)
        # a resampler cannot carry weights along, and the weights already balance classes
        params = {"balance": None} if "balance" in model.named_steps else {}
        if "class_weight" in model.named_steps["clf"].get_params():
            params["clf__class_weight"] = None
        model.set_params(**params)
        self.weights_ = reweighing_weights(groups, y)
        self.estimator_ = model.fit(X, y, clf__sample_weight=self.weights_)

    def _fit_group_oversampling(self, X, y, groups) -> None:
        X_res, y_res, groups_res = oversample(X, y, groups, self.seed)
        self.cell_sizes_ = (
            pd.Series(np.asarray(y_res)).groupby([groups_res, np.asarray(y_res)]).size()
        )
        self.estimator_ = clone(self.estimator).fit(X_res, y_res)

    def _fit_threshold(self, X, y, groups) -> None:
        self.estimator_ = clone(self.estimator).fit(X, y)
        # thresholds chosen on scores of rows the model was trained on would be optimistic
        folds = StratifiedKFold(self.inner_splits, shuffle=True, random_state=self.seed)
        probability = hasattr(self.estimator, "predict_proba")
        method = "predict_proba" if probability else "decision_function"
        oof = cross_val_predict(clone(self.estimator), X, y, cv=folds, method=method)
        oof = oof[:, 1] if probability else oof
        self.optimizer_ = ThresholdOptimizer(
            estimator=_Score().fit(oof.reshape(-1, 1)),
            constraints=self.constraint,
            objective="balanced_accuracy_score",
            prefit=True,
            predict_method="auto",
        ).fit(oof.reshape(-1, 1), np.asarray(y).astype(int), sensitive_features=groups)
        self.threshold_ = self.optimizer_.interpolated_thresholder_.interpolation_dict

    def decision_scores(self, X, *, sensitive_features) -> np.ndarray:
        """Continuous score of the refitted model (for ROC AUC); thresholds do not change
        its ranking."""
        check_is_fitted(self)
        self._check_rows(X, sensitive_features)
        return scores(self.estimator_, X)

    def predict(self, X, *, sensitive_features) -> np.ndarray:
        """Labels; with ``"threshold"`` drawn with the group's (seeded) randomised threshold."""
        check_is_fitted(self)
        groups = self._check_rows(X, sensitive_features)
        if self.method != "threshold":
            return self.estimator_.predict(X)
        unseen = sorted(set(pd.unique(groups).tolist()) - set(self.groups_), key=str)
        if unseen:
            raise ValueError(
                f"group(s) {unseen} absent from the training rows have no fitted threshold "
                f"(training groups: {self.groups_}); merge small groups or use a different "
                "sensitive attribute"
            )
        score = scores(self.estimator_, X).reshape(-1, 1)
        labels = self.optimizer_.predict(score, sensitive_features=groups, random_state=self.seed)
        return np.asarray(labels).astype(self.classes_.dtype)

    @staticmethod
    def _check_rows(X, sensitive_features) -> np.ndarray:
        groups = groups_of(sensitive_features)
        if len(groups) != len(X):
            raise ValueError(f"{len(groups)} sensitive feature values for {len(X)} rows")
        return groups
