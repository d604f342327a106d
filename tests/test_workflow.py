"""The Snakemake workflow end to end on a small demo cohort, as a user runs it."""

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import joblib
import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.stats import hypergeom

from radiotx import demo
from radiotx.features import read_rows

pytestmark = pytest.mark.workflow

REPO = Path(__file__).resolve().parents[1]
N_PATIENTS = 60


def snakemake_call(workdir: Path, *args: str) -> tuple[list[str], dict]:
    """The command line and environment of a 2-core workflow run in ``workdir``."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    command = [
        sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(workdir), "--cores", "2", *args,
    ]  # fmt: skip
    return command, env


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    command, env = snakemake_call(workdir, *args)
    result = subprocess.run(command, capture_output=True, encoding="utf-8", env=env, cwd=workdir)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stderr[-6000:]}")
    return result


def job_counts(dry_run_output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run as {rule: count}."""
    stats = dry_run_output.split("Job stats:", 1)
    if len(stats) == 1:
        return {}
    counts = {}
    for line in stats[1].splitlines()[3:]:
        match = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not match:
            break
        counts[match[1]] = int(match[2])
    counts.pop("total", None)
    return counts


def write_study(
    workdir: Path, n_patients: int = N_PATIENTS, few_rnaseq: bool = False, **overrides
) -> dict:
    """A study folder like the repository's, with a smaller demo cohort and CV. With
    ``few_rnaseq`` only a tenth of the patients have RNA-seq (for studies that do not model
    it: less to extract)."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))
    config["demo"]["n_patients"] = n_patients
    if few_rnaseq:
        config["demo"]["rnaseq_missing"] = 0.9
    config["radiomics"]["params"] = str(REPO / "config" / "radiomics" / "ct_demo.yaml")
    config["cv"] = {"outer_folds": 4, "inner_folds": 3, "bootstrap": 200, "permutations": 0}
    config["model"]["classifiers"] = ["logreg"]
    config["model"]["k_features"] = [5, 20]
    config["model"]["survival_models"] = ["coxnet"]
    config["endpoints"] = {"response": config["endpoints"]["response"]}
    # the deep modality has its own study (tests/test_deep_workflow.py)
    config["pipelines"].pop("deep", None)
    # SHAP of the "selected" models on a small budget: the plumbing, not precise values
    config["explain"] = dict(config["explain"], top_k=5, background=10, max_evals=100)
    # no fairness audit unless a test asks for it (AUDIT): jobs cost CI time
    config["fairness"] = {"attributes": {}, "shift": [], "mitigate": {"attribute": ""}}
    config.update(overrides)
    (workdir / "config").mkdir(parents=True, exist_ok=True)
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    sheet = demo.patient_sheet(
        config["demo"]["outdir"], n_patients, config["seed"], config["demo"]["rnaseq_missing"]
    )
    sheet.to_csv(workdir / config["patients"], sep="\t", index=False)
    return config


# The repository's fairness audit with few resamples: the plumbing (the values are
# tested in tests/test_fairness.py).
AUDIT = dict(
    yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))["fairness"],
    permutations=19,
    bootstrap=50,
)
SMALL_STUDY_PATIENTS = 18


def write_small_study(workdir: Path) -> dict:
    """A study that runs in about a minute: two modalities and their fusion (early and late),
    one binary endpoint, 3 outer folds."""
    base = yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))
    model = dict(base["model"], classifiers=["logreg"], balancers=["class_weight"])
    model.update(k_features=[5], select_classifier=True)
    return write_study(
        workdir,
        n_patients=SMALL_STUDY_PATIENTS,
        few_rnaseq=True,
        model=model,
        cv={"outer_folds": 3, "inner_folds": 3, "bootstrap": 200, "permutations": 0},
        pipelines={
            "radiomics": ["radiomics"],
            "clinical": ["clinical"],
            "fusion": ["radiomics", "clinical"],
        },
        fusion=dict(base["fusion"], strategies=["early", "late"]),
    )


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A complete workflow run; later tests inspect it and dry-run against it."""
    workdir = tmp_path_factory.mktemp("study")
    endpoints = yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))
    # binary and survival endpoints, audited for fairness
    config = write_study(workdir, endpoints=endpoints["endpoints"], fairness=AUDIT)
    first_dry = snakemake(workdir, "-n")
    run = snakemake(workdir)
    return {"dir": workdir, "config": config, "first_dry": first_dry.stdout, "run": run}


