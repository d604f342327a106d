"""Small studies of their own, each run end to end with one option of the workflow changed
(leave-one-site-out, a hold-out set, a permutation test, a stability filter, an expression
matrix). They sit apart from test_workflow.py's shared study so that the test workers can
run them beside it."""

import json
from pathlib import Path

import joblib
import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import roc_auc_score
from test_workflow import (
    AUDIT,
    job_counts,
    snakemake,
    write_study,
)

from radiotx import splits
from radiotx.features import read_rows, rnaseq

pytestmark = pytest.mark.workflow


def test_shap_explains_the_selected_fusion_on_out_of_fold_patients(small_study):
    model = small_study / "results/models/response/fusion/selected"
    patients = pd.read_csv(model / "shap/patients.tsv", sep="\t", dtype={"patient_id": str})
    predictions = pd.read_csv(model / "predictions.tsv", sep="\t", dtype={"patient_id": str})
    fold_of = predictions.set_index("patient_id")["fold"]
    assert set(patients["patient_id"]) == set(fold_of.index)  # each patient by its own fold
    assert (patients["fold"].to_numpy() == fold_of.loc[patients["patient_id"]].to_numpy()).all()
    ranked = pd.read_csv(model / "shap/importance.tsv", sep="\t")
    assert ranked["mean_abs_shap"].is_monotonic_decreasing and len(ranked)
    stable = pd.read_csv(model / "shap/stability.tsv", sep="\t")
    assert len(stable) <= 5 and (stable["n_folds"] == 3).all()
    assert (model / "shap/summary.png").stat().st_size > 10_000
    # single-modality pipelines have one classifier, so no "selected" to explain
    assert not (small_study / "results/models/response/clinical/logreg/shap").exists()
    markdown = (small_study / "results/summary.md").read_text(encoding="utf-8")
    assert "| fusion / selected |" in markdown.split("### Explanations (SHAP)", 1)[1]
    run = json.loads((small_study / "results/mlflow/last_run.json").read_text(encoding="utf-8"))
    client = mlflow.MlflowClient(run["tracking_uri"])
    logged = client.list_artifacts(run["child_run_ids"]["fusion/selected"], "shap")
    assert {Path(a.path).name for a in logged} == {
        "importance.tsv", "patients.tsv", "stability.tsv", "summary.png",
    }  # fmt: skip


def test_leave_one_site_out(tmp_path):
    write_study(
        tmp_path,
        n_patients=36,
        few_rnaseq=True,
        pipelines={"clinical": ["clinical"]},
        cv={"outer_folds": 3, "inner_folds": 3, "bootstrap": 100, "permutations": 0,
            "leave_out": "site"},
        fairness=AUDIT,
    )  # fmt: skip
    config_path = tmp_path / "config" / "config.yaml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    config["model"]["balancers"] = ["class_weight"]  # a site's few positives: no SMOTE
    config["fairness"]["mitigate"]["attribute"] = "sex"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    snakemake(tmp_path)
    table = splits.read(tmp_path / "results/splits/response.tsv").set_index("patient_id")
    groups = pd.read_csv(tmp_path / "results/fairness/subgroups.tsv", sep="\t", index_col=0)
    site = groups["site"].reindex(table.index)
    # fold k is the k-th site: no model is scored on a site it was trained on
    assert (table["fold"] == site.map({"A": 0, "B": 1, "C": 2})).all()
    predictions = pd.read_csv(
        tmp_path / "results/models/response/clinical/logreg/predictions.tsv", sep="\t"
    )
    assert predictions.groupby("fold")["patient_id"].count().to_dict() == (
        site.value_counts().rename(index={"A": 0, "B": 1, "C": 2}).sort_index().to_dict()
    )
    mitigation = pd.read_csv(tmp_path / "results/fairness/mitigation.tsv", sep="\t")
    assert set(mitigation["method"]) == {"none", "reweighing", "group_oversampling", "threshold"}
    summary = (tmp_path / "results/summary.md").read_text(encoding="utf-8")
    assert "## Leave-one-site-out folds" in summary and "| response | 2 | C |" in summary
    # a wrong number of folds is named with its fix before any model runs
    config["cv"]["outer_folds"] = 4
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    failed = snakemake(
        tmp_path, "work/splits/response.tsv", "--forceall", "--config", "replace_results=true",
        check=False,
    )  # fmt: skip
    assert failed.returncode != 0 and "set cv.outer_folds to 3" in failed.stderr


