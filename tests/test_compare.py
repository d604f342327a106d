"""Paired model comparison: DeLong's test, the corrected resampled t-test, Holm's
adjustment, AUC by availability pattern and the strategies figure."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from radiotx import compare, evaluate, report


def delong_direct(y, a, b):
    """DeLong's variance of AUC(a) - AUC(b) from the per-pair kernel, O(m n)."""
    y = np.asarray(y).astype(bool)

    def components(s):
        x, z = s[y], s[~y]
        psi = (x[:, None] > z[None, :]) + 0.5 * (x[:, None] == z[None, :])
        return psi.mean(), psi.mean(axis=1), psi.mean(axis=0)

    auc_a, v10_a, v01_a = components(np.asarray(a, float))
    auc_b, v10_b, v01_b = components(np.asarray(b, float))
    s10 = np.cov(np.vstack([v10_a, v10_b]))
    s01 = np.cov(np.vstack([v01_a, v01_b]))
    cov = s10 / y.sum() + s01 / (~y).sum()
    return auc_a - auc_b, np.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])


def test_delong_equals_the_pairwise_formula_with_ties():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 80)
    a = np.round(2 * y + rng.normal(size=80), 1)  # rounded: ties
    b = np.round(0.2 * y + rng.normal(size=80), 1)
    result = compare.delong(y, a, b)
    diff, se = delong_direct(y, a, b)
    assert result["diff"] == pytest.approx(diff)
    assert result["se"] == pytest.approx(se)
    assert result["auc_a"] == pytest.approx(roc_auc_score(y, a))
    assert 0 < result["p"] < 0.05  # a is the better score
    same = compare.delong(y, a, a)
    assert same["diff"] == 0 and same["p"] == 1.0


def test_corrected_t_test_agrees_with_the_corrected_interval():
    rng = np.random.default_rng(1)
    for shift in (0.0, 0.03, 0.08):
        d = rng.normal(shift, 0.04, 10)
        p = compare.corrected_t_test(d, 30, 120)
        low, high = evaluate.corrected_t_ci(d, 30, 120, bounds=(-1, 1))
        assert (p < 0.05) == (low > 0 or high < 0)


def predictions(y, score, fold, patients, repeat=0):
    return pd.DataFrame(
        {"patient_id": patients, "repeat": repeat, "fold": fold, "y_true": y, "score": score}
    )


def test_fusion_models_against_every_baseline_holm_adjusted():
    rng = np.random.default_rng(2)
    n = 150
    y = rng.integers(0, 2, n)
    fold = np.arange(n) % 5
    ids = [f"P{i}" for i in range(n)]
    strong = predictions(y, y + rng.normal(0, 0.7, n), fold, ids)
    weak = predictions(y, 0.2 * y + rng.normal(0, 1, n), fold, ids)
    part = predictions(y[:60], y[:60] + rng.normal(0, 3, 60), fold[:60], ids[:60])
    models = {
        ("fusion", "late"): strong,
        ("fusion", "selected"): strong,
        ("a", "logreg"): weak,
        ("a", "selected"): weak,
        ("b", "rf"): part,
    }
    table = compare.comparisons(models, fused={"fusion"})
    assert set(table["baseline"]) == {"a/selected", "b/rf"}  # the headline of each pipeline
    assert len(table) == 4
    vs_a = table[table["baseline"] == "a/selected"].iloc[0]
    assert vs_a["n_patients"] == 150 and vs_a["diff"] > 0.2 and vs_a["delong_p"] < 1e-3
    assert vs_a["t_p"] < 0.05
    vs_b = table[table["baseline"] == "b/rf"].iloc[0]
    assert vs_b["n_patients"] == 60  # compared on the patients both scored
    assert (table["delong_p_holm"] >= table["delong_p"] - 1e-12).all()
    assert (table["t_p_holm"] >= table["t_p"] - 1e-12).all()
    assert list(table.columns) == compare.COMPARISON_COLUMNS
    # the summary's section: a row per test, the strong fusion's DeLong p below 0.001
    markdown = report.comparison_markdown(table)
    assert markdown.count("| fusion / ") == 4 and "| a/selected | 150 |" in markdown
    assert "< 0.001" in markdown
    assert compare.comparisons({("fusion", "late"): strong}, fused={"fusion"}).empty