def test_one_extraction_job_per_patient_and_modality(study):
    sheet = pd.read_csv(study["dir"] / "config" / "patients.tsv", sep="\t", keep_default_na=False)
    counts = job_counts(study["first_dry"])
    assert "permutation" not in counts  # the study's config turns the test off
    assert counts["radiomics"] == N_PATIENTS
    assert counts["rnaseq"] == (sheet["rnaseq"] != "").sum() < N_PATIENTS
    # response: radiomics, rnaseq and clinical x logreg, and the fusion's five strategies and
    # "selected"; survival: the four pipelines x coxnet
    assert counts["model"] == 13
    # a job per endpoint, pipeline and outer fold; a refit per endpoint and pipeline
    assert counts["outer_fold"] == 32 and counts["refit"] == 8
    # the fairness audit: the subgroups once, the cohort and the models one job each
    assert counts["subgroups"] == counts["fairness_cohort"] == counts["fairness_models"] == 1


def test_outputs_and_ranked_summary(study):
    results = study["dir"] / "results"
    table = pd.read_csv(results / "summary.tsv", sep="\t")
    summary = table[table["endpoint"] == "response"]
    assert set(summary["pipeline"]) == {"radiomics", "rnaseq", "clinical", "fusion"}
    assert summary["roc_auc"].is_monotonic_decreasing
    assert list(summary["rank"]) == list(range(1, 10))
    assert (summary["roc_auc_ci_low"] <= summary["roc_auc"]).all()
    markdown = (results / "summary.md").read_text(encoding="utf-8")
    assert "| Rank |" in markdown
    # the fusion comparison of the binary endpoint: 6 fusion models x 3 baselines
    assert "### Fusion against single modalities" in markdown
    # tests, then contributions, then the SHAP row of the explained fusion/selected
    assert markdown.count("| fusion / ") == 6 * 3 + 6 * 3 + 1
    # the survival endpoint: ranked by C-index, a Kaplan-Meier figure per model
    survival = table[table["endpoint"] == "overall_survival"]
    assert (survival["metric"] == "c_index").all() and survival["roc_auc"].isna().all()
    assert survival["c_index"].is_monotonic_decreasing and survival["c_index"].between(0, 1).all()
    assert (survival["c_index_ci_low"] < survival["c_index"]).all()
    assert "C-index [95 % CI]" in (results / "summary.md").read_text(encoding="utf-8")
    assert (results / "models/overall_survival/clinical/coxnet/performance.png").stat().st_size
    rnaseq_qc = pd.read_csv(results / "qa/rnaseq.tsv", sep="\t")
    assert (rnaseq_qc["status"] == "ok").all() and (rnaseq_qc["library_size"] > 1e5).all()
    assert rnaseq_qc["pct_mito"].between(0, 100).all()
    availability = pd.read_csv(results / "availability.tsv", sep="\t", index_col=0)
    assert availability["clinical"].all() and not availability["rnaseq"].all()
    predictions = pd.read_csv(results / "models/response/fusion/late/predictions.tsv", sep="\t")
    assert len(predictions) == predictions["patient_id"].nunique() == N_PATIENTS
    # one log per job; a model job says how large its inner-CV search was
    log = (study["dir"] / "logs/models/response/fusion/outer/r0f0.log").read_text(encoding="utf-8")
    assert re.search(r"inner CV of \d+ patients: \d+ candidate pipelines x 3 splits", log)


def test_fusion_strategies_are_compared_with_the_single_modalities(study):
    base = study["dir"] / "results/comparison/response"
    tests = pd.read_csv(base / "tests.tsv", sep="\t")
    assert set(tests["model"]) == {"early", "late", "stacking", "mkl", "single", "selected"}
    assert set(tests["baseline"]) == {"radiomics/logreg", "rnaseq/logreg", "clinical/logreg"}
    assert (tests["delong_p_holm"] >= tests["delong_p"] - 1e-12).all()
    sheet = pd.read_csv(study["dir"] / "config" / "patients.tsv", sep="\t", keep_default_na=False)
    with_rnaseq = (sheet["rnaseq"] != "").sum()
    vs_rnaseq = tests[tests["baseline"] == "rnaseq/logreg"]
    assert (vs_rnaseq["n_patients"] == with_rnaseq).all()  # the patients both scored
    patterns = pd.read_csv(base / "availability.tsv", sep="\t")
    late = patterns[(patterns["pipeline"] == "fusion") & (patterns["model"] == "late")]
    assert late["n_patients"].sum() == N_PATIENTS
    assert set(late["pattern"]) == {"radiomics+rnaseq+clinical", "radiomics+clinical"}
    parts = pd.read_csv(base / "contributions.tsv", sep="\t")
    late = parts[(parts["pipeline"] == "fusion") & (parts["model"] == "late")]
    assert set(late["modality"]) == {"radiomics", "rnaseq", "clinical"}
    assert late["weight"].sum() == pytest.approx(1.0)
    assert parts.loc[parts["model"] == "early", "weight"].isna().all()  # fixed block weights
    assert (base / "strategies.png").stat().st_size > 10_000


