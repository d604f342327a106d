"""The final model of one (endpoint, pipeline, classifier), as applied to new patients:
the pipeline tuned and refitted on every development patient, and the recalibration
learned from out-of-fold scores (a binary endpoint's, and a multiclass model's that gives
decision values)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import softmax

from radiotx import calibration, evaluate


class FinalModel:
    """``predict_proba`` gives calibrated probabilities for a binary endpoint (for a
    multiclass one the refitted pipeline's probabilities, or its decision values
    recalibrated per class), ``scores`` the pipeline's own scores
    (a risk score for survival). ``X`` is a design matrix with at least the columns of
    ``feature_names_in_`` (``modality:feature``); extra columns are ignored.

    ``meta`` holds the endpoint, pipeline, classifier, modalities and, for a multiclass
    endpoint, the class names by code."""

    def __init__(self, estimator, meta: dict, calibrator=None):
        self.estimator = estimator
        self.meta = meta
        self.calibrator = calibrator

    @classmethod
    def from_out_of_fold(cls, estimator, meta: dict, predictions: pd.DataFrame, probability):
        """The final model recalibrated on out-of-fold scores (every repeat of the outer
        CV; :func:`radiotx.experiment.calibration_scores`): a binary endpoint's always, a
        multiclass model's when it gives decision values instead of probabilities."""
        calibrator = None
        if meta.get("kind") == "binary" and "score" in predictions:
            calibrator = calibration.ScoreCalibrator(probability).fit(
                predictions[["score"]].to_numpy(dtype=float), predictions["y_true"].astype(int)
            )
        elif meta.get("kind") == "multiclass" and not hasattr(estimator, "predict_proba"):
            calibrator = calibration.ClassCalibrator().fit(
                evaluate.score_columns(predictions), predictions["y_true"].astype(int)
            )
        return cls(estimator, meta, calibrator)  # survival: risk scores, no calibration

    @property
    def feature_names_in_(self) -> np.ndarray:
        return self.estimator.feature_names_in_

    def _design(self, X: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in self.feature_names_in_ if c not in X.columns]
        if missing:
            raise ValueError(
                f"the design matrix lacks {len(missing)} of the model's "
                f"{len(self.feature_names_in_)} columns, e.g. {missing[:3]}. Fix: extract the "
                "new patients' features with the same config as the training cohort"
            )
        return X[list(self.feature_names_in_)]

    @property
    def survival(self) -> bool:
        return self.meta.get("kind") == "survival"

    def scores(self, X: pd.DataFrame) -> np.ndarray:
        """The pipeline's scores: probability or decision value of the positive class (a
        column per class for a multiclass endpoint), or the risk score for survival."""
        if self.survival:
            return np.asarray(self.estimator.predict(self._design(X)), dtype=float)
        return evaluate.scores(self.estimator, self._design(X))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        if self.survival:
            raise TypeError("a survival model gives risk scores (scores), not probabilities")
        scores = self.scores(X)
        if self.calibrator is not None:
            return self.calibrator.predict_proba(scores[:, None] if scores.ndim == 1 else scores)
        if hasattr(self.estimator, "predict_proba"):
            return self.estimator.predict_proba(self._design(X))
        return softmax(scores, axis=1)  # decision values of a model saved without calibration

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """The predicted class code, or the risk score for survival."""
        if self.survival:
            return self.scores(X)
        return self.predict_proba(X).argmax(axis=1)
