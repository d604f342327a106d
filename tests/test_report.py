"""Tests for ROC figures and the ranked model summary."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from radiotx import plots, report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_model_dir(root: Path, endpoint: str, pipeline: str, classifier: str, signal: float):
    """A model directory like the workflow writes, with random scores of a given strength."""
    rng = np.random.default_rng(zlib.crc32(f"{endpoint}/{pipeline}/{classifier}".encode()))
    y = rng.permutation(np.r_[np.ones(24, int), np.zeros(36, int)])
    score = signal * y + rng.normal(size=y.size)
    folds = np.arange(y.size) % 3 + 1
    preds = pd.DataFrame(
        {
            "patient_id": [f"P{i:03d}" for i in range(y.size)],
            "fold": folds,
            "y_true": y,
            "score": score,
            "y_pred": (score > signal / 2).astype(int),
        }
    )
    fold_aucs = [roc_auc_score(y[folds == k], score[folds == k]) for k in (1, 2, 3)]
    auc = roc_auc_score(y, score)
    summary = {"roc_auc": auc, "balanced_accuracy": 0.7, "sensitivity": 0.6, "specificity": 0.8}
    metrics = {
        "endpoint": endpoint,
        "pipeline": pipeline,
        "classifier": classifier,
        "modalities": ["radiomics", "rnaseq"] if "fusion" in pipeline else [pipeline],
        "n_patients": int(y.size),
        "n_positive": int(y.sum()),
        "n_features_in": 40,
        "folds": [
            {
                "fold": k,
                "n_test": int((folds == k).sum()),
                "roc_auc": fold_aucs[k - 1],
                "balanced_accuracy": 0.7,
                "sensitivity": 0.6,
                "specificity": 0.8,
                "best_params": {"clf__C": 0.1 * k, "select__k": 10},
            }
            for k in (1, 2, 3)
        ],
        "pooled": summary,
        "mean": {**summary, "roc_auc": float(np.mean(fold_aucs))},
        "sd": {m: 0.05 for m in summary} | {"roc_auc": float(np.std(fold_aucs, ddof=1))},
        "ci95": {m: [v - 0.1, min(v + 0.1, 1.0)] for m, v in summary.items()},
    }
    out = root / endpoint / pipeline / classifier
    out.mkdir(parents=True)
    (out / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    preds.to_csv(out / "predictions.tsv", sep="\t", index=False)
    pd.DataFrame({"fold": [1, 2, 3], "modality": pipeline, "feature": ["f1", "f2", "f1"]}).to_csv(
        out / "selected_features.tsv", sep="\t", index=False
    )
    return out


@pytest.fixture
def model_dirs(tmp_path):
    return [
        make_model_dir(tmp_path, "response", "radiomics", "logreg", signal=0.3),
        make_model_dir(tmp_path, "response", "early_fusion", "rf", signal=2.0),
        make_model_dir(tmp_path, "response", "rnaseq", "logreg", signal=1.0),
        make_model_dir(tmp_path, "survival2y", "clinical", "logreg", signal=0.8),
    ]


@pytest.fixture
def table(model_dirs):
    return report.summary_table(report.load_metrics(model_dirs))


def test_load_metrics_reads_each_directory(model_dirs):
    metrics = report.load_metrics(model_dirs)
    assert [m["pipeline"] for m in metrics] == ["radiomics", "early_fusion", "rnaseq", "clinical"]


def test_summary_ranks_within_endpoint_by_pooled_auc(table):
    response = table[table["endpoint"] == "response"]
    assert list(response["pipeline"]) == ["early_fusion", "rnaseq", "radiomics"]
    assert list(response["rank"]) == [1, 2, 3]
    assert response["roc_auc"].is_monotonic_decreasing
    assert table.loc[table["endpoint"] == "survival2y", "rank"].tolist() == [1]


def test_summary_columns(table):
    for metric in report.METRICS:
        for suffix in ("", "_mean", "_sd", "_ci_low", "_ci_high"):
            assert f"{metric}{suffix}" in table.columns
    fusion = table.set_index("pipeline").loc["early_fusion"]
    assert fusion["modalities"] == "radiomics,rnaseq"
    assert fusion["n_patients"] == 60
    assert fusion["n_positive"] == 24


def test_ties_broken_by_balanced_accuracy():
    def fake(name, auc, bacc):
        return {
            "endpoint": "e",
            "pipeline": name,
            "classifier": "c",
            "pooled": {"roc_auc": auc, "balanced_accuracy": bacc},
        }

    table = report.summary_table([fake("a", 0.7, 0.6), fake("b", 0.7, 0.65), fake("c", None, 0.9)])
    assert list(table["pipeline"]) == ["b", "a", "c"]
    assert math.isnan(table["roc_auc"].iloc[-1])


def test_ci_and_mean_sd_formatting():
    assert report.format_ci(0.8123, 0.7249, 0.8851) == "0.81 [0.72, 0.89]"
    assert report.format_ci(0.8, float("nan"), 0.9) == "0.80"
    assert report.format_mean_sd(0.8012, 0.0534) == "0.80 ± 0.05"
    assert report.format_mean_sd(float("nan"), float("nan")) == report.MISSING


def test_write_summary(table, tmp_path):
    tsv, md = tmp_path / "out" / "summary.tsv", tmp_path / "out" / "summary.md"
    report.write_summary(table, tsv, md)

    back = pd.read_csv(tsv, sep="\t")
    assert list(back.columns) == list(table.columns)
    assert len(back) == len(table)

    text = md.read_text(encoding="utf-8")
    assert text.startswith("# ")
    assert "bootstrap" in text and "mean ± SD" in text
    assert "## response" in text and "## survival2y" in text
    best = table.iloc[0]
    auc = report.format_ci(best["roc_auc"], best["roc_auc_ci_low"], best["roc_auc_ci_high"])
    row = next(line for line in text.splitlines() if "early_fusion" in line)
    assert row.startswith("| 1 | early_fusion | rf | 60 | 24 | " + auc)
    table_lines = [line for line in text.splitlines() if line.startswith("|")]
    # Two header lines per endpoint plus one line per model.
    assert len(table_lines) == 2 * 2 + len(table)
    assert {line.count("|") for line in table_lines} == {len(report._MD_HEADER) + 1}


def test_plot_roc_writes_png(model_dirs, tmp_path):
    preds = pd.read_csv(model_dirs[1] / "predictions.tsv", sep="\t")
    out = tmp_path / "figs" / "roc.png"
    plots.plot_roc(preds, out, title="early_fusion / rf")
    data = out.read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert len(data) > 10_000


def test_plot_roc_tolerates_single_class_fold(tmp_path):
    preds = pd.DataFrame(
        {"fold": [1, 1, 2, 2, 2], "y_true": [1, 1, 0, 1, 0], "score": [0.9, 0.8, 0.1, 0.7, 0.3]}
    )
    out = tmp_path / "roc.png"
    plots.plot_roc(preds, out)
    assert out.read_bytes().startswith(PNG_MAGIC)


def test_curves_average_the_folds_so_each_fold_keeps_its_own_scale(tmp_path):
    """Each outer fold's scores on a scale of its own (decision values in one fold,
    probabilities in the next) leave the averaged ROC and precision-recall curves as they
    are; thresholding every fold's scores together would not."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    fold = np.arange(200) % 4
    score = y + rng.normal(0, 1, 200)
    same = pd.DataFrame({"fold": fold, "y_true": y, "score": score})
    scaled = same.assign(score=score * 10.0**fold + 3 * fold)
    positive = same["y_true"] == 1
    roc = [plots.mean_roc(p, positive, p["score"]) for p in (same, scaled)]
    np.testing.assert_allclose(roc[0], roc[1])
    pr = [plots.mean_precision_recall(p) for p in (same, scaled)]
    np.testing.assert_allclose(pr[0][0], pr[1][0])
    assert pr[0][1] == pytest.approx(pr[1][1])
    assert 0.7 < pr[0][1] < 1 and roc[0][-1] == pytest.approx(1.0)
    classes = pd.DataFrame({"fold": fold, "y_true": rng.integers(0, 3, 200)})
    for k in range(3):
        classes[f"score_{k}"] = (classes["y_true"] == k) + rng.normal(0, 1, 200)
    plots.plot_roc(classes, tmp_path / "classes.png")  # one averaged curve per class
    assert (tmp_path / "classes.png").read_bytes().startswith(PNG_MAGIC)