def test_the_cost_of_model_selection_is_reported_and_logged(study):
    cost = pd.read_csv(study["dir"] / "results/selection_cost.tsv", sep="\t")
    fusion = cost[(cost["endpoint"] == "response") & (cost["pipeline"] == "fusion")]
    assert set(fusion["candidate"]) == {"early", "late", "stacking", "mkl", "single"}
    summary = pd.read_csv(study["dir"] / "results/summary.tsv", sep="\t")
    summary = summary.set_index(["endpoint", "pipeline", "classifier"])
    for row in cost.itertuples():
        assert row.folds == 4 and row.ci_low <= row.cost <= row.ci_high
        fixed = summary.loc[(row.endpoint, row.pipeline, row.candidate)]
        metric = "roc_auc" if row.metric == "roc_auc" else "c_index"
        assert row.fixed == pytest.approx(fixed[f"{metric}_mean"])
    with_selected = summary.xs("selected", level="classifier").index.get_level_values("endpoint")
    assert set(cost["endpoint"]) == set(with_selected)
    markdown = (study["dir"] / "results/summary.md").read_text(encoding="utf-8")
    assert markdown.count("### Cost of model selection") == cost["endpoint"].nunique()
    client = mlflow.MlflowClient(f"sqlite:///{study['dir'] / 'results' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(study["config"]["study"])
    (run,) = client.search_runs(
        [experiment.experiment_id], "attributes.run_name = 'response/fusion/selected'"
    )
    assert run.data.metrics["selection_cost_vs_late"] == pytest.approx(
        fusion.set_index("candidate").loc["late", "cost"]
    )


def test_folds_are_shared_by_every_model(study):
    folds = pd.read_csv(study["dir"] / "results/splits/response.tsv", sep="\t")
    fold_of = dict(zip(folds["patient_id"], folds["fold"], strict=True))
    for path in (study["dir"] / "results/models/response").glob("*/*/predictions.tsv"):
        predictions = pd.read_csv(path, sep="\t")
        assert (predictions["patient_id"].map(fold_of) == predictions["fold"]).all()


def test_planted_signal_is_found(study):
    truth = json.loads(
        (study["dir"] / "resources/demo/ground_truth.json").read_text(encoding="utf-8")
    )
    summary = pd.read_csv(study["dir"] / "results/summary.tsv", sep="\t")
    summary = summary[summary["endpoint"] == "response"].set_index(["pipeline", "classifier"])
    assert summary.loc[("fusion", "selected"), "roc_auc"] > 0.75
    assert summary.loc[("fusion", "selected"), "roc_auc_ci_low"] > 0.5
    selected = pd.read_csv(
        study["dir"] / "results/models/response/fusion/early/selected_features.tsv",
        sep="\t",
    )
    genes = {g["gene"] for g in truth["signal_genes"]}
    chosen_genes = set(selected.loc[selected["modality"] == "rnaseq", "feature"])
    n_genes = len(demo.gene_names())
    enrichment = hypergeom.sf(len(chosen_genes & genes) - 1, n_genes, len(genes), len(chosen_genes))
    assert enrichment < 1e-3, (chosen_genes & genes, chosen_genes)
    # Size, lobulation and heterogeneity show up in many pyradiomics features, so check that
    # the chosen image features track the hidden tumour parameters rather than noise.
    hidden = pd.DataFrame(truth["per_patient"]).T[["radius_mm", "lobulation", "texture_sd"]]
    features = read_rows((study["dir"] / "results/features/radiomics").glob("*"))
    hidden = hidden.loc[features.index].astype(float)
    image = selected.loc[selected["modality"] == "radiomics", "feature"].unique()
    strength = [hidden.corrwith(features[f], method="spearman").abs().max() for f in image]
    assert len(image) and np.median(strength) > 0.5, dict(zip(image, strength, strict=True))


def test_runs_are_logged_to_mlflow(study):
    uri = f"sqlite:///{study['dir'] / 'results' / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name(study["config"]["study"])
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(parents) == 1 and len(children) == 13
    fused = next(r for r in children if r.info.run_name == "response/fusion/selected")
    summary = pd.read_csv(study["dir"] / "results/summary.tsv", sep="\t")
    summary = summary[summary["endpoint"] == "response"].set_index(["pipeline", "classifier"])
    expected = summary.loc[("fusion", "selected"), "roc_auc"]
    assert fused.data.metrics["roc_auc"] == pytest.approx(expected)
    modalities = {k.split(".", 1)[1] for k in fused.data.metrics if k.startswith("modality_")}
    assert modalities == {"radiomics", "rnaseq", "clinical"}
    folds = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == fused.info.run_id]
    assert len(folds) == 4  # a nested run per outer fold, with the strategy it chose
    for fold in folds:
        assert fold.data.params["strategy"] in {"early", "late", "stacking", "mkl", "single"}
        assert 0 <= fold.data.metrics["roc_auc"] <= 1
    manifest = json.loads((study["dir"] / "results/manifest.json").read_text(encoding="utf-8"))
    assert fused.data.tags["radiotx.config_sha256"] == manifest["config_sha256"]
    assert fused.data.tags["radiotx.inputs_sha256"] == manifest["inputs_sha256"]
    sheet = pd.read_csv(study["dir"] / "config/patients.tsv", sep="\t", keep_default_na=False)
    assert set(sheet["image"]) <= set(manifest["inputs"])  # every image is checksummed
    logged = pd.read_csv(client.download_artifacts(fused.info.run_id, "predictions.tsv"), sep="\t")
    assert not set(logged["patient_id"]) & set(sheet["patient_id"])  # pseudonyms, not ids
    assert fused.data.tags["mlflow.source.name"] == "radiotx workflow"
    artifacts = {a.path for a in client.list_artifacts(fused.info.run_id)}
    assert {"performance.png", "selected_features.tsv", "predictions.tsv"} <= artifacts


