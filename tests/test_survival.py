"""Survival endpoints with scikit-survival: labels, the Cox-score filter, nested CV."""

from __future__ import annotations

from dataclasses import replace

import joblib
import numpy as np
import pandas as pd
import pytest

from radiotx import cohort as cohort_module
from radiotx import experiment, followup, splits, survival
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
    out = followup.labels(table, "Time", "Survival Status", "Dead")
    assert out.loc["A", "event"] and not out.loc["B", "event"] and out.loc["A", "time"] == 120
    assert out.loc[["C", "D"]].isna().all(axis=None)
    with pytest.raises(InputError, match="'Days'"):
        followup.labels(table, "Days", "Survival Status", "Dead")


def test_cox_score_ranks_the_prognostic_features_first():
    X, y = cohort()
    selector = survival.CoxScoreSelector(k=2).fit(X.to_numpy(), y)
    assert set(np.flatnonzero(selector.get_support())) == {0, 1}
    assert selector.scores_[:2].min() > 5 * np.median(selector.scores_[2:])


def study(signal=True, seed=0, holdout=0.0, repeats=1):
    """A cohort with one survival endpoint ``os`` and its stored splits."""
    X, y = cohort(signal=signal, seed=seed)
    features = X.set_axis([c.split(":", 1)[1] for c in X.columns], axis=1)
    events = pd.Series(y["event"].astype(float), index=X.index)
    obs = {followup.time_column("os"): pd.Series(y["time"], index=X.index)}
    mdata = cohort_module.build({"a": features}, {"os": events}, obs)
    table = splits.make_splits(events, n_splits=3, repeats=repeats, holdout=holdout, seed=seed)
    return mdata, table


SETTINGS = experiment.Settings(
    seed=0, k_features=(2, 10), survival_models=("coxnet", "rsf"), n_boot=200
)


def procedure(mdata, table, **settings):
    return experiment.procedure(
        mdata, table, endpoint="os", pipeline="a", modalities=["a"],
        settings=replace(SETTINGS, **settings),
    )  # fmt: skip


@pytest.fixture(scope="module")
def prognostic():
    mdata, table = study(holdout=0.2)
    job = procedure(mdata, table)
    return mdata, table, job, job.evaluate()


def test_every_survival_model_finds_the_prognostic_signal(prognostic, tmp_path):
    mdata, table, job, results = prognostic
    assert set(results) == {"coxnet", "rsf", "selected"}
    assert job.meta["kind"] == "survival" and job.meta["n_patients"] == 96
    for name, result in results.items():
        summary = experiment.write_model(result, job.meta, name, SETTINGS, tmp_path / name)
        assert summary["primary_metric"] == "c_index"
        assert summary["pooled"]["c_index"] > 0.68, name
        low, high = summary["ci95"]["c_index"]
        assert 0.5 < low < summary["pooled"]["c_index"] < high
        assert all(0.5 < auc <= 1 for auc in summary["time_auc"].values())
        assert len(summary["folds"]) == 3 and summary["n_events"] == job.meta["n_events"]
        assert (tmp_path / name / "performance.png").stat().st_size > 0
    # the prognostic features 0 and 1 are chosen by the Cox-score filter in every fold
    chosen = results["coxnet"].selected
    assert chosen.groupby("fold")["feature"].apply(lambda f: {"f0", "f1"} <= set(f)).all()
    # the selected model is, fold by fold, the model with the best inner C-index
    for k, record in enumerate(results["selected"].folds):
        best = max(
            results["coxnet"].folds[k]["inner_c_index"], results["rsf"].folds[k]["inner_c_index"]
        )
        assert record["inner_c_index"] == best


def test_hold_out_patients_are_scored_once_by_the_final_model(prognostic, tmp_path):
    mdata, table, job, results = prognostic
    locked = set(splits.holdout_patients(table))
    assert len(locked) == 24 and not locked & set(job.X.index)
    assert not locked & set(results["coxnet"].predictions["patient_id"])
    tuned = job.final_models()
    assert all(t.cross_fitted is None for t in tuned.values())  # risk scores: no calibration
    experiment.write_model(
        results["selected"], job.meta, "selected", SETTINGS, tmp_path, tuned=tuned["selected"]
    )
    assert joblib.load(tmp_path / "model.joblib").calibrator is None
    final = {name: choice.estimator for name, choice in tuned.items()}
    summary, predictions = experiment.score_holdout(
        final["selected"], mdata, table, endpoint="os", modalities=["a"], settings=SETTINGS
    )
    assert set(predictions["patient_id"]) == locked
    assert summary["metrics"]["c_index"] > 0.65 and summary["n_events"] > 5


def test_permuted_survival_outcomes_are_at_chance():
    mdata, table = study(seed=3)
    job = procedure(mdata, table, survival_models=("coxnet",))
    null = [experiment.permuted(job, index)["coxnet"] for index in range(3)]
    assert all(0.35 < c < 0.65 for c in null), null
    observed = survival.pooled_c_index(job.evaluate(select=False)["coxnet"].predictions)
    assert observed > max(null) + 0.1


