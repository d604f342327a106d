"""The final model of one (endpoint, pipeline, classifier), as applied to new patients:
the pipeline tuned and refitted on every development patient, and for a binary endpoint
the recalibration learned from the nested CV's out-of-fold scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import softmax

from radiotx import calibration, evaluate


class FinalModel:
    """``predict_proba`` gives calibrated probabilities for a binary endpoint (the refitted
    pipeline's probabilities for a multiclass one), ``scores`` the pipeline's own scores
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
        """The final model of a binary endpoint recalibrated on its out-of-fold scores
        (every repeat of the outer CV), others as they are."""
        calibrator = None
        if meta.get("kind") == "binary" and "score" in predictions:
            calibrator = calibration.ScoreCalibrator(probability).fit(
                predictions[["score"]].to_numpy(dtype=float), predictions["y_true"].astype(int)
            )
        return cls(estimator, meta, calibrator)

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
        if self.calibrator is not None:
            return self.calibrator.predict_proba(self.scores(X)[:, None])
        if hasattr(self.estimator, "predict_proba"):
            return self.estimator.predict_proba(self._design(X))
        return softmax(self.scores(X), axis=1)  # a multiclass kernel machine's decision values

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """The predicted class code, or the risk score for survival."""
        if self.survival:
            return self.scores(X)
        return self.predict_proba(X).argmax(axis=1)
