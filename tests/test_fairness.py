"""The demo's planted subgroup bias, end to end through the fairness library: the shift
tests find it, the subgroup metrics show the gap it opens, and a mitigation fitted inside
the outer folds narrows that gap.

The features are the demo's radiomics signal measured from its hidden tumour parameters
(volume, diameter, sphericity, texture, with measurement noise) plus noise features: the
generator's own model, without rendering 300 images.
"""

import numpy as np
import pandas as pd
import pytest

from radiotx import demo, evaluate, models
from radiotx.fairness import audit, outer, performance, shift, survival_performance

N, SEED, BIAS_MM = 300, 1, 3.0


def measured_cohort(site_bias_mm: float):
    design = demo.design(N, seed=SEED)
    tumours = demo.tumour_table(design, SEED, site_bias_mm=site_bias_mm)
    tumours = tumours.set_index("patient_id")
    rng = np.random.default_rng(SEED)
    radius, lobulation = tumours["radius_mm"], tumours["lobulation"]
    X = pd.DataFrame(
        {
            "volume": 4 / 3 * np.pi * radius**3 * rng.lognormal(0, 0.1, N),
            "diameter": 2 * radius * (1 + lobulation) + rng.normal(0, 1, N),
            "sphericity": 1 - 2 * lobulation + rng.normal(0, 0.02, N),
            "texture": tumours["texture_sd"] * rng.lognormal(0, 0.1, N),
            **{f"noise{i}": rng.normal(size=N) for i in range(10)},
        },
        index=tumours.index,
    )
    site = pd.Series([demo.patient_site(p, SEED) for p in X.index], index=X.index)
    # the biased site against the others: the gap the bias opens, not the noise of three
    site = site.where(site == demo.BIASED_SITE, "other").rename("site")
    return X, tumours["label"].astype(int), site


def outer_cv(X, y, site):
    """Five outer folds of a logistic model, each mitigated by thresholds fitted on its
    training patients: the model's and the mitigation's out-of-fold predictions."""
    pipeline = models.build({"radiomics": list(X.columns)}, "logreg", seed=0, k=5)
    folds = pd.Series(np.arange(len(y)) % 5, index=y.index)
    options = outer.Options("site", site, ("logreg",), ("threshold",))
    results, predictions = [], []
    for k in range(5):
        hook = outer.fold_hook(options, 0, k, inner_splits=3, seed=k)
        fold = evaluate.evaluate_fold(
            pipeline, {"logreg": [{"clf__C": [1.0]}]}, X, y, folds, k, seed=0, mitigate=hook
        )["logreg"]
        results.append({"logreg": fold.to_dict()})
        predictions.append(fold.predictions)
    return pd.concat(predictions, ignore_index=True), outer.collect(results, "logreg")


@pytest.fixture(scope="module")
def biased():
    X, y, site = measured_cohort(BIAS_MM)
    return X, y, site, *outer_cv(X, y, site)


@pytest.fixture(scope="module")
def unbiased():
    X, y, site = measured_cohort(0.0)
    return X, y, site, *outer_cv(X, y, site)


def test_the_shift_tests_find_the_planted_bias_and_only_it(biased, unbiased):
    X, _, site, *_ = biased
    features, classifier = shift.compare(X, site == "B", name="B", n_permutations=19)
    assert set(features.loc[features["shifted"], "feature"]) == {"volume", "diameter"}
    assert classifier["auc"] > 0.75 and classifier["p_value"] <= 0.05
    X, _, site, *_ = unbiased
    features, classifier = shift.compare(X, site == "B", name="B", n_permutations=19)
    assert not features["shifted"].any()
    assert classifier["p_value"] > 0.05


def gap(predictions, site, metric="equalized_odds_difference"):
    table = performance.disparities(predictions, site, attribute="site", n_boot=200)
    return table.set_index("metric").loc[metric, ["value", "low", "high"]].astype(float)


def test_the_subgroup_metrics_show_the_gap_the_bias_opens(biased, unbiased):
    _, _, site, predictions, _ = biased
    by_group = performance.subgroup_table(predictions, site, attribute="site", n_boot=50)
    specificity = by_group[by_group["metric"] == "specificity"].set_index("group")["value"]
    # site B's larger tumours are over-called: more false positives there
    assert specificity["other"] - specificity["B"] > 0.1
    value, low, _ = gap(predictions, site)
    assert low > 0.05
    assert value > gap(unbiased[3], unbiased[2])["value"] + 0.1


def test_group_thresholds_fitted_in_the_folds_narrow_the_gap(biased):
    _, _, site, predictions, mitigated = biased
    before, after = gap(predictions, site)["value"], gap(mitigated["threshold"], site)["value"]
    assert after < before / 2
    accuracy = {
        name: evaluate.metrics(p["y_true"], p["score"], p["y_pred"])["balanced_accuracy"]
        for name, p in {"none": predictions, "threshold": mitigated["threshold"]}.items()
    }
    assert accuracy["threshold"] > accuracy["none"] - 0.05
    # the trade-off table sets the two side by side
    settings = audit.Settings(mitigate="site", bootstrap=100)
    key = ("response", "radiomics", "logreg")
    table = audit.mitigation_table({key: predictions}, {key: mitigated}, site.to_frame(), settings)
    assert table["method"].tolist() == ["none", "threshold"]
    assert table["equalized_odds_difference"].iloc[1] < table["equalized_odds_difference"].iloc[0]