def test_no_patient_id_leaves_the_study_through_mlflow(study):
    """Every parameter, tag, name and text artifact in the tracking store, and the manifest
    it holds, is free of patient ids (and so of the input paths that carry them)."""
    results = study["dir"] / "results"
    sheet = pd.read_csv(study["dir"] / "config/patients.tsv", sep="\t", dtype=str)
    ids = re.compile("|".join(map(re.escape, sheet["patient_id"])))
    texts = {}
    with sqlite3.connect(results / "mlflow.db") as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):
                texts[f"{table} {row[:2]}"] = " ".join(str(v) for v in row if isinstance(v, str))
    artifacts = [p for p in (results / "mlartifacts").rglob("*") if p.is_file()]
    for path in artifacts:
        try:
            texts[str(path)] = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # images and pickles: arrays, no names
    assert any(path.name == "manifest.json" for path in artifacts)
    assert len(texts) > 100
    leaks = {where: ids.search(text)[0] for where, text in texts.items() if ids.search(text)}
    assert not leaks, leaks
    # on the study's own disk the ids are where they belong
    assert ids.search((results / "manifest.json").read_text(encoding="utf-8"))


def test_the_fairness_audit_is_reported_and_logged(study):
    results = study["dir"] / "results"
    markdown = (results / "summary.md").read_text(encoding="utf-8")
    for heading in (
        "## Fairness: the cohort by subgroup",
        "## Covariate shift",
        "## Fairness: subgroup performance",
        "## Fairness: mitigation, accuracy against fairness",
    ):
        assert heading in markdown
    cohort = pd.read_csv(results / "fairness/cohort.tsv", sep="\t")
    sites = cohort[cohort["attribute"] == "site"].set_index("group")
    assert sites["n"].sum() == N_PATIENTS and set(sites.index) <= {"A", "B", "C"}
    assert sites["missing_rnaseq"].between(0, 1).all()
    # the demo's sites differ in scanner noise: the texture features shift between them
    shift = pd.read_csv(results / "fairness/shift_classifier.tsv", sep="\t")
    radiomics = shift[shift["modality"] == "radiomics"]
    assert len(radiomics) == 3 and (radiomics["n_shifted"] > 0).any()
    # every model of both endpoints by every attribute: the survival models by C-index
    gaps = pd.read_csv(results / "fairness/disparities.tsv", sep="\t")
    assert len(gaps.groupby(["endpoint", "pipeline", "model"])) == 13
    assert set(gaps["attribute"]) == {"sex", "age", "site"}
    survival = gaps[gaps["endpoint"] == "overall_survival"]
    assert set(survival["metric"]) == {"c_index_difference"}
    assert "| overall_survival | fusion | coxnet | site |" in markdown
    # mitigated in every outer fold: the single model of each modality, the fusion's selected
    mitigation = pd.read_csv(results / "fairness/mitigation.tsv", sep="\t")
    fused = mitigation[mitigation["pipeline"] == "fusion"].set_index("method")
    assert fused.index.tolist() == ["none", "reweighing", "group_oversampling", "threshold"]
    assert "does not apply" in fused.loc["reweighing", "note"]  # a fusion takes no weights
    assert fused.loc["threshold", "balanced_accuracy"] > 0
    single = mitigation[mitigation["pipeline"] == "radiomics"]
    assert single["equalized_odds_difference"].notna().all()
    client = mlflow.MlflowClient(f"sqlite:///{results / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(study["config"]["study"])
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    logged = runs["response/radiomics/logreg"].data.metrics
    assert logged["fairness.site.equalized_odds_difference"] == pytest.approx(
        gaps.set_index(["pipeline", "attribute", "metric"]).loc[
            ("radiomics", "site", "equalized_odds_difference"), "value"
        ]
    )
    assert "mitigation.threshold.balanced_accuracy" in logged
    parent = runs[study["config"]["study"]].info.run_id
    audit = {a.path for a in client.list_artifacts(parent, "fairness")}
    assert "fairness/tradeoff.png" in audit and "fairness/mitigation.tsv" in audit
    assert "fairness/subgroups.tsv" not in audit  # each patient's groups stay local


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# where the browser test keeps its screenshots
ARTIFACTS = Path(os.environ.get("RADIOTX_TEST_ARTIFACTS", REPO / "test-artifacts"))


def browse(url: str, *options: str) -> str:
    """The text of a page after headless chromium has run its scripts."""
    command = [
        CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,900",
        "--virtual-time-budget=20000", *options, url,
    ]  # fmt: skip
    page = subprocess.run(command, capture_output=True, encoding="utf-8", timeout=180).stdout
    text = re.sub(r"<style.*?</style>|<script.*?</script>", " ", page, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text))