def test_expression_matrix_with_a_sample_excluded_by_qc(tmp_path):
    """One counts matrix instead of per-patient files; a sample below the library-size
    threshold is excluded and its patient kept without RNA-seq."""
    config = write_study(tmp_path, n_patients=12)
    snakemake(tmp_path, "resources/demo/ground_truth.json")
    sheet = pd.read_csv(tmp_path / config["patients"], sep="\t", keep_default_na=False)
    files = sheet.loc[sheet["rnaseq"] != ""].set_index("patient_id")["rnaseq"]
    matrix = pd.DataFrame(
        {
            p: pd.read_csv(tmp_path / f, sep="\t", index_col="gene")["count"]
            for p, f in files.items()
        }
    )
    low = files.index[1]
    matrix[low] = matrix[low] // 1000  # a failed library
    matrix.to_csv(tmp_path / "counts.tsv.gz", sep="\t")
    sheet["rnaseq"] = ""  # the matrix replaces the per-patient files
    sheet.to_csv(tmp_path / config["patients"], sep="\t", index=False)
    config["rnaseq"]["matrix"] = "counts.tsv.gz"
    config["rnaseq"]["qc"].update(min_library_size=100_000, on_fail="exclude")
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")

    counts = job_counts(snakemake(tmp_path, "-n", "work/cohort.h5mu").stdout)
    assert counts["rnaseq_split"] == 1 and counts["rnaseq"] == len(files)
    snakemake(tmp_path, "work/cohort.h5mu")  # as the README shows it
    snakemake(tmp_path, "work/qa/rnaseq_qc.png")
    qc = pd.read_csv(tmp_path / "work/qa/rnaseq.tsv", sep="\t", index_col="patient_id")
    assert qc.loc[low, "status"] == "excluded" and "min_library_size" in qc.loc[low, "problem"]
    assert (qc.drop(index=low)["status"] == "ok").all()
    availability = pd.read_csv(tmp_path / "work/availability.tsv", sep="\t", index_col=0)
    assert not availability.loc[low, "rnaseq"] and availability.loc[low, "clinical"]
    assert availability.loc[files.index.drop(low), "rnaseq"].all()
    assert (tmp_path / "work/qa/rnaseq_qc.png").stat().st_size > 10_000
    # the same features as from the per-patient files
    first = files.index[0]
    direct = rnaseq.extract(tmp_path / files[first], first)
    from_matrix = read_rows([tmp_path / f"work/features/rnaseq/{first}.parquet"])
    np.testing.assert_allclose(from_matrix.loc[first, direct.index].to_numpy(), direct.to_numpy())


def test_permutation_test_reruns_the_selected_procedure(tmp_path):
    write_study(
        tmp_path,
        n_patients=30,
        pipelines={"rnaseq": ["rnaseq"]},
        cv={"outer_folds": 3, "inner_folds": 3, "bootstrap": 100, "permutations": 3},
    )
    config_path = tmp_path / "config" / "config.yaml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    config["model"].update(classifiers=["logreg", "svm"], balancers=["class_weight"])
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    counts = job_counts(snakemake(tmp_path, "-n").stdout)
    # each permutation job re-runs every classifier's procedure; each model gets its test
    assert counts["permutation"] == 3 and counts["permutation_test"] == 3
    assert counts["model"] == 3  # logreg, svm and selected
    snakemake(tmp_path)
    test = json.loads(
        (tmp_path / "results/models/response/rnaseq/selected/permutation.json").read_text(
            encoding="utf-8"
        )
    )
    assert test["n_permutations"] == 3 and len(set(test["null"])) == 3
    # the planted signal beats every shuffle: the smallest p-value 3 permutations allow
    assert test["p_value"] == 0.25 and test["observed"] > max(test["null"])
    assert test["null_mean"] < test["observed"] - 0.2
    summary = pd.read_csv(tmp_path / "results/summary.tsv", sep="\t").set_index("classifier")
    assert summary.loc["selected", "permutation_p"] == 0.25
    assert summary["permutation_p"].notna().all()
    assert "| 0.250 |" in (tmp_path / "results/summary.md").read_text(encoding="utf-8")


