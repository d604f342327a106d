"""Calibration figures and statistics, the recalibrated final model."""

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, logit
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from radiotx import calibration, final, plots


def outcomes(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    risk = expit(rng.normal(-0.5, 1.2, n))
    return risk, rng.binomial(1, risk)


def test_slope_and_intercept_of_calibrated_and_overconfident_probabilities():
    risk, y = outcomes()
    good = calibration.slope_and_intercept(y, risk)
    assert good["calibration_slope"] == pytest.approx(1, abs=0.1)
    assert good["calibration_intercept"] == pytest.approx(0, abs=0.1)
    extreme = calibration.slope_and_intercept(y, expit(2 * logit(risk)))
    assert extreme["calibration_slope"] == pytest.approx(0.5, abs=0.06)
    shifted = calibration.slope_and_intercept(y, expit(logit(risk) + 1))  # SMOTE-like
    assert shifted["calibration_intercept"] == pytest.approx(-1, abs=0.1)


def oof_predictions(seed=0):
    risk, y = outcomes(seed=seed)
    return pd.DataFrame(
        {
            "patient_id": [f"P{i}" for i in range(len(y))],
            "repeat": 0,
            "fold": np.arange(len(y)) % 5,
            "y_true": y,
            "score": expit(2 * logit(risk) + 1),  # over-confident and shifted upwards
        }
    )


def test_cross_fitted_recalibration_repairs_shifted_probabilities():
    predictions = oof_predictions()
    stats = calibration.summary(predictions, probability=True)
    assert stats["raw"]["calibration_slope"] < 0.6
    assert stats["raw"]["calibration_intercept"] < -0.5
    assert stats["recalibrated"]["calibration_slope"] == pytest.approx(1, abs=0.1)
    assert stats["recalibrated"]["calibration_intercept"] == pytest.approx(0, abs=0.1)
    # each fold's map comes from the other folds only: changing one fold's labels does not
    # change its own recalibrated probabilities
    flipped = predictions.copy()
    fold0 = flipped["fold"] == 0
    flipped.loc[fold0, "y_true"] = 1 - flipped.loc[fold0, "y_true"]
    a = calibration.cross_fitted(predictions, True)[fold0.to_numpy()]
    b = calibration.cross_fitted(flipped, True)[fold0.to_numpy()]
    assert a == pytest.approx(b)


def test_decision_scores_are_recalibrated_too():
    predictions = oof_predictions()
    predictions["score"] = 3 * logit(predictions["score"])  # a decision value, not a probability
    stats = calibration.summary(predictions, probability=False)
    assert "raw" not in stats
    assert stats["recalibrated"]["calibration_slope"] == pytest.approx(1, abs=0.1)


def test_net_benefit_by_hand():
    y = np.array([1, 1, 0, 0, 0])
    p = np.array([0.9, 0.4, 0.6, 0.2, 0.1])
    # at 0.5: treat patients 0 and 2, 1 TP and 1 FP: 1/5 - 1/5 * 0.5 / 0.5
    assert plots.net_benefit(y, p, [0.5]) == pytest.approx([0.0])
    # at 0.3: treat 0, 1, 2: 2/5 - 1/5 * 0.3 / 0.7
    assert plots.net_benefit(y, p, [0.3]) == pytest.approx([0.4 - 0.2 * 0.3 / 0.7])


def test_binary_figures_are_written(tmp_path):
    predictions = oof_predictions().iloc[:300]
    predictions["y_pred"] = (predictions["score"] > 0.5).astype(int)
    plots.write_binary(predictions, True, tmp_path, "demo / logreg")
    for name in plots.NAMES:
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000


def test_final_model_reports_recalibrated_probabilities():
    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(400, 3)), columns=["a:x", "a:y", "b:z"])
    y = (X["a:x"] + rng.normal(size=400) > 0).astype(int)
    pipeline = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    oof = pd.DataFrame(
        {"fold": 0, "y_true": y, "score": expit(3 * logit(pipeline.predict_proba(X)[:, 1]))}
    )
    model = final.FinalModel.from_out_of_fold(pipeline, {"kind": "binary"}, oof, True)
    probability = model.predict_proba(X.assign(extra=1.0)[["extra", *X.columns[::-1]]])
    assert probability.shape == (400, 2) and np.allclose(probability.sum(axis=1), 1)
    # the map undoes the over-confidence of the out-of-fold scores: probabilities shrink
    raw = pipeline.predict_proba(X)[:, 1]
    assert np.std(logit(probability[:, 1])) < np.std(logit(raw))
    assert list(model.predict(X)) == list(probability.argmax(axis=1))
    with pytest.raises(ValueError, match="lacks 1 of the model's 3 columns.*Fix"):
        model.predict_proba(X.drop(columns="b:z"))
