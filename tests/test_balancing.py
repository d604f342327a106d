"""Tests for the balancers: in-fold resampling in a pipeline, the small-fold error, SMOTENC
on indicator columns, the Gaussian copula sampler and the fidelity measure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from imblearn.pipeline import Pipeline
from scipy.stats import ks_2samp, spearmanr
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score, train_test_split
from sklearn.preprocessing import StandardScaler

from radiotx import balancing, cohort, demo, experiment, splits

INDICATORS = [17, 18, 19]  # one-hot columns of a three-level clinical variable (stage)
SAMPLERS = [n for n in balancing.BALANCERS if balancing.balancer(n, seed=0, categorical=[0])]
NEIGHBOUR_BASED = ["smote", "adasyn", "borderline_smote", "smotenc"]


@pytest.fixture(scope="module")
def data():
    """100 patients x 20 features, 20 % positives: 17 continuous features (6 informative), a
    planted correlation of about 0.97 between columns 0 and 1 among the positives, and the
    three one-hot indicator columns of a stage that depends on the class."""
    X, y = make_classification(
        n_samples=100,
        n_features=17,
        n_informative=6,
        n_redundant=2,
        weights=[0.8, 0.2],
        flip_y=0,
        random_state=0,
    )
    rng = np.random.default_rng(0)
    positive = y == 1
    X[positive, 1] = 0.9 * X[positive, 0] + 0.3 * X[positive, 0].std() * rng.normal(size=20)
    stage = np.where(
        positive, rng.choice(3, 100, p=[0.2, 0.3, 0.5]), rng.choice(3, 100, p=[0.5, 0.3, 0.2])
    )
    return np.hstack([X, np.eye(3)[stage]]), y


def _pipeline(name: str) -> Pipeline:
    sampler = balancing.balancer(name, seed=0, categorical=INDICATORS)
    weight = "balanced" if balancing.uses_class_weight(name) else None
    return Pipeline(
        [
            ("scale", StandardScaler()),
            ("balance", sampler),
            ("clf", LogisticRegression(max_iter=1000, class_weight=weight)),
        ]
    )


def test_registry():
    assert set(balancing.BALANCERS) >= {
        "none",
        "random_oversampling",
        "smote",
        "adasyn",
        "borderline_smote",
        "smotenc",
        "class_weight",
        "gaussian_copula",
    }
    assert set(SAMPLERS) == set(balancing.BALANCERS) - {"none", "class_weight"}
    with pytest.raises(ValueError, match="unknown balancer"):
        balancing.balancer("tomek", seed=0)
    with pytest.raises(ValueError, match="unknown balancer"):
        balancing.uses_class_weight("tomek")


def test_class_weight_contract():
    assert balancing.balancer("class_weight", seed=0) is None
    assert balancing.balancer("none", seed=0) is None
    assert [n for n in balancing.BALANCERS if balancing.uses_class_weight(n)] == ["class_weight"]


@pytest.mark.parametrize("name", sorted(balancing.BALANCERS))
def test_balancer_resamples_training_folds_only(data, name, monkeypatch):
    """Cross-validation runs, the sampler sees exactly the training rows of each fold and
    balances them, and ``predict`` on held-out patients calls no sampler and returns one
    prediction each."""
    X, y = data
    pipeline = _pipeline(name)
    seen, balanced = [], []
    sampler = pipeline.named_steps["balance"]
    if sampler is not None:
        resample = type(sampler).fit_resample

        def counting(self, X, y, **params):
            seen.append(len(y))
            X_res, y_res = resample(self, X, y, **params)
            balanced.append(abs(np.diff(np.bincount(y_res))[0]) <= 2)  # ADASYN rounds
            return X_res, y_res

        monkeypatch.setattr(type(sampler), "fit_resample", counting)
    cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    scores = cross_val_score(pipeline, X, y, cv=cv, scoring="roc_auc", error_score="raise")
    assert np.all(np.isfinite(scores))
    train_sizes = [len(train) for train, _ in cv.split(X, y)]
    assert seen == ([] if sampler is None else train_sizes)
    assert all(balanced)

    X_train, X_test, y_train, _ = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
    fitted = clone(pipeline).fit(X_train, y_train)
    calls = len(seen)
    assert fitted.predict(X_test).shape == (len(X_test),)
    assert fitted.predict_proba(X_test).shape == (len(X_test), 2)
    assert len(seen) == calls


@pytest.mark.parametrize("name", SAMPLERS)
def test_sampler_balances_training_classes(data, name):
    X, y = data
    sampler = balancing.balancer(name, seed=0, categorical=INDICATORS)
    X_res, y_res = sampler.fit_resample(StandardScaler().fit_transform(X), y)
    counts = np.bincount(y_res)
    assert counts[0] == 80  # the majority is never resampled
    assert abs(counts[1] - 80) <= (2 if name == "adasyn" else 0)  # ADASYN rounds per row
    assert len(X_res) == len(y_res)


@pytest.mark.parametrize("name", NEIGHBOUR_BASED)
def test_small_fold_gives_clear_error(data, name):
    X, y = data
    keep = np.r_[np.flatnonzero(y == 0), np.flatnonzero(y == 1)[:4]]
    sampler = balancing.balancer(name, seed=0, k_neighbors=5, categorical=INDICATORS)
    with pytest.raises(ValueError, match=r"only 4 patients of class 1.*model\.smote_neighbors"):
        sampler.fit_resample(X[keep], y[keep])
    fine = balancing.balancer(name, seed=0, k_neighbors=3, categorical=INDICATORS)
    fine.fit_resample(X[keep], y[keep])


def test_smotenc_keeps_indicator_columns_binary(data):
    X, y = data
    X_res, _ = balancing.balancer("smotenc", seed=0, categorical=INDICATORS).fit_resample(X, y)
    synthetic = X_res[len(X) :]
    assert set(np.unique(synthetic[:, INDICATORS])) <= {0.0, 1.0}
    assert len(np.unique(synthetic[:, 0])) > 40  # continuous columns are interpolated


def test_smotenc_names_survive_feature_selection(data):
    """By name, categorical columns that a fold's selection removed are ignored; a fold left
    with none is resampled by plain SMOTE."""
    X, y = data
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    names = [f"f{i}" for i in INDICATORS]
    sampler = balancing.balancer("smotenc", seed=0, categorical=names)
    X_res, y_res = sampler.fit_resample(frame.drop(columns="f19"), y)
    assert list(X_res.columns) == [c for c in frame.columns if c != "f19"]
    assert set(np.unique(X_res[["f17", "f18"]])) <= {0.0, 1.0}
    X_res, y_res = clone(sampler).fit_resample(frame.drop(columns=names), y)
    assert np.bincount(y_res).tolist() == [80, 80]
    with pytest.raises(ValueError, match="smotenc needs categorical"):
        balancing.balancer("smotenc", seed=0)


def _copula_rows(X, y, **options):
    sampler = balancing.GaussianCopulaSampler(random_state=0, **options)
    X_res, y_res = sampler.fit_resample(X, y)
    assert np.all(y_res[len(X) :] == 1)
    return X_res[len(X) :], sampler


def test_copula_draws_from_the_minority_class_only(data):
    X, y = data
    synthetic, _ = _copula_rows(X, y)
    centre = synthetic.mean(axis=0)
    to_minority = np.linalg.norm(centre - X[y == 1].mean(axis=0))
    to_majority = np.linalg.norm(centre - X[y == 0].mean(axis=0))
    assert to_minority < 0.4 * to_majority
    # Majority rows do not enter the copula at all: changing them changes nothing.
    other = X.copy()
    other[y == 0] = np.random.default_rng(1).normal(size=other[y == 0].shape)
    np.testing.assert_array_equal(_copula_rows(other, y)[0], synthetic)


def test_copula_keeps_correlation_marginals_and_indicators(data):
    """Checked on 400 synthetic rows, so that the sampling noise of a correlation estimated
    from 60 rows (about 0.05 here) does not hide what the copula itself does."""
    X, y = data
    real = X[y == 1]
    synthetic, _ = _copula_rows(X, y, sampling_strategy={1: 420})
    r_real = np.corrcoef(real[:, 0], real[:, 1])[0, 1]
    r_synthetic = np.corrcoef(synthetic[:, 0], synthetic[:, 1])[0, 1]
    assert r_real > 0.9
    assert abs(r_synthetic - r_real) <= 0.15
    # The copula preserves rank correlation; Pearson's r also depends on the marginals.
    rho_real = spearmanr(real[:, 0], real[:, 1]).statistic
    assert abs(spearmanr(synthetic[:, 0], synthetic[:, 1]).statistic - rho_real) <= 0.1
    assert set(np.unique(synthetic[:, INDICATORS])) <= {0.0, 1.0}
    assert np.all(synthetic >= real.min(axis=0)) and np.all(synthetic <= real.max(axis=0))
    assert len(np.unique(synthetic[:, 0])) == len(synthetic)  # continuous: new values


def test_copula_is_reproducible(data):
    X, y = data
    first, _ = _copula_rows(X, y)
    np.testing.assert_array_equal(first, _copula_rows(X, y)[0])
    other = balancing.GaussianCopulaSampler(random_state=1).fit_resample(X, y)[0][len(X) :]
    assert not np.allclose(first, other)


@pytest.mark.parametrize("shrinkage", [0.0, 0.1, "ledoit_wolf"])
def test_copula_with_fewer_minority_rows_than_features(shrinkage):
    X, y = make_classification(
        n_samples=60, n_features=40, n_informative=5, weights=[0.85, 0.15], random_state=1
    )
    n_minority = int(np.sum(y == 1))
    assert n_minority < X.shape[1]
    synthetic, sampler = _copula_rows(X, y, shrinkage=shrinkage)
    assert len(synthetic) == np.sum(y == 0) - n_minority
    assert np.all(np.isfinite(synthetic))
    assert list(sampler.fidelity_) == [1] and 0 <= sampler.shrinkage_[1] <= 1
    assert sampler.fidelity_[1]["nn_ratio"] > 0.3


def test_copula_fidelity_attribute_and_multiclass():
    X, y = make_classification(
        n_samples=150,
        n_features=6,
        n_informative=4,
        n_classes=3,
        weights=[0.6, 0.3, 0.1],
        random_state=2,
    )
    sampler = balancing.GaussianCopulaSampler(random_state=0)
    _, y_res = sampler.fit_resample(pd.DataFrame(X), pd.Series(y))
    assert np.bincount(y_res).tolist() == [np.bincount(y).max()] * 3
    assert sorted(sampler.fidelity_) == [1, 2]
    assert set(sampler.fidelity_[2]) == {
        "ks",
        "correlation_diff",
        "nn_ratio",
        "n_real",
        "n_synthetic",
    }
    with pytest.raises(ValueError, match="at least 2"):
        clone(sampler).fit_resample(np.vstack([X[y != 2], X[y == 2][:1]]), np.r_[y[y != 2], 2])


def test_fidelity_separates_copula_rows_from_other_rows(data):
    """Against the 20 real positives, 80 copula rows score far better than the 80 negatives
    (same number of rows, so the KS statistics share their sampling noise); copies of real
    rows have a nearest-neighbour ratio of 0, copula rows one near 1."""
    X, y = data
    real, majority = X[y == 1], X[y == 0]
    synthetic, sampler = _copula_rows(X, y, sampling_strategy={1: 100})
    copula = balancing.fidelity(real, synthetic)
    assert copula == sampler.fidelity_[1]
    assert copula["n_real"] == 20 and copula["n_synthetic"] == len(majority) == 80
    wrong_class = balancing.fidelity(real, majority)
    assert copula["ks"] < 0.5 * wrong_class["ks"]
    assert copula["correlation_diff"] < 0.6 * wrong_class["correlation_diff"]
    copies = balancing.fidelity(real, real[np.random.default_rng(0).integers(0, 20, 80)])
    assert copies["nn_ratio"] == pytest.approx(0.0, abs=1e-9)
    assert copula["nn_ratio"] > 0.5


def test_fidelity_ks_matches_scipy():
    rng = np.random.default_rng(3)
    real, synthetic = rng.normal(size=(15, 5)), rng.normal(0.5, 1, size=(40, 5))
    real[:, 4], synthetic[:, 4] = rng.integers(0, 2, 15), rng.integers(0, 2, 40)  # ties
    expected = np.mean([ks_2samp(real[:, j], synthetic[:, j]).statistic for j in range(5)])
    assert balancing.fidelity(real, synthetic)["ks"] == pytest.approx(expected)


def demo_clinical(seed: int):
    """A demo cohort of 90 patients with only the clinical modality, and its labels."""
    design = demo.design(90, seed, 0.0)
    table = demo.clinical_table(design, seed).set_index("patient_id")
    encoded = cohort.encode_clinical(table, ["age"], ["sex", "smoking", "stage"])
    labels = table["response"].astype(float)
    return encoded, labels, cohort.build({"clinical": encoded}, {"response": labels})


def test_smotenc_resamples_the_clinical_indicators_as_categories():
    """In the workflow's pipeline, SMOTENC sees the clinical one-hot indicators by name."""
    encoded, labels, mdata = demo_clinical(5)
    folds = splits.make_splits(labels, n_splits=3, seed=5)
    settings = experiment.Settings(
        seed=5, k_features=(8,), balancers=("smotenc",), candidates=("logreg",), n_boot=100
    )
    job = experiment.procedure(
        mdata, folds, endpoint="response", pipeline="clinical", modalities=["clinical"],
        settings=settings,
    )  # fmt: skip
    indicators = [c for c in job.X.columns if "=" in c]
    assert job.estimator.named_steps["prep"].get_params()["transformers"]
    result = job.evaluate()["logreg"]
    assert all("CheckedSMOTENC" in r["best_params"]["balance"] for r in result.folds)
    # resampling the training rows of the final model keeps every indicator two-valued
    model = job.refit()["logreg"]
    prepared = model.named_steps["prep"].transform(job.X)
    kept = [c for c in prepared.columns if c in indicators]
    assert kept, "the selection kept no clinical indicator"
    resampled, _ = model.named_steps["balance"].fit_resample(prepared, job.y)
    assert len(resampled) > len(prepared)
    for column in kept:
        assert resampled[column].nunique() <= prepared[column].nunique()
    with pytest.raises(ValueError, match="smotenc, which needs categorical"):
        experiment.procedure(
            cohort.build({"other": encoded[["age"]]}, {"response": labels}), folds,
            endpoint="response", pipeline="other", modalities=["other"], settings=settings,
        )  # fmt: skip


def test_the_copula_samplers_fidelity_is_recorded_per_outer_fold():
    _, labels, mdata = demo_clinical(6)
    settings = experiment.Settings(
        seed=6, k_features=(8,), balancers=("gaussian_copula",), candidates=("logreg",)
    )
    job = experiment.procedure(
        mdata, splits.make_splits(labels, n_splits=3, seed=6), endpoint="response",
        pipeline="clinical", modalities=["clinical"], settings=settings,
    )  # fmt: skip
    for record in job.evaluate()["logreg"].folds:
        minority = record["sampler_fidelity"]["1"]  # the minority class, over-sampled
        assert 0 <= minority["ks"] <= 1 and minority["n_synthetic"] > 0
        # clinical rows repeat (a few indicators and age): nn_ratio may be undefined
        assert "nn_ratio" in minority and minority["n_real"] > 10
