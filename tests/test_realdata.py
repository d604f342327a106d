"""Model jobs on real patients: the NSCLC Radiogenomics cohort (precomputed features).

The data are read from ../shared/data/nsclc-radiogenomics (or $RADIOTX_DATA) and never copied
into the repository; these tests skip when the folder is absent. The expression matrix was
log-transformed and z-scored per gene across all 130 patients by a third party before any
split: unsupervised, label-free, but cohort-level, so results on it carry that caveat.
"""

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from radiotx import cohort, experiment, splits

pytestmark = pytest.mark.realdata

DATA = Path(
    os.environ.get(
        "RADIOTX_DATA",
        Path(__file__).resolve().parents[2] / "shared" / "data" / "nsclc-radiogenomics",
    )
)
if not (DATA / "clinical.csv").exists():
    pytest.skip(f"real NSCLC data not found at {DATA}", allow_module_level=True)

SETTINGS = experiment.Settings(seed=42, inner_folds=3, k_features=(10, 50), n_boot=500)


@pytest.fixture(scope="module")
def nsclc():
    """The real cohort as radiotx's MuData: radiomics (60), expression (130), clinical (211)."""
    table = cohort.read_clinical(DATA / "clinical.csv", id_column="Case ID")
    expression = pd.read_csv(DATA / "expression_log_zscore.csv", index_col=0).T
    radiomics = pd.read_csv(DATA / "radiomics_features.csv", index_col="patient_id")
    clinical = cohort.encode_clinical(
        table,
        numeric=["Age at Histological Diagnosis", "Pack Years"],
        categorical=["Gender", "Smoking status"],
    )
    histology = table["Histology "].where(
        table["Histology "] != "NSCLC NOS (not otherwise specified)"
    )
    table = table.assign(histology=histology)
    labels = {
        "squamous": cohort.endpoint_labels(table, "histology", "Squamous cell carcinoma"),
        "egfr": cohort.endpoint_labels(table, "EGFR mutation status", "Mutant"),
    }
    mdata = cohort.build(
        {"radiomics": radiomics, "rnaseq": expression, "clinical": clinical}, labels
    )
    return mdata


def run(mdata, endpoint, pipeline, modalities, tmp_path, labels=None, seed=42):
    if labels is not None:
        mdata = mdata.copy()
        mdata.obs[endpoint] = labels
    available = mdata.obs[[f"has_{m}" for m in modalities]].all(axis=1)
    folds = splits.make_folds(mdata.obs.loc[available, endpoint], n_splits=4, seed=seed)
    summary = experiment.run(
        mdata, folds, endpoint=endpoint, pipeline=pipeline, modalities=modalities,
        classifier="logreg", settings=SETTINGS, outdir=tmp_path / pipeline,
    )  # fmt: skip
    assert json.loads((tmp_path / pipeline / "metrics.json").read_text(encoding="utf-8")) == summary
    return summary


def test_cohort_container_keeps_the_real_missingness(nsclc):
    availability = cohort.availability(nsclc)
    assert availability.sum().to_dict() == {"radiomics": 60, "rnaseq": 130, "clinical": 211}
    assert (availability["radiomics"] <= availability["rnaseq"]).all()


def test_expression_predicts_histology(nsclc, tmp_path):
    """Squamous vs adenocarcinoma is a strong transcriptomic contrast (keratin and p63 genes)."""
    summary = run(nsclc, "squamous", "rnaseq", ["rnaseq"], tmp_path)
    assert summary["n_patients"] == 127 and summary["n_positive"] == 31
    assert summary["pooled"]["roc_auc"] > 0.85
    assert summary["ci95"]["roc_auc"][0] > 0.7


def test_fused_real_modalities_are_at_chance_on_permuted_labels(nsclc, tmp_path):
    """The leakage canary on real radiomics (1,764 features) fused with expression. With
    15 test patients per fold a single permutation's AUC scatters widely (0.25 to 0.67),
    so the mean is taken over ten."""
    aucs = []
    both = nsclc.obs["has_radiomics"] & nsclc.obs["egfr"].notna()
    for seed in range(10):
        labels = nsclc.obs["egfr"].copy()
        labels[both] = np.random.default_rng(seed).permutation(labels[both].to_numpy())
        labels[~both] = np.nan
        summary = run(
            nsclc, "egfr", "early_fusion", ["radiomics", "rnaseq"], tmp_path / str(seed),
            labels=labels, seed=seed,
        )  # fmt: skip
        assert summary["n_patients"] == 60
        aucs.append(summary["pooled"]["roc_auc"])
    assert all(0.2 < auc < 0.8 for auc in aucs) and abs(np.mean(aucs) - 0.5) < 0.15, aucs
