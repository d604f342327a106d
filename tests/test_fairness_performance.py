"""Subgroup performance and between-group disparities of out-of-fold predictions."""

import time

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference
from scipy.special import expit
from sklearn.metrics import roc_auc_score

from radiotx.fairness import performance

N_BOOT = 40  # enough for the CI checks; the fairlearn bootstrap costs about 60 ms a replicate


def cohort(n=200, seed=0, shift=0.0, repeats=1, decimals=None):
    """Out-of-fold predictions of n patients (30 % positives, groups A and B about half
    each) from a model that ranks well; ``shift`` raises group B's log-odds."""
    rng = np.random.default_rng(seed)
    ids = [f"P{i:03d}" for i in range(n)]
    group = pd.Series(np.where(rng.random(n) < 0.5, "A", "B"), index=ids, name="sex")
    y = rng.binomial(1, 0.3, n)
    parts = []
    for repeat in range(repeats):
        log_odds = -1.5 + 3.0 * y + rng.normal(0, 1, n) + shift * (group.to_numpy() == "B")
        score = expit(log_odds)
        if decimals is not None:
            score = np.round(score, decimals)
        parts.append(
            pd.DataFrame(
                {
                    "patient_id": ids,
                    "repeat": repeat,
                    "fold": rng.integers(0, 5, n),
                    "y_true": y,
                    "score": score,
                    "y_pred": (score >= 0.5).astype(int),
                }
            )
        )
    return pd.concat(parts, ignore_index=True), group


def value(table, metric, group=None):
    rows = table[table["metric"] == metric]
    if group is not None:
        rows = rows[rows["group"] == group]
    assert len(rows) == 1
    return rows.iloc[0]


def test_shifted_scores_for_one_group_give_large_disparities():
    predictions, groups = cohort(shift=2.0)
    gaps = performance.disparities(predictions, groups, attribute="sex")
    assert list(gaps.columns) == ["attribute", "metric", "value", "low", "high", "groups", "note"]
    assert list(gaps["metric"]) == list(performance.DISPARITIES)
    for metric in ("equalized_odds_difference", "demographic_parity_difference"):
        row = value(gaps, metric)
        assert row["value"] > 0.3
        assert 0 < row["low"] <= row["value"] <= row["high"]
    assert value(gaps, "equalized_odds_difference")["groups"] == "A, B"

    table = performance.subgroup_table(predictions, groups, attribute="sex", n_boot=N_BOOT)
    rate_a = value(table, "selection_rate", "A")["value"]
    rate_b = value(table, "selection_rate", "B")["value"]
    assert rate_b > rate_a + 0.3
    # the shift moves every B score alike, so ranking within each group is unharmed
    assert value(table, "roc_auc", "B")["value"] > 0.85
    assert value(table, "calibration_intercept", "B")["value"] > 0.2


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_unbiased_model_has_a_small_equalized_odds_difference(seed):
    predictions, groups = cohort(seed=seed)
    gaps = performance.disparities(predictions, groups, attribute="sex")
    odds = value(gaps, "equalized_odds_difference")
    assert odds["low"] < 0.15
    assert odds["value"] < 0.25
    assert value(gaps, "auc_difference")["low"] < 0.05


def fold_wise_auc(predictions):
    """scikit-learn's AUC of each outer fold, averaged with weights n_pos * n_neg."""
    aucs, pairs = [], []
    for _, fold in predictions.groupby(["repeat", "fold"]):
        n_pos = fold["y_true"].sum()
        if 0 < n_pos < len(fold):
            aucs.append(roc_auc_score(fold["y_true"], fold["score"]))
            pairs.append(n_pos * (len(fold) - n_pos))
    return np.average(aucs, weights=pairs)


def test_point_estimates_equal_fairlearn_and_sklearn():
    predictions, groups = cohort(shift=1.0, seed=7, decimals=2)  # rounded: tied scores
    gaps = performance.disparities(predictions, groups, attribute="sex")
    sensitive = predictions["patient_id"].map(groups)
    y, y_pred = predictions["y_true"], predictions["y_pred"]
    expected_odds = equalized_odds_difference(y, y_pred, sensitive_features=sensitive)
    expected_parity = demographic_parity_difference(y, y_pred, sensitive_features=sensitive)
    assert value(gaps, "equalized_odds_difference")["value"] == expected_odds
    assert value(gaps, "demographic_parity_difference")["value"] == expected_parity
    aucs = [fold_wise_auc(predictions[sensitive == g]) for g in "AB"]
    assert value(gaps, "auc_difference")["value"] == pytest.approx(abs(aucs[0] - aucs[1]))

    table = performance.subgroup_table(predictions, groups, attribute="sex", n_boot=0)
    assert value(table, "roc_auc", "A")["value"] == pytest.approx(aucs[0])
    in_a = sensitive == "A"
    assert value(table, "n", "A")["value"] == in_a.sum()
    assert value(table, "prevalence", "A")["value"] == pytest.approx(y[in_a].mean())
    brier = np.mean((predictions["score"][in_a] - y[in_a]) ** 2)
    assert value(table, "brier", "A")["value"] == pytest.approx(brier)
    assert value(table, "sensitivity", "overall")["value"] == pytest.approx(y_pred[y == 1].mean())


def test_disparities_are_fast():
    predictions, groups = cohort()
    start = time.perf_counter()
    performance.disparities(predictions, groups, attribute="sex", n_boot=200)
    assert time.perf_counter() - start < 3