def test_repeated_outer_cv_and_a_locked_hold_out_set(tmp_path):
    write_study(
        tmp_path,
        n_patients=48,
        few_rnaseq=True,
        pipelines={"clinical": ["clinical"]},
        cv={
            "outer_folds": 3, "inner_folds": 3, "bootstrap": 100, "permutations": 0,
            "repeats": 2, "holdout": 0.25, "learning_curve": [0.5],
        },
        fairness=dict(AUDIT, mitigate={"attribute": ""}),  # the shift tests only
    )  # fmt: skip
    config_path = tmp_path / "config" / "config.yaml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    # half of a 24-patient training set is too few minority patients for SMOTE
    config["model"]["balancers"] = ["class_weight"]
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    counts = job_counts(snakemake(tmp_path, "-n").stdout)
    assert counts["outer_fold"] == 6 and counts["holdout"] == 1
    assert counts["learning_curve"] == 1
    snakemake(tmp_path)
    table = splits.read(tmp_path / "results/splits/response.tsv")
    locked = set(splits.holdout_patients(table))
    assert len(locked) == 12
    model = tmp_path / "results/models/response/clinical/logreg"
    predictions = pd.read_csv(model / "predictions.tsv", sep="\t", dtype={"patient_id": str})
    # the hold-out patients never enter the CV; the others are scored once per repeat
    assert not locked & set(predictions["patient_id"])
    assert predictions.groupby("patient_id")["repeat"].nunique().eq(2).all()
    assert len(predictions) == 2 * 36
    held = pd.read_csv(model / "holdout_predictions.tsv", sep="\t", dtype={"patient_id": str})
    assert set(held["patient_id"]) == locked
    metrics = json.loads((model / "holdout.json").read_text(encoding="utf-8"))
    assert metrics["n_patients"] == 12
    assert metrics["metrics"]["roc_auc"] == pytest.approx(
        roc_auc_score(held["y_true"], held["score"])
    )
    summary = pd.read_csv(tmp_path / "results/summary.tsv", sep="\t").iloc[0]
    assert summary["holdout_n"] == 12
    assert summary["holdout_roc_auc"] == pytest.approx(metrics["metrics"]["roc_auc"])
    assert "Hold-out AUC" in (tmp_path / "results/summary.md").read_text(encoding="utf-8")
    # the development and hold-out patients are compared for covariate shift
    shift = pd.read_csv(tmp_path / "results/fairness/shift_classifier.tsv", sep="\t")
    held_out = shift[shift["comparison"] == "response: hold-out vs development"]
    assert held_out[["n_a", "n_b"]].values.tolist() == [[12, 36]]
    curve = pd.read_csv(tmp_path / "results/models/response/clinical/learning_curve.tsv", sep="\t")
    # half of each 24-patient outer training set, then all of it
    assert curve["n_train"].tolist() == [12.0, 24.0] and curve["score"].between(0, 1).all()


def test_stability_filter_runs_inside_the_folds(tmp_path):
    write_study(
        tmp_path,
        n_patients=30,
        few_rnaseq=True,
        pipelines={"radiomics": ["radiomics"]},
        cv={"outer_folds": 3, "inner_folds": 3, "bootstrap": 100, "permutations": 0},
    )
    config_path = tmp_path / "config" / "config.yaml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    config["radiomics"]["stability"] = {
        "enabled": True,
        "perturbations": ["original", "erode1xy", "dilate1xy"],
        "threshold": 0.8,
        "filter": True,
    }
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    snakemake(tmp_path)
    table = pd.read_csv(tmp_path / "results/qa/radiomics_stability.tsv", sep="\t", index_col=0)
    assert {"icc", "n_patients", "stable"} <= set(table.columns)
    assert 0 < table["stable"].sum() < len(table)
    model = joblib.load(tmp_path / "results/models/response/radiomics/logreg/model.joblib")
    block = model.estimator.named_steps["prep"].named_transformers_["radiomics"]
    kept = block.named_steps["stability"].support_
    assert 0 < kept.sum() < len(kept)