def test_the_mitigation_never_sees_the_test_fold(biased):
    """Every outer fold's mitigated predictions cover exactly its test patients, and
    refitting on training patients with the test labels scrambled changes nothing."""
    X, y, site, _, mitigated = biased
    table = mitigated["threshold"]
    assert sorted(table["patient_id"]) == sorted(X.index)
    folds = pd.Series(np.arange(len(y)) % 5, index=y.index)
    scrambled = y.copy()
    test = folds == 0
    scrambled[test] = np.random.default_rng(0).permutation(scrambled[test].to_numpy())
    options = outer.Options("site", site, ("logreg",), ("threshold",))
    pipeline = models.build({"radiomics": list(X.columns)}, "logreg", seed=0, k=5)
    fold = evaluate.evaluate_fold(
        pipeline, {"logreg": [{"clf__C": [1.0]}]}, X, scrambled, folds, 0, seed=0,
        mitigate=outer.fold_hook(options, 0, 0, inner_splits=3, seed=0),
    )["logreg"]  # fmt: skip
    again = pd.DataFrame(fold.mitigated["threshold"]["predictions"])
    first = table[table["fold"] == 0].reset_index(drop=True)
    assert again["y_pred"].tolist() == first["y_pred"].tolist()
    assert np.allclose(again["score"], first["score"])


def test_a_method_that_does_not_apply_is_reported_not_fatal():
    X, y, site = measured_cohort(0.0)
    knn = models.build({"radiomics": list(X.columns)}, "knn", seed=0, k=5)
    folds = pd.Series(np.arange(len(y)) % 5, index=y.index)
    options = outer.Options("site", site, ("knn",), ("reweighing", "group_oversampling"))
    fold = evaluate.evaluate_fold(
        knn, {"knn": [{"clf__n_neighbors": [15]}]}, X, y, folds, 0, seed=0,
        mitigate=outer.fold_hook(options, 0, 0, inner_splits=3, seed=0),
    )["knn"]  # fmt: skip
    assert "does not apply" in fold.mitigated["reweighing"]["error"]
    assert len(fold.mitigated["group_oversampling"]["predictions"]["y_pred"]) == (folds == 0).sum()
    collected = outer.collect([{"knn": fold.to_dict()}], "knn")
    assert isinstance(collected["reweighing"], str)
    assert isinstance(collected["group_oversampling"], pd.DataFrame)


def test_survival_models_get_a_c_index_per_group():
    """Risks that rank one group's survival well and the other's at random: the C-index
    per group says so, and its gap has a CI above zero."""
    table = demo.clinical_table(demo.design(200, seed=SEED), SEED)
    rng = np.random.default_rng(0)
    informative = (table["sex"] == "F").to_numpy()
    risk = np.where(informative, -table["os_months"] + rng.normal(0, 5, 200), rng.normal(size=200))
    predictions = pd.DataFrame(
        {"patient_id": table["patient_id"], "repeat": 0, "fold": 0, "time": table["os_months"],
         "event": table["death"], "score": risk}
    )  # fmt: skip
    groups = table.set_index("patient_id")[["sex"]]
    per_group, gaps = survival_performance.survival_summary(predictions, groups, n_boot=100)
    c_index = per_group[per_group["metric"] == "c_index"].set_index("group")
    assert c_index.loc["F", "value"] > 0.8 and abs(c_index.loc["M", "value"] - 0.5) < 0.15
    assert c_index.loc["F", "low"] <= c_index.loc["F", "value"] <= c_index.loc["F", "high"]
    events = per_group[per_group["metric"] == "events"].set_index("group")["value"]
    assert events.sum() == table["death"].sum() * 2  # the groups and the overall row
    gap = gaps.set_index("metric").loc["c_index_difference"]
    assert gap["value"] > 0.3 and gap["low"] > 0.1


def test_the_c_index_per_group_pairs_patients_of_the_same_outer_fold_only():
    """Each fold's risks on a scale of its own (a Cox model in one fold, a forest in the
    next) leave every group's C-index and the gap as they are."""
    table = demo.clinical_table(demo.design(200, seed=SEED), SEED)
    risk = -table["os_months"].to_numpy() + np.random.default_rng(1).normal(0, 20, 200)
    fold = np.arange(200) % 4
    predictions = pd.DataFrame(
        {"patient_id": table["patient_id"], "repeat": 0, "fold": fold, "time": table["os_months"],
         "event": table["death"], "score": risk}
    )  # fmt: skip
    groups = table.set_index("patient_id")[["sex"]]
    same = survival_performance.survival_summary(predictions, groups, n_boot=50)
    scaled = predictions.assign(score=risk * 10.0**fold + 1000 * fold)
    other = survival_performance.survival_summary(scaled, groups, n_boot=50)
    for a, b in zip(same, other, strict=True):
        pd.testing.assert_frame_equal(a, b)
    one_fold = survival_performance.survival_summary(scaled.assign(fold=0), groups, n_boot=0)
    c_index = lambda t: t[t["metric"] == "c_index"].set_index("group")["value"]  # noqa: E731
    assert (abs(c_index(one_fold[0]) - c_index(same[0])) > 0.05).all()  # across folds misleads