def test_small_group_is_flagged_and_left_out_of_disparities():
    predictions, groups = cohort(shift=2.0)
    groups = groups.copy()
    groups.iloc[:3] = "C"
    table = performance.subgroup_table(predictions, groups, attribute="sex", n_boot=N_BOOT)
    assert list(table.columns) == ["attribute", "group", "metric", "value", "low", "high", "small"]
    assert set(table["group"]) == {"overall", "A", "B", "C"}
    assert len(table) == 4 * len(performance.METRICS)
    assert table.loc[table["group"] == "C", "small"].all()
    assert not table.loc[table["group"] != "C", "small"].any()
    assert value(table, "n", "C")["value"] == 3

    gaps = performance.disparities(predictions, groups, attribute="sex")
    assert (gaps["groups"] == "A, B").all()
    assert gaps["note"].str.contains("C").all()
    assert gaps["value"].notna().all()

    few = performance.disparities(predictions, groups, attribute="sex", min_group=150)
    assert few["value"].isna().all() and few["low"].isna().all()
    assert few["note"].str.contains("fewer than two groups of at least 150 patients").all()


def test_patients_without_a_group_form_the_missing_group():
    predictions, groups = cohort()
    table = performance.subgroup_table(predictions, groups.iloc[10:], attribute="sex", n_boot=0)
    assert value(table, "n", "missing")["value"] == 10
    assert not value(table, "n", "missing")["small"]


def test_single_class_group_gets_nan_auc_not_an_error():
    predictions, groups = cohort()
    groups = groups.copy()
    negatives = predictions.loc[predictions["y_true"] == 0, "patient_id"].iloc[:8]
    groups[negatives] = "C"
    table = performance.subgroup_table(predictions, groups, attribute="sex", n_boot=N_BOOT)
    auc = value(table, "roc_auc", "C")
    assert np.isnan(auc["value"]) and np.isnan(auc["low"]) and np.isnan(auc["high"])
    assert np.isnan(value(table, "sensitivity", "C")["value"])
    assert value(table, "specificity", "C")["value"] >= 0
    assert value(table, "roc_auc", "A")["value"] > 0.8

    gaps = performance.disparities(predictions, groups, attribute="sex")
    assert np.isnan(value(gaps, "auc_difference")["value"])
    assert np.isnan(value(gaps, "sensitivity_difference")["value"])
    assert value(gaps, "specificity_difference")["value"] >= 0


def test_decision_values_give_no_probability_metrics():
    predictions, groups = cohort()
    predictions["score"] = np.log(predictions["score"] / (1 - predictions["score"]))
    with pytest.raises(ValueError, match="probability=False"):
        performance.subgroup_table(predictions, groups, attribute="sex", n_boot=0)
    table = performance.subgroup_table(
        predictions, groups, attribute="sex", n_boot=0, probability=False
    )
    assert table.loc[table["metric"] == "brier", "value"].isna().all()
    assert table.loc[table["metric"] == "calibration_intercept", "value"].isna().all()
    assert value(table, "roc_auc", "overall")["value"] > 0.8


def test_two_repeats_pool_the_rows():
    predictions, groups = cohort(shift=2.0, repeats=2)
    table = performance.subgroup_table(predictions, groups, attribute="sex", n_boot=N_BOOT)
    assert value(table, "n", "overall")["value"] == 200
    assert value(table, "n", "A")["value"] == (groups == "A").sum()
    pooled = predictions.loc[predictions["y_true"] == 1, "y_pred"].mean()
    assert value(table, "sensitivity", "overall")["value"] == pytest.approx(pooled)

    gaps = performance.disparities(predictions, groups, attribute="sex")
    sensitive = predictions["patient_id"].map(groups)
    expected = equalized_odds_difference(
        predictions["y_true"], predictions["y_pred"], sensitive_features=sensitive
    )
    odds = value(gaps, "equalized_odds_difference")
    assert odds["value"] == expected
    assert 0 < odds["low"] <= odds["value"] <= odds["high"]


def test_fairness_summary_covers_every_attribute():
    predictions, groups = cohort(shift=2.0)
    rng = np.random.default_rng(1)
    groups_table = pd.DataFrame(
        {"sex": groups, "site": rng.choice(["S1", "S2", "S3"], len(groups))}, index=groups.index
    )
    subgroups, gaps = performance.fairness_summary(predictions, groups_table, n_boot=10)
    assert set(subgroups["attribute"]) == {"sex", "site"}
    assert len(subgroups) == (3 + 4) * len(performance.METRICS)
    assert len(gaps) == 2 * len(performance.DISPARITIES)
    assert value(gaps[gaps["attribute"] == "site"], "auc_difference")["groups"] == "S1, S2, S3"


def test_auc_per_group_pairs_patients_of_the_same_outer_fold_only():
    """Each fold's scores on a scale of its own (an SVM's decision values in one fold,
    probabilities in the next) leave the groups' AUCs, their CIs and the gaps as they are;
    pooling the pairs across folds would not."""
    predictions, groups = cohort(shift=1.0, seed=3, repeats=2)
    fold = predictions["fold"].to_numpy()
    scaled = predictions.assign(score=predictions["score"] * 10.0**fold + 5 * fold)
    tables = [
        performance.subgroup_table(p, groups, attribute="sex", n_boot=N_BOOT, probability=False)
        for p in (predictions, scaled)
    ]
    auc = [t[t["metric"] == "roc_auc"].reset_index(drop=True) for t in tables]
    pd.testing.assert_frame_equal(auc[0], auc[1])
    assert value(tables[0], "roc_auc", "A")["value"] == pytest.approx(
        fold_wise_auc(predictions[predictions["patient_id"].map(groups) == "A"])
    )
    gaps = [performance.disparities(p, groups, attribute="sex") for p in (predictions, scaled)]
    pd.testing.assert_frame_equal(gaps[0], gaps[1])
    across = roc_auc_score(scaled["y_true"], scaled["score"])
    assert abs(value(tables[1], "roc_auc", "overall")["value"] - across) > 0.05