def test_report_does_not_need_mlflow():
    code = "import sys, radiotx.report; sys.exit('mlflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_summary_warns_that_the_best_row_is_optimistic(tmp_path):
    dirs = [
        make_model_dir(tmp_path, "response", "radiomics", "logreg", signal=0.3),
        make_model_dir(tmp_path, "response", "radiomics", "rf", signal=1.5),
        make_model_dir(tmp_path, "response", "radiomics", "selected", signal=1.0),
        make_model_dir(tmp_path, "survival2y", "clinical", "logreg", signal=0.8),
    ]
    table = report.summary_table(report.load_metrics(dirs))
    markdown = report.summary_markdown(table)
    response = markdown.split("## response")[1].split("## survival2y")[0]
    assert "The best of these 3 rows is optimistic" in response
    assert "radiomics / rf" in response  # the top row, named
    selected = table[table["classifier"] == "selected"].iloc[0]
    assert f"radiomics: {selected['roc_auc']:.2f}" in response
    assert "different patients" not in response
    # a table of one model has nothing to be optimistic about
    assert "optimistic" not in markdown.split("## survival2y")[1]
    # rows over different patients (a modality missing for some) are named as such
    table.loc[table["classifier"] == "rf", "n_patients"] = 48
    response = report.summary_markdown(table).split("## response")[1].split("## survival2y")[0]
    assert "different patients (n = 48 to 60" in response
