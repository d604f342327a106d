"""The reporting checklist is filled in from the run's own numbers."""

import pandas as pd
import yaml

from radiotx import checklist, report


def metric(endpoint, pipeline, classifier, n=100, positive=20, features=50, **extra):
    return {
        "endpoint": endpoint, "pipeline": pipeline, "classifier": classifier,
        "modalities": pipeline.split("+"), "n_patients": n, "n_positive": positive,
        "n_features_in": features, "primary_metric": "roc_auc",
        "pooled": {"roc_auc": 0.71}, "ci95": {"roc_auc": [0.6, 0.8]}, **extra,
    }  # fmt: skip


def test_checklist_answers_from_the_run(repo_root):
    config = yaml.safe_load((repo_root / "config/config.yaml").read_text(encoding="utf-8"))
    calibration = {"recalibrated": {"calibration_slope": 0.93, "calibration_intercept": -0.04}}
    metrics = [
        metric("response", "radiomics", "logreg"),
        metric("response", "radiomics", "selected", calibration=calibration),
        metric("response", "clinical", "logreg", features=8),
    ]
    availability = pd.DataFrame(
        {"radiomics": [True, True, False], "clinical": [True, True, True]},
        index=pd.Index(["P1", "P2", "P3"], name="patient_id"),
    )
    manifest = {
        "packages": {"radiotx": "0.1.0"}, "git": {"commit": "a" * 40, "dirty": True},
        "config_sha256": "c" * 64, "inputs_sha256": "d" * 64,
    }  # fmt: skip
    items = checklist.items(config, metrics, availability, manifest)
    rows = {item: answer for item, _, answer in items}
    # the selected model is the headline of its pipeline; the only model of the other
    assert rows["Events per candidate feature"] == (
        "response / clinical: 20 / 8 = 2.50; response / radiomics: 20 / 50 = 0.40 "
        "(below 1: high risk of overfitting)"
    )
    assert rows["Calibration"].endswith("response / radiomics: slope 0.93, intercept -0.04")
    assert "2 of 3 patients have every modality" in rows["Missing data"]
    assert rows["Hold-out / test set"].startswith("none: no patients were locked away")
    assert "5 stratified outer folds, 3 inner folds" in rows["Validation"]
    assert rows["Fairness and subgroups"].startswith("audited by sex, age, site")
    assert (
        "mitigation by site (reweighing, group_oversampling, threshold)"
        in (rows["Fairness and subgroups"])
    )
    config["cv"]["leave_out"] = "site"
    config["fairness"]["attributes"] = {}
    rows = {
        item: answer for item, _, answer in checklist.items(config, metrics, availability, manifest)
    }
    assert "one site left out in each" in rows["Validation"]
    assert rows["Fairness and subgroups"].startswith("not assessed")
    assert "git aaaaaaaaaaaa (uncommitted changes)" in rows["Software and reproducibility"]
    assert (
        rows["Radiomics extraction"] == "pyradiomics, parameter file config/radiomics/ct_demo.yaml"
    )
    html = report.html_page(checklist.markdown(items), "checklist")
    assert html.count("<tr>") == len(items) + 1


def test_cohort_page_counts_patients_and_patterns():
    availability = pd.DataFrame(
        {"radiomics": [True, False, True], "rnaseq": [True, False, False]},
        index=pd.Index(["P1", "P2", "P3"], name="patient_id"),
    )
    qa = pd.DataFrame(
        {"status": ["ok", "error"], "problem": ["", "mask is empty"], "voxels": [812.0, 0.0]},
        index=pd.Index(["P1", "P3"], name="patient_id"),
    )
    text = report.cohort_markdown(availability, {"radiomics": qa})
    assert "| radiomics | 2 |" in text and "| rnaseq | 1 |" in text
    assert "| radiomics+rnaseq | 1 |" in text and "| none | 1 |" in text
    assert "ok: 1, error: 1" in text and "| P3 | error | mask is empty | 0 |" in text
