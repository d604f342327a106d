"""The deep modality in the workflow: crops per patient, encoders trained inside the folds,
the image explanations, and MLflow."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml
from test_workflow import job_counts, snakemake, write_study

from radiotx import cohort, splits

pytest.importorskip("torch")
N_PATIENTS = 20


@pytest.fixture(scope="module")
def deep_study(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("deep")
    config = write_study(
        workdir,
        n_patients=N_PATIENTS,
        few_rnaseq=True,
        pipelines={"deep": ["deep"]},
        cv={"outer_folds": 3, "inner_folds": 3, "bootstrap": 100, "permutations": 0},
    )
    config["model"].update(balancers=["class_weight"], k_features=[5])
    config["deep"]["epochs"] = 2
    config["explain"]["images"] = {"enabled": True, "overlays": 1, "steps": 4}
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    dry = snakemake(workdir, "-n")
    snakemake(workdir)
    return {"dir": workdir, "dry": dry.stdout, "config": config}


def test_only_the_modelled_modality_is_prepared(deep_study):
    counts = job_counts(deep_study["dry"])
    # a crop per patient after its image QA; no radiomics or RNA-seq: no pipeline uses them
    assert counts["deep_crop"] == counts["radiomics_qa"] == N_PATIENTS
    assert "radiomics" not in counts and "rnaseq" not in counts and "rnaseq_qc" not in counts
    assert counts["outer_fold"] == 3 and counts["explain_deep"] == 1
    mdata = cohort.read(deep_study["dir"] / "results/cohort.h5mu")
    assert set(mdata.mod) == {"deep", "clinical"}
    assert mdata.mod["deep"].shape == (N_PATIENTS, 24**3)


def test_each_encoder_sees_only_its_training_patients(deep_study):
    workdir = deep_study["dir"]
    folds = splits.outer(splits.read(workdir / "results/splits/response.tsv"))
    pattern = re.compile(r"simclr cnn encoder: (\d+) crops")
    for fold in sorted(folds.unique()):
        log = (workdir / f"logs/models/response/deep/outer/r0f{fold}.log").read_text()
        sizes = [int(n) for n in pattern.findall(log)]
        # one encoder, on the outer training set, shared by the inner CV (deep.pretrain
        # outer): never a test patient
        assert sizes == [int((folds != fold).sum())], sizes
    refit = (workdir / "logs/models/response/deep/refit.log").read_text()
    assert [int(n) for n in pattern.findall(refit)] == [N_PATIENTS]


def test_deep_models_are_scored_and_explained(deep_study):
    results = deep_study["dir"] / "results"
    summary = pd.read_csv(results / "summary.tsv", sep="\t")
    assert set(summary["pipeline"]) == {"deep"}
    assert summary["roc_auc"].between(0, 1).all()
    sanity = pd.read_csv(results / "explain/response/deep/sanity.tsv", sep="\t")
    assert list(sanity["method"]) == ["gradcam", "occlusion", "integrated_gradients"]
    assert sanity["n_patients"].eq(N_PATIENTS).all()
    rows = pd.read_csv(results / "explain/response/deep/attributions.tsv", sep="\t")
    assert len(rows) == 3 * N_PATIENTS and rows["mass_in_roi"].between(0, 1).all()
    overlays = sorted((results / "explain/response/deep/overlays").glob("*.png"))
    assert len(overlays) == 3  # one per outer fold
    assert (results / "explain/response/deep/deletion.png").stat().st_size


def test_image_explanations_are_in_the_summary_and_in_mlflow_under_pseudonyms(deep_study):
    import mlflow

    results = deep_study["dir"] / "results"
    assert "### Image explanations" in (results / "summary.md").read_text(encoding="utf-8")
    run = json.loads((results / "mlflow/last_run.json").read_text(encoding="utf-8"))
    client = mlflow.MlflowClient(run["tracking_uri"])
    parent, where = run["parent_run_id"], "explain/response/deep"
    logged = {a.path.removeprefix(f"{where}/") for a in client.list_artifacts(parent, where)}
    assert {"sanity.tsv", "attributions.tsv", "deletion.png", "overlays"} <= logged
    overlays = [a.path for a in client.list_artifacts(parent, f"{where}/overlays")]
    assert len(overlays) == 3
    table = pd.read_csv(client.download_artifacts(parent, f"{where}/attributions.tsv"), sep="\t")
    local = pd.read_csv(results / "explain/response/deep/attributions.tsv", sep="\t")
    # the same rows, every patient id replaced by its pseudonym (figures too)
    assert len(table) == len(local) and not set(table["patient_id"]) & set(local["patient_id"])
    assert not any(Path(p).stem in set(local["patient_id"]) for p in overlays)
