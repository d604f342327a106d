"""Calibration of a binary model: how far its probabilities are from observed risks, and
the recalibration map that the final model applies to new patients.

The map is learned from out-of-fold scores, never from patients a model was fitted on: a
model's probabilities on its own training patients are over-confident, and SMOTE or class
weights shift them towards the balanced prevalence on purpose. The scores are the nested
CV's when every fold gave probabilities; else the final configuration's, cross-fitted
(:func:`radiotx.experiment.calibration_scores`), since decision values of different folds'
models are on different scales.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import logit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted

_EPS = 1e-6


def linear_predictor(score, probability: bool) -> np.ndarray:
    """Log-odds of a probability (clipped away from 0 and 1), or a decision score as is."""
    score = np.asarray(score, dtype=float)
    return logit(np.clip(score, _EPS, 1 - _EPS)) if probability else score


def slope_and_intercept(y_true, probability) -> dict[str, float]:
    """Calibration slope (1 is ideal; below 1, predictions too extreme) and
    calibration-in-the-large (0 is ideal; the intercept of a logistic model with the
    predicted log-odds as offset), as TRIPOD asks them reported."""
    # statsmodels.api would import all of statsmodels: 0.4 s of every model job
    from statsmodels.genmod.families import Binomial
    from statsmodels.genmod.generalized_linear_model import GLM
    from statsmodels.tools.tools import add_constant

    y = np.asarray(y_true, dtype=float)
    lp = linear_predictor(probability, True)
    slope = GLM(y, add_constant(lp), family=Binomial()).fit()
    large = GLM(y, np.ones((len(y), 1)), family=Binomial(), offset=lp).fit()
    return {
        "calibration_slope": float(slope.params[1]),
        "calibration_intercept": float(large.params[0]),
    }


class ScoreCalibrator(ClassifierMixin, BaseEstimator):
    """Logistic recalibration (Platt scaling) of one column of scores: probabilities, whose
    log-odds it rescales (``probability=True``), or decision values."""

    def __init__(self, probability=True):
        self.probability = probability

    def fit(self, X, y):
        scores = np.asarray(X, dtype=float).reshape(len(y), -1)[:, 0]
        self.map_ = LogisticRegression(C=1e6).fit(
            linear_predictor(scores, self.probability)[:, None], y
        )
        self.classes_ = self.map_.classes_
        return self

    def predict_proba(self, X):
        check_is_fitted(self)
        scores = np.asarray(X, dtype=float).reshape(len(X), -1)[:, 0]
        return self.map_.predict_proba(linear_predictor(scores, self.probability)[:, None])

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


def cross_fitted(predictions: pd.DataFrame, probability: bool) -> np.ndarray:
    """The recalibrated probability of every out-of-fold prediction, its calibrator fitted
    on the other outer folds of the same repeat: an honest estimate of how well the final
    model's recalibrated probabilities will fit new patients."""
    out = np.full(len(predictions), np.nan)
    scores = predictions["score"].to_numpy(dtype=float)
    y = predictions["y_true"].to_numpy(dtype=int)
    repeat = predictions["repeat"].to_numpy() if "repeat" in predictions else np.zeros(len(y))
    fold = predictions["fold"].to_numpy()
    for r, f in set(zip(repeat, fold, strict=True)):
        rows = (repeat == r) & (fold == f)
        others = (repeat == r) & (fold != f)
        if len(np.unique(y[others])) < 2:
            continue
        calibrator = ScoreCalibrator(probability).fit(scores[others, None], y[others])
        out[rows] = calibrator.predict_proba(scores[rows, None])[:, 1]
    return out


def summary(predictions: pd.DataFrame, probability: bool) -> dict:
    """Calibration slope and intercept of the raw out-of-fold probabilities (when the
    model gives probabilities) and of the cross-fitted recalibrated ones, first repeat."""
    if "repeat" in predictions:
        predictions = predictions[predictions["repeat"] == predictions["repeat"].min()]
    recalibrated = cross_fitted(predictions, probability)
    y = predictions["y_true"].to_numpy(dtype=int)
    kept = ~np.isnan(recalibrated)
    out = {"recalibrated": slope_and_intercept(y[kept], recalibrated[kept])}
    if probability:
        out["raw"] = slope_and_intercept(y, predictions["score"].to_numpy(dtype=float))
    return out


class ClassCalibrator(ClassifierMixin, BaseEstimator):
    """Recalibration of a multiclass model's decision values (an SVM's one-vs-rest
    scores, kernel fusion's): a logistic map of each class's column against the rest
    (:class:`ScoreCalibrator`), the class probabilities normalised to sum to one, as
    scikit-learn's ``CalibratedClassifierCV`` does for several classes."""

    def fit(self, X, y):
        scores, y = np.asarray(X, dtype=float), np.asarray(y, dtype=int)
        self.classes_ = np.arange(scores.shape[1])
        self.maps_ = [
            ScoreCalibrator(probability=False).fit(scores[:, [k]], (y == k).astype(int))
            for k in self.classes_
        ]
        return self

    def predict_proba(self, X):
        check_is_fitted(self)
        scores = np.asarray(X, dtype=float)
        p = np.column_stack(
            [m.predict_proba(scores[:, [k]])[:, 1] for k, m in enumerate(self.maps_)]
        )
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, X):
        return self.predict_proba(X).argmax(axis=1)
