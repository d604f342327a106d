"""Survival endpoints with scikit-survival: labels, the Cox-score filter, nested CV."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from radiotx import survival
from radiotx.errors import InputError

pytest.importorskip("sksurv")


def cohort(n=120, p=40, seed=0, signal=True):
    """Exponential survival times driven by features 0 and 1; ~30 % censored."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    hazard = np.exp(1.2 * X[:, 0] - 1.0 * X[:, 1]) if signal else np.ones(n)
    event_time = rng.exponential(365 / hazard)
    censor_time = rng.uniform(100, 1500, n)
    frame = pd.DataFrame(
        {"time": np.minimum(event_time, censor_time), "event": event_time <= censor_time},
        index=[f"P{i:03d}" for i in range(n)],
    )
    features = pd.DataFrame(X, index=frame.index, columns=[f"a:f{i}" for i in range(p)])
    return features, survival.as_structured(frame)


def test_labels_from_a_clinical_table():
    table = pd.DataFrame(
        {
            "Survival Status": ["Dead", "Alive", "Dead", None],
            "Time": [120, 800, None, 30],
        },
        index=["A", "B", "C", "D"],
    )
    out = survival.labels(table, "Time", "Survival Status", "Dead")
    assert out.loc["A", "event"] and not out.loc["B", "event"] and out.loc["A", "time"] == 120
    assert out.loc[["C", "D"]].isna().all(axis=None)
    with pytest.raises(InputError, match="'Days'"):
        survival.labels(table, "Days", "Survival Status", "Dead")


def test_cox_score_ranks_the_prognostic_features_first():
    X, y = cohort()
    selector = survival.CoxScoreSelector(k=2).fit(X.to_numpy(), y)
    assert set(np.flatnonzero(selector.get_support())) == {0, 1}
    assert selector.scores_[:2].min() > 5 * np.median(selector.scores_[2:])


@pytest.mark.parametrize("model", ["coxnet", "rsf"])
def test_nested_cv_finds_the_prognostic_signal(model):
    X, y = cohort()
    blocks = {"a": list(X.columns)}
    fold = pd.Series(np.arange(len(X)) % 3, index=X.index)
    result = survival.nested_cv(
        survival.build(blocks, model, seed=0),
        survival.grid(blocks, model, [2, 10]),
        X,
        y,
        fold,
    )
    assert result["pooled"]["c_index"] > 0.68
    assert all(0.5 < a <= 1 for a in result["time_auc"].values())
    assert result["risks"].notna().all()


@pytest.mark.filterwarnings("ignore:all coefficients are zero")
def test_nested_cv_is_at_chance_without_signal():
    X, y = cohort(signal=False, seed=3)
    blocks = {"a": list(X.columns)}
    fold = pd.Series(np.arange(len(X)) % 3, index=X.index)
    result = survival.nested_cv(
        survival.build(blocks, "coxnet"), survival.grid(blocks, "coxnet", [5]), X, y, fold
    )
    assert 0.35 < result["pooled"]["c_index"] < 0.65
