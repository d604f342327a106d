"""Tests for MLflow tracking of a study (parent run + one child run per model)."""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path

import joblib
import mlflow
import numpy as np
import pandas as pd
import pytest
import sklearn
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from sklearn.linear_model import LogisticRegression

from radiotx import final, manifest, pseudonyms, track, tracking
from radiotx.plots import plot_roc
from radiotx.report import METRICS

MODELS = [
    ("response", "radiomics", "logreg", 0.5),
    ("response", "early_fusion", "rf", 2.0),
    ("survival2y", "clinical", "logreg", 1.0),
]


def make_model_dir(root: Path, endpoint: str, pipeline: str, classifier: str, signal: float):
    """A model directory as the workflow writes it (metric values need not match the scores)."""
    rng = np.random.default_rng(zlib.crc32(f"{endpoint}/{pipeline}/{classifier}".encode()))
    y = np.r_[np.ones(12, int), np.zeros(18, int)]
    score = signal * y + rng.normal(size=y.size)
    preds = pd.DataFrame(
        {
            "patient_id": [f"P{i:02d}" for i in range(y.size)],
            "fold": np.arange(y.size) % 3 + 1,
            "y_true": y,
            "score": score,
            "y_pred": (score > signal / 2).astype(int),
        }
    )
    values = {
        m: float(v) for m, v in zip(METRICS, rng.uniform(0.5, 0.9, len(METRICS)), strict=True)
    }
    metrics = {
        "endpoint": endpoint,
        "pipeline": pipeline,
        "classifier": classifier,
        "modalities": [pipeline],
        "n_patients": 30,
        "n_positive": 12,
        "n_features_in": 25,
        "folds": [
            {"fold": k, "n_test": 10, **{m: v - 0.01 * k for m, v in values.items()}}
            | {"best_params": {"clf__C": 10.0**-k, "select": {"k": 5 * k}}}
            for k in (1, 2, 3)
        ],
        "pooled": values,
        "mean": {m: v - 0.02 for m, v in values.items()},
        "sd": {m: 0.04 for m in values},
        "ci95": {m: [v - 0.1, v + 0.1] for m, v in values.items()},
    }
    out = root / endpoint / pipeline / classifier
    out.mkdir(parents=True)
    (out / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    preds.to_csv(out / "predictions.tsv", sep="\t", index=False)
    pd.DataFrame({"fold": [1, 2, 3], "modality": pipeline, "feature": "f1"}).to_csv(
        out / "selected_features.tsv", sep="\t", index=False
    )
    plot_roc(preds, out / "performance.png")
    if classifier == "rf":  # SHAP outputs, as the workflow's shap rule writes them
        (out / "shap").mkdir()
        shap = preds[["patient_id", "fold"]].assign(repeat=0, feature="radiomics:a")
        shap = shap.assign(value=score, shap=score - score.mean(), base_value=score.mean())
        shap.to_csv(out / "shap" / "patients.tsv", sep="\t", index=False)
        pd.DataFrame({"feature": ["radiomics:a"], "mean_abs_shap": [0.5]}).to_csv(
            out / "shap" / "importance.tsv", sep="\t", index=False
        )
    if classifier == "logreg" and endpoint == "response":  # a final model, as the workflow's
        X = pd.DataFrame(rng.normal(size=(30, 3)), columns=["radiomics:a", "radiomics:b", "c"])
        fitted = LogisticRegression().fit(X, y)
        model = final.FinalModel.from_out_of_fold(fitted, {"kind": "binary"}, preds, False)
        joblib.dump(model, out / "model.joblib")
    return out


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """One logged study; the SQLite store is shared by the module (creating it is slow)."""
    root = tmp_path_factory.mktemp("results")
    dirs = [make_model_dir(root / "models", *spec) for spec in MODELS]
    (root / "summary.md").write_text("# summary\n", encoding="utf-8")
    image = root / "images" / "P07_ct.nii.gz"  # an input whose path names a patient
    image.parent.mkdir()
    image.write_bytes(b"not really an image")
    uri = tracking.default_tracking_uri(root)
    config = {"study": "demo-study", "cv": {"outer_folds": 3}}
    study_manifest = manifest.build(config, [root / "summary.md", image], Path(__file__).parent)
    info = track.log_study(
        uri,
        "demo-study",
        dirs,
        run_name="workflow-1",
        params={"cv": {"outer_folds": 3, "inner_folds": 3}, "classifiers": ["logreg", "rf"]},
        tags={"cohort": "demo", **track.manifest_tags(study_manifest)},
        artifacts=[root / "summary.md"],
        manifest=study_manifest,
        pseudonym_key="a study key",
    )
    return {"root": root, "dirs": dirs, "uri": uri, "info": info, "manifest": study_manifest}


def _runs(client, experiment_id):
    return client.search_runs([experiment_id], max_results=1000)


def _children(runs, parent_id):
    return [r for r in runs if r.data.tags.get(MLFLOW_PARENT_RUN_ID) == parent_id]


def test_default_tracking_uri(tmp_path):
    uri = tracking.default_tracking_uri(tmp_path / "results")
    assert uri == f"sqlite:///{(tmp_path / 'results').resolve()}/mlflow.db"


def test_flatten():
    flat = track.flatten({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": "x", "f": {}})
    assert flat == {"a.b": 1, "a.c.d": [1, 2], "e": "x", "f": {}}


def test_parent_and_children(study):
    client = mlflow.MlflowClient(study["uri"])
    info = study["info"]
    experiment = client.get_experiment_by_name("demo-study")
    assert experiment.experiment_id == info["experiment_id"]
    runs = _runs(client, info["experiment_id"])
    parents = [r for r in runs if MLFLOW_PARENT_RUN_ID not in r.data.tags]
    assert [p.info.run_id for p in parents] == [info["parent_run_id"]]
    children = _children(runs, info["parent_run_id"])
    assert len(children) == len(MODELS)
    for child in children:  # a nested run per outer fold
        folds = _children(runs, child.info.run_id)
        assert sorted(r.info.run_name for r in folds) == [
            f"{child.info.run_name}/r0f{k}" for k in (1, 2, 3)
        ]
        assert {r.data.tags["snakemake.rule"] for r in folds} == {"outer_fold"}
    assert len(runs) == 1 + 4 * len(MODELS)
    assert {r.info.run_id for r in children} == set(info["child_run_ids"].values())
    assert set(info["child_run_ids"]) == {f"{e}/{p}/{c}" for e, p, c, _ in MODELS}
    assert all(r.info.status == "FINISHED" for r in runs)

    parent = parents[0]
    assert parent.info.run_name == "workflow-1"
    assert parent.data.tags["cohort"] == "demo"
    for run in runs:  # every run names its code, config, inputs and package versions
        assert run.data.tags["radiotx.config_sha256"] == study["manifest"]["config_sha256"]
        assert run.data.tags["radiotx.inputs_sha256"] == study["manifest"]["inputs_sha256"]
        assert run.data.tags["version.scikit-learn"] == sklearn.__version__
        assert len(run.data.tags["mlflow.source.git.commit"]) == 40
    assert parent.data.params["cv.outer_folds"] == "3"
    assert parent.data.params["classifiers"] == "['logreg', 'rf']"
    logged = [a.path for a in client.list_artifacts(parent.info.run_id)]
    assert logged == ["manifest.json", "summary.md"]


def test_child_metrics_params_and_artifacts(study):
    client = mlflow.MlflowClient(study["uri"])
    runs = {r.info.run_id: r for r in _runs(client, study["info"]["experiment_id"])}
    for model_dir in study["dirs"]:
        expected = json.loads((model_dir / "metrics.json").read_text(encoding="utf-8"))
        key = f"{expected['endpoint']}/{expected['pipeline']}/{expected['classifier']}"
        run = runs[study["info"]["child_run_ids"][key]]
        assert run.info.run_name == key  # the endpoint too: the study has two
        assert run.data.tags["endpoint"] == expected["endpoint"]

        got = run.data.metrics
        for metric in METRICS:
            assert got[metric] == pytest.approx(expected["pooled"][metric])
            assert got[f"{metric}_mean"] == pytest.approx(expected["mean"][metric])
            assert got[f"{metric}_sd"] == pytest.approx(expected["sd"][metric])
            assert got[f"{metric}_ci_low"] == pytest.approx(expected["ci95"][metric][0])
            assert got[f"{metric}_ci_high"] == pytest.approx(expected["ci95"][metric][1])
        history = client.get_metric_history(run.info.run_id, "fold_roc_auc")
        by_step = {h.step: h.value for h in history}
        assert by_step == pytest.approx({f["fold"]: f["roc_auc"] for f in expected["folds"]})

        params = run.data.params
        assert params["pipeline"] == expected["pipeline"]
        assert params["n_patients"] == "30"
        assert params["modalities"] == expected["pipeline"]
        assert run.data.tags["snakemake.wildcards.classifier"] == expected["classifier"]
        folds = {
            r.info.run_name.rsplit("/", 1)[1]: r
            for r in _runs(client, study["info"]["experiment_id"])
            if r.data.tags.get(MLFLOW_PARENT_RUN_ID) == run.info.run_id
        }
        assert folds["r0f2"].data.params["clf__C"] == "0.01"
        assert folds["r0f3"].data.params["select.k"] == "15"
        assert folds["r0f3"].data.metrics["roc_auc"] == pytest.approx(
            expected["folds"][2]["roc_auc"]
        )
        assert folds["r0f3"].data.tags["snakemake.wildcards.fold"] == "3"

        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {
            "metrics.json",
            "predictions.tsv",
            "selected_features.tsv",
            "performance.png",
        } <= artifacts


def test_parent_best_auc_per_endpoint(study):
    client = mlflow.MlflowClient(study["uri"])
    parent = client.get_run(study["info"]["parent_run_id"])
    for endpoint in {e for e, *_ in MODELS}:
        best = max(
            json.loads((d / "metrics.json").read_text(encoding="utf-8"))["pooled"]["roc_auc"]
            for d in study["dirs"]
            if d.parts[-3] == endpoint
        )
        assert parent.data.metrics[f"best_roc_auc.{endpoint}"] == pytest.approx(best)


def test_predictions_are_logged_with_pseudonyms(study):
    client = mlflow.MlflowClient(study["uri"])
    run_id = study["info"]["child_run_ids"]["response/early_fusion/rf"]
    logged = pd.read_csv(
        client.download_artifacts(run_id, "predictions.tsv", str(study["root"] / "download")),
        sep="\t",
    )
    local = pd.read_csv(study["dirs"][1] / "predictions.tsv", sep="\t")
    names = pseudonyms.pseudonyms(local["patient_id"], "a study key")
    assert list(logged["patient_id"]) == [names[p] for p in local["patient_id"]]
    assert not set(logged["patient_id"]) & set(local["patient_id"])
    assert logged["score"].tolist() == pytest.approx(local["score"].tolist())
    other = pseudonyms.pseudonyms(["P01"], "another key")
    assert other != pseudonyms.pseudonyms(["P01"], "a study key")


def test_shap_outputs_are_logged_with_pseudonyms(study):
    client = mlflow.MlflowClient(study["uri"])
    run_id = study["info"]["child_run_ids"]["response/early_fusion/rf"]
    logged = {a.path for a in client.list_artifacts(run_id, "shap")}
    assert logged == {"shap/patients.tsv", "shap/importance.tsv"}
    download = study["root"] / "download-shap"
    path = client.download_artifacts(run_id, "shap/patients.tsv", str(download))
    table = pd.read_csv(path, sep="\t")
    local = pd.read_csv(study["dirs"][1] / "shap" / "patients.tsv", sep="\t")
    names = pseudonyms.pseudonyms(local["patient_id"], "a study key")
    assert list(table["patient_id"]) == [names[p] for p in local["patient_id"]]
    assert table["shap"].tolist() == pytest.approx(local["shap"].tolist())
    other = study["info"]["child_run_ids"]["response/radiomics/logreg"]
    assert not client.list_artifacts(other, "shap")  # a model without explanations


def test_the_logged_manifest_names_its_inputs_by_pseudonyms(study):
    client = mlflow.MlflowClient(study["uri"])
    parent = study["info"]["parent_run_id"]
    path = client.download_artifacts(parent, "manifest.json", str(study["root"] / "dl-manifest"))
    text = Path(path).read_text(encoding="utf-8")
    # neither the patient in a file name nor the folder of the study leaves it
    assert "P07" not in text and str(study["root"]) not in text
    logged = json.loads(text)
    local = study["manifest"]
    assert sorted(logged["inputs"].values()) == sorted(local["inputs"].values())
    assert logged["config"] == local["config"] and logged["inputs_sha256"] == local["inputs_sha256"]
    # whoever holds the key names them again
    assert pseudonyms.named_inputs(logged, local["inputs"], "a study key") == local
    named = pseudonyms.named_inputs(logged, list(local["inputs"])[:1], "a study key")
    assert len(set(named["inputs"]) - set(local["inputs"])) == 1  # the unmatched one


def test_pseudonym_key_is_made_once_and_private(tmp_path):
    path = tmp_path / "mlflow" / "pseudonym.key"
    key = pseudonyms.study_key(path)
    assert len(key) == 64 and pseudonyms.study_key(path) == key
    assert path.stat().st_mode & 0o777 == 0o600


def test_tracking_uri_from_config_then_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.example:5000")
    assert tracking.tracking_uri("http://config:5000", tmp_path) == "http://config:5000"
    assert tracking.tracking_uri("", tmp_path) == "http://tracking.example:5000"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert tracking.tracking_uri("", tmp_path) == tracking.default_tracking_uri(tmp_path)


def test_artifacts_stay_next_to_database(study):
    client = mlflow.MlflowClient(study["uri"])
    experiment = client.get_experiment(study["info"]["experiment_id"])
    assert experiment.artifact_location == (study["root"] / "mlartifacts").as_uri()
    run_id = study["info"]["child_run_ids"]["response/early_fusion/rf"]
    assert (study["root"] / "mlartifacts" / run_id / "artifacts" / "predictions.tsv").is_file()


def test_repeated_calls_add_parent_runs(study):
    dirs = [d for d in study["dirs"] if d.parts[-3] == "response"]
    first = track.log_study(study["uri"], "repeat", dirs, run_name="a")
    second = track.log_study(study["uri"], "repeat", dirs, run_name="b")
    assert first["experiment_id"] == second["experiment_id"]
    assert first["parent_run_id"] != second["parent_run_id"]
    # A single endpoint keeps keys and metric names short.
    assert set(first["child_run_ids"]) == {"radiomics/logreg", "early_fusion/rf"}
    client = mlflow.MlflowClient(study["uri"])
    assert "best_roc_auc" in client.get_run(first["parent_run_id"]).data.metrics

    runs = _runs(client, first["experiment_id"])
    parents = [r for r in runs if MLFLOW_PARENT_RUN_ID not in r.data.tags]
    assert {p.info.run_name for p in parents} == {"a", "b"}
    assert len(_children(runs, second["parent_run_id"])) == len(dirs)


def test_missing_inputs_fail_before_logging(study, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "metrics.json").write_text("{}", encoding="utf-8")
    with pytest.raises(FileNotFoundError, match="predictions.tsv"):
        track.log_study(study["uri"], "broken", [broken], run_name="x")
    assert mlflow.MlflowClient(study["uri"]).get_experiment_by_name("broken") is None


def test_a_study_is_logged_to_a_remote_tracking_server(study, tmp_path):
    from conftest import mlflow_server

    backend = f"sqlite:///{tmp_path / 'server.db'}"
    with mlflow_server(backend, tmp_path) as url:
        tracking.check_reachable(url)  # answers its health check
        info = track.log_study(url, "remote-study", study["dirs"][:1], run_name="remote")
        client = mlflow.MlflowClient(url)
        run = client.get_run(info["child_run_ids"]["radiomics/logreg"])
        expected = json.loads((study["dirs"][0] / "metrics.json").read_text(encoding="utf-8"))
        assert run.data.metrics["roc_auc"] == pytest.approx(expected["pooled"]["roc_auc"])
        # artifacts travel through the server into its artifact store
        assert "predictions.tsv" in {a.path for a in client.list_artifacts(run.info.run_id)}
    assert list((tmp_path / "served-artifacts").rglob("predictions.tsv"))
    with pytest.raises(ConnectionError, match=r"unreachable.*Fix: start it"):
        tracking.check_reachable(url, timeout=2)  # the server is gone


def test_final_models_are_mlflow_models_with_a_signature(study):
    run_id = study["info"]["child_run_ids"]["response/radiomics/logreg"]
    client = mlflow.MlflowClient(study["uri"])
    logged = client.search_logged_models(experiment_ids=[study["info"]["experiment_id"]])
    model_info = next(m for m in logged if m.source_run_id == run_id)
    loaded = mlflow.pyfunc.load_model(model_info.artifact_location)
    names = [c.name for c in loaded.metadata.get_input_schema().inputs]
    assert names == ["radiomics:a", "radiomics:b", "c"]
    local = joblib.load(study["dirs"][0] / "model.joblib")
    X = pd.DataFrame(np.random.default_rng(0).normal(size=(5, 3)), columns=names)
    assert np.allclose(np.asarray(loaded.predict(X)), local.predict_proba(X))
    assert client.search_registered_models() == []  # not registered unless asked
    # logging the model leaves no tracking URI behind for later processes to inherit
    assert "MLFLOW_TRACKING_URI" not in os.environ


def test_headline_models_are_registered_when_asked(study):
    info = track.log_study(study["uri"], "registry", study["dirs"][:1], run_name="r", register=True)
    client = mlflow.MlflowClient(study["uri"])
    versions = client.search_model_versions("name='registry.response.radiomics'")
    assert [v.run_id for v in versions] == [info["child_run_ids"]["radiomics/logreg"]]
