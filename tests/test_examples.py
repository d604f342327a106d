"""The example study configs under config/examples/, run end to end on real data.

The NSCLC Radiogenomics files are read from ../shared/data/nsclc-radiogenomics (or
$RADIOTX_DATA) and never copied into the repository; the test skips when they are absent.
"""

import os
from pathlib import Path

import pandas as pd
import pytest
import yaml
from test_workflow import REPO, job_counts, snakemake

pytestmark = [pytest.mark.workflow, pytest.mark.realdata]

DATA = Path(
    os.environ.get(
        "RADIOTX_DATA",
        Path(__file__).resolve().parents[2] / "shared" / "data" / "nsclc-radiogenomics",
    )
)
EXAMPLE = REPO / "config" / "examples" / "nsclc_expression.yaml"
N_PATIENTS = 65  # every second patient of the matrix's 130


def example_study(workdir: Path, **overrides) -> dict:
    """The example config, pointed at the real data and at this checkout."""
    text = EXAMPLE.read_text(encoding="utf-8")
    config = yaml.safe_load(text.replace("resources/nsclc-radiogenomics", str(DATA)))
    config["radiomics"]["params"] = str(REPO / config["radiomics"]["params"])
    config["cv"]["permutations"] = 0  # the test checks the models, not the null
    config.update(overrides)
    (workdir / "config").mkdir(parents=True, exist_ok=True)
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return config


@pytest.fixture(scope="module")
def nsclc(tmp_path_factory):
    if not (DATA / "expression_log_zscore.csv").exists():
        pytest.skip(f"real NSCLC data not found at {DATA}")
    workdir = tmp_path_factory.mktemp("nsclc")
    # half of the 130 patients (a per-patient job each costs seconds) and the example's grid
    # with one classifier, so that the test stays short
    expression = pd.read_csv(DATA / "expression_log_zscore.csv", index_col=0, nrows=0)
    (workdir / "config").mkdir(parents=True)
    sheet = pd.DataFrame({"patient_id": expression.columns[::2]})
    sheet.to_csv(workdir / "config" / "patients.tsv", sep="\t", index=False)
    config = example_study(
        workdir,
        patients="config/patients.tsv",
        model={"classifiers": ["logreg"], "k_features": [10, 50], "smote_neighbors": 3},
        fusion={"strategies": ["early", "late"]},
    )
    dry = snakemake(workdir, "-n")
    snakemake(workdir)
    return {"dir": workdir, "config": config, "dry": dry.stdout}


def test_one_job_per_expression_patient(nsclc):
    counts = job_counts(nsclc["dry"])
    assert counts["rnaseq"] == counts["rnaseq_qc"] == N_PATIENTS
    assert counts["rnaseq_split"] == 1 and "radiomics" not in counts
    # 2 endpoints x (2 single-modality pipelines x logreg + early, late and selected fusion)
    assert counts["model"] == 2 * (2 + 3)


def test_auc_with_ci_for_recurrence_and_survival(nsclc):
    summary = pd.read_csv(nsclc["dir"] / "results/summary.tsv", sep="\t")
    assert set(summary["endpoint"]) == {"recurrence", "survival_status"}
    for row in summary.itertuples():
        assert 0 <= row.roc_auc_ci_low <= row.roc_auc <= row.roc_auc_ci_high <= 1
    # every patient with expression and a known outcome, in every pipeline
    clinical = pd.read_csv(DATA / "clinical.csv", index_col="Case ID")
    expression = pd.read_csv(DATA / "expression_log_zscore.csv", index_col=0, nrows=0)
    clinical = clinical.loc[expression.columns[::2]]
    known = {
        "recurrence": clinical["Recurrence"].isin(["yes", "no"]).sum(),
        "survival_status": clinical["Survival Status"].isin(["Alive", "Dead"]).sum(),
    }
    assert (summary["n_patients"] == summary["endpoint"].map(known)).all()
    positives = {
        "recurrence": (clinical["Recurrence"] == "yes").sum(),
        "survival_status": (clinical["Survival Status"] == "Dead").sum(),
    }
    assert (summary["n_positive"] == summary["endpoint"].map(positives)).all()
    print(summary[["endpoint", "pipeline", "roc_auc", "roc_auc_ci_low", "roc_auc_ci_high"]])


def test_expression_steps_are_fitted_inside_the_folds(nsclc):
    import joblib

    model = joblib.load(nsclc["dir"] / "results/models/survival_status/rnaseq/logreg/model.joblib")
    block = model.estimator.named_steps["prep"].named_transformers_["rnaseq"]
    prepare = block.named_steps["prepare"]
    genes = prepare.step_.steps[-1][1]
    assert genes.n_genes == 500 and len(genes.get_feature_names_out()) == 500
    qc = pd.read_csv(nsclc["dir"] / "results/qa/rnaseq.tsv", sep="\t")
    assert (qc["status"] == "ok").all() and qc["detected_genes"].between(800, 1000).all()
    # every gene measured in 80 % of these patients reaches the models (gene_coverage); its
    # gaps are imputed inside the folds
    matrix = pd.read_csv(DATA / "expression_log_zscore.csv", index_col=0)
    covered = matrix.iloc[:, ::2].notna().mean(axis=1) >= 0.8
    assert prepare.n_features_in_ == covered.sum() > 900
