"""RNA-seq inside the model pipelines: the cohort-level expression steps of config
``rnaseq.preprocess`` run per fold in nested CV, next to other modalities."""

from __future__ import annotations

import json

import joblib
import numpy as np
import pandas as pd
import pytest

from radiotx import cohort, demo, experiment, splits
from radiotx.errors import InputError
from radiotx.features import rnaseq

N = 48
SEED = 3
PREPROCESS = {
    "batch": "",
    "unseen_batch": "error",
    "min_expression": 1.0,
    "min_expressed_fraction": 0.1,
    "genes": "variance",
    "n_genes": 200,
    "pca": 0,
    "gene_sets": "",
    "gene_set_method": "ulm",
    "gene_set_min_size": 5,
    "keep_genes": True,
}


@pytest.fixture(scope="module")
def cohort_parts():
    """Demo expression (log1p CPM of negative binomial counts with planted DE genes) of 48
    patients, a quarter without RNA-seq, and their clinical table and labels."""
    design = demo.design(N, seed=SEED, rnaseq_missing=0.25)
    model = demo.gene_model(SEED)
    rows = {
        pid: rnaseq.normalise(demo.rnaseq_counts(pid, int(label), SEED, model).astype(float))
        for pid, label, has in zip(
            design["patient_id"], design["label"], design["has_rnaseq"], strict=True
        )
        if has
    }
    expression = pd.DataFrame(rows).T
    clinical = demo.clinical_table(design, SEED).set_index("patient_id")
    labels = design.set_index("patient_id")["label"].astype(float).rename("response")
    return expression, clinical, labels


def run(tmp_path, expression, clinical, labels, preprocess, obs=None, folds=None):
    encoded = cohort.encode_clinical(clinical, ["age"], ["sex", "stage"])
    mdata = cohort.build({"rnaseq": expression, "clinical": encoded}, {"response": labels}, obs)
    folds = splits.make_folds(labels, n_splits=4, seed=SEED) if folds is None else folds
    settings = experiment.Settings(
        seed=SEED, inner_folds=3, k_features=(5, 20), n_boot=200, rnaseq=preprocess
    )
    return experiment.run(
        mdata,
        folds,
        endpoint="response",
        pipeline="fused",
        modalities=["rnaseq", "clinical"],
        classifier="logreg",
        settings=settings,
        outdir=tmp_path,
    )


def test_gene_set_scores_carry_the_planted_signal(tmp_path, cohort_parts):
    expression, clinical, labels = cohort_parts
    gmt = tmp_path / "sets.gmt"
    demo.write_gene_sets(gmt, demo.gene_sets(SEED))
    preprocess = {**PREPROCESS, "gene_sets": str(gmt), "keep_genes": False}
    summary = run(tmp_path, expression, clinical, labels, preprocess)
    # every patient is scored, those without RNA-seq on their clinical data
    assert summary["n_patients"] == N
    assert summary["pooled"]["roc_auc"] > 0.7 and summary["ci95"]["roc_auc"][0] > 0.5
    selected = pd.read_csv(tmp_path / "selected_features.tsv", sep="\t")
    sets = selected.loc[selected["modality"] == "rnaseq", "feature"]
    assert set(sets) <= {f"geneset:{name}" for name in demo.gene_sets(SEED)}
    # the two planted sets are chosen in every outer fold
    planted = sets[sets.str.startswith("geneset:DEMO_RESPONSE")]
    assert planted.value_counts().min() >= 4 and planted.nunique() == 2


def test_batch_correction_runs_in_the_folds_and_an_unseen_batch_is_named(tmp_path, cohort_parts):
    expression, clinical, labels = cohort_parts
    patients = sorted(expression.index)
    batch = pd.Series("A", index=labels.index)
    batch.loc[patients[1::2]] = "B"
    shifted = expression.copy()
    shifted.loc[patients[1::2]] += 1.5  # a sequencing-batch offset on every gene
    preprocess = {**PREPROCESS, "batch": "batch"}
    obs = {experiment.BATCH: batch.astype("category")}
    summary = run(tmp_path / "ok", shifted, clinical, labels, preprocess, obs)
    assert summary["n_patients"] == N and np.isfinite(summary["pooled"]["roc_auc"])
    model = joblib.load(tmp_path / "ok" / "model.joblib")
    block = model.estimator.named_steps["prep"].named_transformers_["rnaseq"]
    harmoniser = block.named_steps["prepare"].step_.named_steps["batchharmoniser"]
    assert set(harmoniser.corrected_batches_) == {"A", "B"}
    # the offset is gone from the harmonised expression of the final model
    columns = [f"rnaseq:{gene}" for gene in shifted.columns]
    harmonised = harmoniser.transform(shifted.set_axis(columns, axis=1))
    in_b = harmonised.index.isin(patients[1::2])
    gap = harmonised[in_b].mean() - harmonised[~in_b].mean()
    raw_gap = expression.loc[patients[1::2]].mean() - expression.drop(patients[1::2]).mean()
    assert np.abs(gap.to_numpy() - raw_gap.to_numpy()).mean() < 0.3  # was 1.5

    # a third batch whose patients all sit in one outer test fold
    folds = splits.make_folds(labels, n_splits=4, seed=SEED)
    in_fold0 = [p for p in folds.loc[folds["fold"] == 0, "patient_id"] if p in expression.index]
    batch.loc[in_fold0[:2]] = "C"
    obs = {experiment.BATCH: batch.astype("category")}
    with pytest.raises(InputError, match="C") as info:
        run(tmp_path / "unseen", shifted, clinical, labels, preprocess, obs, folds)
    assert in_fold0[0] in str(info.value) and "unseen_batch: keep" in str(info.value)
    kept = run(
        tmp_path / "keep", shifted, clinical, labels, {**preprocess, "unseen_batch": "keep"}, obs
    )
    assert kept["n_patients"] == N
    metrics = json.loads((tmp_path / "keep" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["pooled"] == kept["pooled"]


def test_principal_components_replace_genes(tmp_path, cohort_parts):
    expression, clinical, labels = cohort_parts
    summary = run(tmp_path, expression, clinical, labels, {**PREPROCESS, "pca": 5})
    selected = pd.read_csv(tmp_path / "selected_features.tsv", sep="\t")
    chosen = selected.loc[selected["modality"] == "rnaseq", "feature"]
    assert len(chosen) and chosen.str.fullmatch(r"pca[0-4]").all()
    assert np.isfinite(summary["pooled"]["roc_auc"])