@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (make test installs it as root)")
def test_the_mlflow_ui_shows_the_demo_runs(study, tmp_path):
    from conftest import mlflow_server

    db = study["dir"] / "results" / "mlflow.db"
    with mlflow_server(f"sqlite:///{db}", tmp_path) as url:
        client = mlflow.MlflowClient(url)
        experiment = client.get_experiment_by_name(study["config"]["study"])
        runs = client.search_runs([experiment.experiment_id], max_results=1000)
        fused = next(r for r in runs if r.info.run_name == "response/fusion/selected")
        listing = f"{url}/#/experiments/{experiment.experiment_id}/runs"
        page = browse(listing, "--dump-dom")
        assert study["config"]["study"] in page and f"{len(runs)} matching runs" in page
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "mlflow-ui-runs.png"
        browse(listing, f"--screenshot={shot}")
        assert shot.stat().st_size > 20_000
        page = browse(f"{listing}/{fused.info.run_id}", "--dump-dom")
        assert "response/fusion/selected" in page
        for metric in ("roc_auc", "roc_auc_ci_low", "roc_auc_ci_high"):
            assert f"{metric} {fused.data.metrics[metric]!r}" in page
        browse(f"{listing}/{fused.info.run_id}", f"--screenshot={ARTIFACTS / 'mlflow-ui-run.png'}")


def report_results(html: str) -> dict[str, str]:
    """The text of every result embedded in a Snakemake HTML report, by path."""
    import base64

    pattern = r'"([^"]+)": \{"name": .*?"data_uri": "data:[^"]*?;base64,([^"]+)"'
    found = re.finditer(pattern, html)
    return {m[1]: base64.b64decode(m[2]).decode("utf-8", "replace") for m in found}