def test_auc_by_availability_pattern_and_figure(tmp_path):
    rng = np.random.default_rng(3)
    n = 100
    y = rng.integers(0, 2, n)
    ids = [f"P{i}" for i in range(n)]
    availability = pd.DataFrame(
        {"clinical": True, "rnaseq": np.arange(n) >= 40}, index=pd.Index(ids, name="patient_id")
    )
    # informative only where RNA-seq is present
    score = np.where(np.arange(n) >= 40, y + rng.normal(0, 0.5, n), rng.normal(size=n))
    table = compare.by_availability(
        {("fusion", "late"): predictions(y, score, np.arange(n) % 4, ids)}, availability
    )
    rows = table.set_index("pattern")
    assert (
        rows.loc["clinical+rnaseq", "n_patients"] == 60 and rows.loc["clinical", "n_patients"] == 40
    )
    assert rows.loc["clinical+rnaseq", "roc_auc"] > 0.85 > rows.loc["clinical", "roc_auc"]
    metrics = pd.DataFrame(
        {
            "pipeline": ["fusion", "clinical"],
            "model": ["late", "logreg"],
            "fused": [True, False],
            "roc_auc": [0.8, 0.6],
            "ci_low": [0.7, 0.5],
            "ci_high": [0.9, 0.7],
        }
    )
    compare.plot_strategies(metrics, tmp_path / "strategies.png")
    assert (tmp_path / "strategies.png").stat().st_size > 5000


def fold_records(values, n_test=20, n_train=80, metric="roc_auc"):
    return [
        {"repeat": r, "fold": f, metric: v, "n_test": n_test, "n_train": n_train}
        for (r, f), v in values.items()
    ]


def test_selection_cost_pairs_the_folds_and_gives_the_corrected_t_interval():
    keys = [(r, f) for r in range(2) for f in range(5)]
    rng = np.random.default_rng(3)
    chosen = dict(zip(keys, 0.7 + rng.normal(0, 0.05, 10), strict=True))
    fixed = dict(zip(keys, 0.75 + rng.normal(0, 0.05, 10), strict=True))
    fixed[(0, 9)] = 0.99  # a fold the selected model lacks is not paired
    metrics = [
        {"endpoint": "e", "pipeline": "p", "classifier": "selected", "folds": fold_records(chosen)},
        {"endpoint": "e", "pipeline": "p", "classifier": "svm", "folds": fold_records(fixed)},
        {"endpoint": "e", "pipeline": "q", "classifier": "svm", "folds": fold_records(fixed)},
    ]
    table = compare.selection_cost(metrics)
    assert len(table) == 1  # pipeline q has no selected model
    row = table.iloc[0]
    diff = [chosen[k] - fixed[k] for k in keys]
    assert (row.candidate, row.folds, row.metric) == ("svm", 10, "roc_auc")
    assert row.cost == pytest.approx(np.mean(diff))
    assert row.selected == pytest.approx(np.mean(list(chosen.values())))
    assert [row.ci_low, row.ci_high] == pytest.approx(
        evaluate.corrected_t_ci(diff, 20, 80, bounds=(-1, 1))
    )
    assert row.t_p == pytest.approx(compare.corrected_t_test(diff, 20, 80))
    assert row.ci_low < row.cost < row.ci_high
    markdown = compare.selection_cost_markdown(table)
    assert "Cost of model selection" in markdown and "| p | svm | 10 |" in markdown


def test_selection_cost_of_a_survival_endpoint_uses_the_c_index():
    keys = [(0, f) for f in range(4)]
    metrics = [
        {"endpoint": "os", "pipeline": "p", "classifier": name, "primary_metric": "c_index",
         "folds": fold_records(dict(zip(keys, values, strict=True)), metric="c_index")}
        for name, values in [("selected", [0.6, 0.62, 0.58, 0.61]), ("rsf", [0.6] * 4)]
    ]  # fmt: skip
    row = compare.selection_cost(metrics).iloc[0]
    assert row.metric == "c_index" and row.cost == pytest.approx(0.0025)
    assert "C-index" in compare.selection_cost_markdown(compare.selection_cost(metrics))


def test_delong_within_folds_ignores_a_shift_of_scale_between_folds():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 120)
    fold = np.repeat([0, 1, 2, 3], 30)
    a = y + rng.normal(size=120)
    b = y + rng.normal(size=120)
    plain = compare.delong(y, a, b)
    one_fold = compare.delong(y, a, b, np.zeros(120))
    assert one_fold == pytest.approx(plain)  # one fold: the plain test
    shifted = a + 5 * fold  # the same model's scores, a scale per fold
    within = compare.delong(y, a, shifted, fold)
    assert within["diff"] == pytest.approx(0) and within["p"] == 1.0
    assert within["auc_a"] == pytest.approx(evaluate.within_fold_auc(y, a, fold))
    assert compare.delong(y, a, shifted)["p"] < 0.05  # pairs across folds see a difference
    # a real difference keeps a standard error close to the plain test's
    folded = compare.delong(y, a, b, fold)
    assert folded["se"] == pytest.approx(plain["se"], rel=0.3)