@pytest.mark.filterwarnings("ignore:all coefficients are zero")
def test_no_signal_is_at_chance():
    mdata, table = study(signal=False, seed=3)
    result = procedure(mdata, table, survival_models=("coxnet",)).evaluate()["coxnet"]
    assert 0.35 < survival.pooled_c_index(result.predictions) < 0.65


def test_follow_up_time_from_dates():
    table = pd.DataFrame(
        {
            "status": ["Dead", "Alive", "Alive", "Dead"],
            "ct": ["1/1/2000", "1/1/2000", "3/1/2000", "not collected"],
            "death": ["1/31/2000", None, None, "1/1/2001"],
            "last_seen": ["1/31/2000", "1/11/2000", "3/2/2000", "1/1/2001"],
        },
        index=["A", "B", "C", "D"],
    )
    spec = {"event": "status", "positive": "Dead", "start": "ct",
            "end": ["death", "last_seen"], "missing": ["not collected"]}  # fmt: skip
    out = followup.endpoint_labels(table, spec)
    assert out.loc["A"].tolist() == [30.0, True] and out.loc["B"].tolist() == [10.0, False]
    assert out.loc["C", "time"] == 1 and out.loc["D"].isna().all()


def test_a_survival_learning_curve_ignores_the_class_balancers():
    # the demo's survival endpoints with its SMOTE setting and few events at half the
    # training set: survival models are not balanced, so no SMOTE check may stop them
    mdata, table = study(seed=3)
    job = procedure(mdata, table, balancers=("smote",), smote_neighbors=40)
    curve = job.learning_curve([0.3])
    assert set(curve["model"]) >= {"coxnet", "rsf"} and curve["score"].between(0, 1).all()


def mixed_model_study(seed=3, n=150, p=10):
    """A hazard with a threshold effect that the random survival forest can use: the outer
    folds' inner CV picks it in some folds and Coxnet in others."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    hazard = np.exp(0.6 * X[:, 0] + 1.5 * (np.abs(X[:, 1]) > 1))
    event_time, censor_time = rng.exponential(365 / hazard), rng.uniform(100, 1500, n)
    ids = [f"P{i:03d}" for i in range(n)]
    events = pd.Series((event_time <= censor_time).astype(float), index=ids)
    obs = {followup.time_column("os"): pd.Series(np.minimum(event_time, censor_time), index=ids)}
    frame = pd.DataFrame(X, index=ids, columns=[f"f{i}" for i in range(p)])
    mdata = cohort_module.build({"a": frame}, {"os": events}, obs)
    table = splits.make_splits(events, n_splits=5, seed=seed)
    return procedure(mdata, table, seed=seed, k_features=(5,)).evaluate()["selected"]


def test_pooled_c_index_of_folds_with_different_models_equals_the_fold_wise_one():
    result = mixed_model_study()
    chosen = {f["best_params"]["model"].split("(")[0] for f in result.folds}
    assert chosen == {"CoxnetSurvivalAnalysis", "RandomSurvivalForest"}  # two risk scales
    summary = survival.summary(result, n_boot=200, seed=0)
    low, high = summary["ci95"]["c_index"]
    noise = (high - low) / 4
    assert abs(summary["pooled"]["c_index"] - summary["mean"]["c_index"]) < noise
    assert low < summary["pooled"]["c_index"] < high
    p = result.predictions
    across = survival.concordance(survival.as_structured(p), p["score"].to_numpy())
    assert summary["mean"]["c_index"] - across > 2 * noise  # pairs across folds mislead


def test_within_fold_concordance_counts_the_pairs_of_each_fold():
    X, y = cohort(n=90)
    risk = X["a:f0"].to_numpy() - X["a:f1"].to_numpy()
    fold = np.repeat([0, 1, 2], 30)
    shifted = risk + 100 * fold  # a risk scale per fold
    within = survival.within_fold_concordance(y, shifted, fold)
    assert within == pytest.approx(survival.within_fold_concordance(y, risk, fold))
    assert survival.within_fold_concordance(y, risk) == pytest.approx(survival.concordance(y, risk))
    assert abs(survival.concordance(y, shifted) - within) > 0.05


def test_time_dependent_auc_ranks_the_risks_of_each_fold_among_themselves():
    X, y = cohort(n=150)
    risk = X["a:f0"].to_numpy() - X["a:f1"].to_numpy()
    fold = np.repeat([0, 1, 2], 50)
    frame = pd.DataFrame({"time": y["time"], "event": y["event"], "fold": fold})
    times = np.quantile(y["time"][y["event"]], [0.25, 0.5, 0.75])
    plain = survival.within_fold_time_auc(frame.assign(score=risk), times)
    shifted = survival.within_fold_time_auc(frame.assign(score=risk + 100 * fold), times)
    assert shifted == pytest.approx(plain)  # a model's own scale cannot move it
    for t in times:  # the folds' own AUCs, weighted by their size
        folds = [survival.time_auc(y, y[fold == f], risk[fold == f], [t])[t] for f in range(3)]
        assert plain[t] == pytest.approx(np.mean(folds))
        assert 0.6 < plain[t] <= 1
    across = survival.time_auc(y, y, risk + 100 * fold, times)
    assert max(abs(across[t] - plain[t]) for t in times) > 0.05  # pooling across folds misleads