def test_html_report_has_methods_results_checklist_and_cohort(study):
    snakemake(study["dir"], "--report", "report.html")
    html = (study["dir"] / "report.html").read_text(encoding="utf-8")
    assert study["config"]["study"] in html  # the methods, filled in from the config
    assert "Nested cross-validation: 4 stratified outer folds" in html
    results = report_results(html)
    summary = results["work/summary.html"]  # the report is made from the work tree
    assert "<table>" in summary and "Fusion against single modalities" in summary
    assert "Reporting checklist" in summary and "Events per candidate feature" in summary
    assert "Availability patterns" in results["work/cohort.html"]
    figures = [path for path in results if path.endswith(".png")]
    assert any(path.endswith("strategies.png") for path in figures)
    assert any(path.endswith("/plots/calibration.png") for path in figures)


def test_predict_scores_new_patients_as_the_workflow_did(study, tmp_path):
    from radiotx import cohort, experiment

    results = study["dir"] / "results"
    sheet = pd.read_csv(study["dir"] / "config/patients.tsv", sep="\t", keep_default_na=False)
    new = sheet.iloc[:6].copy()
    for column in ("image", "mask", "rnaseq"):  # the new patients' files, anywhere
        new[column] = [str(study["dir"] / path) if path else "" for path in new[column]]
    bad = new["patient_id"].iloc[1]
    new.loc[new.index[1], "mask"] = str(tmp_path / "lost_mask.nii.gz")
    new.to_csv(tmp_path / "new.tsv", sep="\t", index=False)
    clinical = pd.read_csv(study["dir"] / study["config"]["clinical"]["table"], sep="\t")
    clinical = clinical.drop(columns=["response", "death", "os_months"])  # no outcomes yet
    clinical.to_csv(tmp_path / "clinical.tsv", sep="\t", index=False)
    mdata = cohort.read(results / "cohort.h5mu")
    for pipeline, modalities in (
        ("fusion", ["radiomics", "rnaseq", "clinical"]),
        ("radiomics", ["radiomics"]),
    ):
        model = results / f"models/response/{pipeline}/selected/model.joblib"
        if not model.exists():
            model = results / f"models/response/{pipeline}/logreg/model.joblib"
        out = tmp_path / f"{pipeline}.tsv"
        run = subprocess.run(
            [sys.executable, "-m", "radiotx.cli", "predict", str(model), "--patients",
             str(tmp_path / "new.tsv"), "--clinical", str(tmp_path / "clinical.tsv"),
             "--out", str(out)],
            capture_output=True, encoding="utf-8",
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        table = pd.read_csv(out, sep="\t", keep_default_na=False).set_index("patient_id")
        assert list(table.index) == list(new["patient_id"])
        assert f"patient {bad}" in table.at[bad, "problem"] and "Fix:" in table.at[bad, "problem"]
        good = [p for p in table.index if p != bad and table.at[p, "problem"] == ""]
        # the workflow's own features of these patients give the same probabilities
        X, _, _ = experiment.design_matrix(mdata, modalities, "response", good)
        expected = joblib.load(model).predict_proba(X)[:, 1]
        assert table.loc[good, "p_positive"].to_numpy(float) == pytest.approx(expected, abs=1e-9)
        probabilities = table.loc[good, ["p_negative", "p_positive"]].astype(float)
        assert np.allclose(probabilities.sum(axis=1), 1)
        scored = table.at[bad, "p_positive"] != ""
        assert scored == (pipeline == "fusion")  # a fusion scores it with its other modalities


def test_second_run_does_nothing(study):
    dry = snakemake(study["dir"], "-n")
    assert "Nothing to be done" in dry.stdout + dry.stderr


def test_deleting_one_feature_file_reruns_only_that_patient(study):
    target = study["dir"] / "work/features/radiomics/P007.parquet"
    backup = target.with_suffix(".bak")
    shutil.copy2(target, backup)
    target.unlink()
    try:
        counts = job_counts(snakemake(study["dir"], "-n").stdout)
    finally:
        shutil.move(backup, target)
    assert counts.get("radiomics") == 1 and "rnaseq" not in counts
    assert "demo_cohort" not in counts and "splits" not in counts
    assert counts.get("gather") == 1 and counts.get("model") == 13
    assert counts.get("outer_fold") == 32
