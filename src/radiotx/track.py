"""MLflow experiment tracking: one parent run per workflow invocation, one child run per model.

This is the only module that talks to MLflow, so the rest of the package runs without it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunStatus
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode
from mlflow.tracking.context.registry import resolve_tags
from mlflow.utils.mlflow_tags import MLFLOW_GIT_COMMIT, MLFLOW_PARENT_RUN_ID
from mlflow.utils.validation import (
    MAX_ENTITY_KEY_LENGTH,
    MAX_METRICS_PER_BATCH,
    MAX_PARAM_VAL_LENGTH,
    MAX_PARAMS_TAGS_PER_BATCH,
    MAX_TAG_VAL_LENGTH,
)

from radiotx.pseudonyms import pseudonyms, shareable_manifest
from radiotx.report import METRICS, headline_models, load_metrics
from radiotx.tracking import SQLITE

REQUIRED_FILES = ("metrics.json", "predictions.tsv", "selected_features.tsv")
# logged as they are; predictions.tsv with pseudonyms when asked, model.joblib as an MLflow model
ARTIFACT_FILES = ("metrics.json", "selected_features.tsv", "performance.png")
PLOTS = "plots"  # a model's evaluation figures (ROC, PR, calibration, decision curve, ...)
SHAP = "shap"  # a model's SHAP explanations; patients.tsv names patients (pseudonymised)
IMAGE_ATTRIBUTIONS = "attributions.tsv"  # per-patient image attributions (pseudonymised)
SHAP_PATIENTS = "patients.tsv"
ARTIFACT_DIR = "mlartifacts"
# MLflow logs table creation and schema migrations at INFO on every fresh database.
_NOISY_LOGGERS = ("mlflow.store.db.utils", "alembic")


# --------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """Raise MLflow's chatty loggers to WARNING for the duration; errors still surface."""
    loggers = [logging.getLogger(name) for name in _NOISY_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def flatten(data: Mapping, prefix: str = "") -> dict[str, Any]:
    """Flatten nested mappings into ``{"a.b.c": value}``."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, name))
        else:
            out[name] = value
    return out


def _key(name: str) -> str:
    """Make a param/metric key acceptable to MLflow (restricted characters and length)."""
    key = re.sub(r"[^\w.\- :/]", "_", str(name)).strip("/")
    key = re.sub(r"/{2,}", "/", key)
    return key[:MAX_ENTITY_KEY_LENGTH] or "_"


def _params(data: Mapping) -> list[Param]:
    return [Param(_key(k), str(v)[:MAX_PARAM_VAL_LENGTH]) for k, v in flatten(data).items()]


def _tags(data: Mapping | None) -> dict[str, str]:
    return {str(k): str(v)[:MAX_TAG_VAL_LENGTH] for k, v in (data or {}).items()}


def _metric(key: str, value, timestamp: int, step: int = 0) -> Metric | None:
    """An MLflow metric, or None for a missing (null) value."""
    if value is None:
        return None
    return Metric(_key(key), float(value), timestamp, int(step))


def _log_batch(
    client: MlflowClient, run_id: str, params: list[Param], metrics: list[Metric | None]
) -> None:
    """Log params and metrics in chunks that respect MLflow's per-request limits."""
    metrics = [m for m in metrics if m is not None]
    for i in range(0, len(params), MAX_PARAMS_TAGS_PER_BATCH):
        client.log_batch(run_id, params=params[i : i + MAX_PARAMS_TAGS_PER_BATCH])
    for i in range(0, len(metrics), MAX_METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=metrics[i : i + MAX_METRICS_PER_BATCH])


def _log_path(client: MlflowClient, run_id: str, path: Path) -> None:
    if path.is_dir():
        client.log_artifacts(run_id, str(path), artifact_path=path.name)
    else:
        client.log_artifact(run_id, str(path))


def _artifact_location(tracking_uri: str) -> str | None:
    """``mlartifacts/`` beside a SQLite database; None lets a remote server decide."""
    if not tracking_uri.startswith(SQLITE):
        return None
    db = Path(tracking_uri[len(SQLITE) :]).resolve()
    # SQLite creates the file but not its folder.
    db.parent.mkdir(parents=True, exist_ok=True)
    return (db.parent / ARTIFACT_DIR).as_uri()


def _experiment_id(client: MlflowClient, name: str, artifact_location: str | None) -> str:
    """Id of the named experiment, created (or restored from the trash) when needed."""
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            return client.create_experiment(name, artifact_location=artifact_location)
        except MlflowException as err:
            # Another process may have created it between the lookup and the create.
            if err.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
                raise
            experiment = client.get_experiment_by_name(name)
    if experiment.lifecycle_stage == "deleted":
        client.restore_experiment(experiment.experiment_id)
    return experiment.experiment_id


# --------------------------------------------------------------------------- payloads


def _model_params(m: dict) -> dict[str, Any]:
    params = {
        "endpoint": m["endpoint"],
        "pipeline": m["pipeline"],
        "classifier": m["classifier"],
        "modalities": ",".join(m.get("modalities") or []),
        "n_patients": m.get("n_patients"),
        "n_positive": m.get("n_positive"),
        "n_features_in": m.get("n_features_in"),
    }
    if "n_events" in m:  # survival endpoints
        params["n_events"] = m["n_events"]
    if m.get("final"):  # the inner CV's choice on every development patient
        params["final"] = m["final"].get("params") or {}
    return params


def _fold_params(fold: dict) -> dict[str, Any]:
    params = {key: fold.get(key) for key in ("repeat", "fold", "n_train", "n_test")}
    params = {key: value for key, value in params.items() if value is not None}
    params.update(fold.get("best_params") or {})
    for key in ("strategy", "rule", "modality"):  # what a fusion's inner CV chose
        if fold.get(key):
            params[key] = fold[key]
    return params


def _fold_metrics(fold: dict, timestamp: int) -> list[Metric | None]:
    out = [_metric(key, fold.get(key), timestamp) for key in (*METRICS, "c_index")]
    out.append(_metric("inner_score", fold.get("inner_roc_auc"), timestamp))
    for label, values in (fold.get("sampler_fidelity") or {}).items():
        for key in ("ks", "correlation_diff", "nn_ratio"):
            out.append(_metric(f"sampler_fidelity_{key}.class{label}", values.get(key), timestamp))
    for modality, part in (fold.get("contribution") or {}).items():
        for key in ("weight", "importance"):
            out.append(_metric(f"modality_{key}.{modality}", part.get(key), timestamp))
    return out


def _model_metrics(m: dict, timestamp: int) -> list[Metric | None]:
    out = []
    for metric in (*METRICS, "c_index"):
        lo, hi = (m.get("ci95") or {}).get(metric) or (None, None)
        out += [
            _metric(metric, (m.get("pooled") or {}).get(metric), timestamp),
            _metric(f"{metric}_mean", (m.get("mean") or {}).get(metric), timestamp),
            _metric(f"{metric}_sd", (m.get("sd") or {}).get(metric), timestamp),
            _metric(f"{metric}_ci_low", lo, timestamp),
            _metric(f"{metric}_ci_high", hi, timestamp),
        ]
        for fold in m.get("folds") or []:
            # one step per outer fold of every repeat, for the UI's charts
            out.append(_metric(f"fold_{metric}", fold.get(metric), timestamp, _step(fold)))
    # a fusion model: each modality's mean learned weight and block permutation importance
    parts: dict[str, list[float]] = {}
    for fold in m.get("folds") or []:
        for modality, part in (fold.get("contribution") or {}).items():
            for key in ("weight", "importance"):
                if part.get(key) is not None and not math.isnan(part[key]):
                    parts.setdefault(f"modality_{key}.{modality}", []).append(part[key])
    out += [_metric(name, sum(v) / len(v), timestamp) for name, v in parts.items()]
    return out


def _step(fold: dict) -> int:
    return 1000 * fold.get("repeat", 0) + fold["fold"]


def _selection_cost(metrics: list[dict]) -> dict[tuple, list[tuple[str, float]]]:
    """The cost of model selection (:func:`radiotx.compare.selection_cost`) as metrics of
    each selected model's run: ``selection_cost_vs_<candidate>`` (selected minus fixed)."""
    from radiotx import compare

    out: dict[tuple, list[tuple[str, float]]] = {}
    for row in compare.selection_cost(metrics).itertuples():
        where = (row.endpoint, row.pipeline, "selected")
        out.setdefault(where, []).append((f"selection_cost_vs_{row.candidate}", row.cost))
    return out


def _best_auc(metrics: list[dict], timestamp: int) -> list[Metric | None]:
    """Best pooled ROC AUC per endpoint (suffixed with the endpoint when there are several)."""
    best: dict[str, float] = {}
    for m in metrics:
        auc = (m.get("pooled") or {}).get("roc_auc")
        if auc is not None and not math.isnan(auc):
            best[m["endpoint"]] = max(auc, best.get(m["endpoint"], -math.inf))
    several = len({m["endpoint"] for m in metrics}) > 1
    return [
        _metric(f"best_roc_auc.{ep}" if several else "best_roc_auc", auc, timestamp)
        for ep, auc in best.items()
    ]


def _model_key(m: dict, several_endpoints: bool) -> str:
    key = f"{m['pipeline']}/{m['classifier']}"
    return f"{m['endpoint']}/{key}" if several_endpoints else key


FAIRNESS_PRIVATE = {"subgroups.tsv"}  # each patient's groups: not logged


def _fairness_metrics(folder) -> dict[tuple[str, str, str], list[tuple[str, float]]]:
    """Per (endpoint, pipeline, model): ``fairness.<attribute>.<gap>`` (with ``_ci_low``
    and ``_ci_high``) from disparities.tsv, ``fairness.<attribute>.<group>.<metric>`` from
    subgroup_metrics.tsv, ``mitigation.<method>.<metric>`` from mitigation.tsv."""
    out: dict[tuple[str, str, str], list[tuple[str, float]]] = {}
    if folder is None:
        return out
    gaps = pd.read_csv(Path(folder) / "disparities.tsv", sep="\t")
    for r in gaps.itertuples():
        name = f"fairness.{r.attribute}.{r.metric}"
        out.setdefault((r.endpoint, r.pipeline, r.model), []).extend(
            [(name, r.value), (f"{name}_ci_low", r.low), (f"{name}_ci_high", r.high)]
        )
    groups = pd.read_csv(Path(folder) / "subgroup_metrics.tsv", sep="\t", dtype={"group": str})
    for r in groups[groups["metric"].isin(GROUP_METRICS)].itertuples():
        out.setdefault((r.endpoint, r.pipeline, r.model), []).append(
            (f"fairness.{r.attribute}.{r.group}.{r.metric}", r.value)
        )
    mitigation = pd.read_csv(Path(folder) / "mitigation.tsv", sep="\t")
    mitigation = mitigation.dropna(subset=["endpoint"])
    columns = [c for c in mitigation.columns if c not in MITIGATION_KEYS]
    for r in mitigation.to_dict("records"):
        out.setdefault((r["endpoint"], r["pipeline"], r["model"]), []).extend(
            (f"mitigation.{r['method']}.{c}", r[c])
            for c in columns
            if isinstance(r[c], int | float) and not isinstance(r[c], bool)
        )
    return out


GROUP_METRICS = (
    "n", "roc_auc", "sensitivity", "specificity", "brier", "calibration_intercept", "events",
    "c_index",
)  # fmt: skip
MITIGATION_KEYS = {"endpoint", "pipeline", "model", "method", "note"}


def _check_inputs(model_dirs: list[Path], artifacts: list[Path]) -> None:
    """Fail before any run is created, so a bad call leaves no half-logged study behind."""
    missing = [d / f for d in model_dirs for f in REQUIRED_FILES if not (d / f).is_file()]
    missing += [p for p in artifacts if not p.exists()]
    if missing:
        raise FileNotFoundError(f"missing inputs for tracking: {', '.join(map(str, missing))}")


# --------------------------------------------------------------------------- runs


def _log_model_run(
    client: MlflowClient,
    experiment_id: str,
    parent_id: str,
    model_dir: Path,
    m: dict,
    study_tags: dict[str, str],
    run_name: str,
    pseudonyms: dict[str, str] | None,
    register_as: str | None = None,
) -> str:
    """One child run for one model directory, with a nested run per outer fold; returns
    the model run's id."""
    wildcards = {k: str(m[k]) for k in ("endpoint", "pipeline", "classifier")}
    tags = {**study_tags, **wildcards, MLFLOW_PARENT_RUN_ID: parent_id, "snakemake.rule": "model"}
    tags.update({f"snakemake.wildcards.{k}": v for k, v in wildcards.items()})
    run = client.create_run(experiment_id, run_name=run_name, tags=resolve_tags(tags))
    run_id = run.info.run_id
    try:
        timestamp = int(time.time() * 1000)
        _log_batch(client, run_id, _params(_model_params(m)), _model_metrics(m, timestamp))
        for fold in m.get("folds") or []:
            _log_fold_run(client, experiment_id, run_id, fold, study_tags, run_name, wildcards)
        for name in ARTIFACT_FILES:
            if (model_dir / name).is_file():
                client.log_artifact(run_id, str(model_dir / name))
        if (model_dir / "model.joblib").is_file():
            _log_final_model(client, run_id, model_dir / "model.joblib", register_as)
        if (model_dir / PLOTS).is_dir():
            client.log_artifacts(run_id, str(model_dir / PLOTS), artifact_path=PLOTS)
        if (model_dir / SHAP).is_dir():
            _log_shap(client, run_id, model_dir / SHAP, pseudonyms)
        with tempfile.TemporaryDirectory() as scratch:
            predictions = pd.read_csv(
                model_dir / "predictions.tsv", sep="\t", dtype={"patient_id": str}
            )
            if pseudonyms is not None:
                predictions["patient_id"] = predictions["patient_id"].map(pseudonyms)
            path = Path(scratch) / "predictions.tsv"
            predictions.to_csv(path, sep="\t", index=False)
            client.log_artifact(run_id, str(path))
    except BaseException:
        client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED))
        raise
    client.set_terminated(run_id)
    return run_id


def _log_shap(client: MlflowClient, run_id: str, folder: Path, pseudonyms) -> None:
    """A model's SHAP outputs under ``shap/``: the per-patient values with the same
    pseudonyms as its predictions when asked, the rest (importance, stability, figure) as
    they are."""
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        if path.name != SHAP_PATIENTS or pseudonyms is None:
            client.log_artifact(run_id, str(path), artifact_path=SHAP)
            continue
        with tempfile.TemporaryDirectory() as scratch:
            table = pd.read_csv(path, sep="\t", dtype={"patient_id": str})
            table["patient_id"] = table["patient_id"].map(pseudonyms)
            table.to_csv(Path(scratch) / SHAP_PATIENTS, sep="\t", index=False)
            client.log_artifact(run_id, str(Path(scratch) / SHAP_PATIENTS), artifact_path=SHAP)


def _log_image_explanations(client: MlflowClient, run_id: str, folder: Path, pseudonyms) -> None:
    """One endpoint's image attributions (``results/explain/<endpoint>/deep``) under
    ``explain/<endpoint>/deep``: the per-patient table and the overlay figures (named by
    patient) with pseudonyms when asked, the sanity checks and deletion curves as they are."""
    where = f"explain/{folder.parent.name}/{folder.name}"
    rename = pseudonyms or {}
    with tempfile.TemporaryDirectory() as scratch:
        for path in sorted(folder.iterdir()):
            if path.name == IMAGE_ATTRIBUTIONS:
                table = pd.read_csv(path, sep="\t", dtype={"patient_id": str})
                table["patient_id"] = table["patient_id"].map(lambda p: rename.get(p, p))
                path = Path(scratch) / IMAGE_ATTRIBUTIONS
                table.to_csv(path, sep="\t", index=False)
            if path.is_dir():
                for figure in sorted(path.glob("*.png")):
                    copy = Path(scratch) / f"{rename.get(figure.stem, figure.stem)}.png"
                    shutil.copyfile(figure, copy)
                    client.log_artifact(run_id, str(copy), artifact_path=f"{where}/{path.name}")
                continue
            client.log_artifact(run_id, str(path), artifact_path=where)


def _patient_ids(model_dir: Path) -> set[str]:
    """The patients a model directory or an image-explanation folder names (predictions,
    SHAP values, attributions), to pseudonymise."""
    files = [model_dir / "predictions.tsv", model_dir / SHAP / SHAP_PATIENTS]
    files.append(model_dir / IMAGE_ATTRIBUTIONS)
    return {
        patient
        for path in files
        if path.is_file()
        for patient in pd.read_csv(path, sep="\t", dtype={"patient_id": str})["patient_id"]
    }


def _log_final_model(client: MlflowClient, run_id: str, path: Path, register_as) -> None:
    """The final model as an MLflow model (pyfunc ``predict`` gives the calibrated class
    probabilities, or the risk score for survival) with the signature of its design-matrix
    columns; registered under ``register_as`` when given."""
    import joblib
    import mlflow
    import mlflow.sklearn
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    import radiotx

    model = joblib.load(path)
    inputs = Schema([ColSpec("double", str(name)) for name in model.feature_names_in_])
    if model.survival:
        outputs = Schema([ColSpec("double", "risk")])
    else:
        classes = model.meta.get("classes") or {"0": "negative", "1": "positive"}
        outputs = Schema([ColSpec("double", f"p_{name}") for name in classes.values()])
    with _global_tracking_uri(client.tracking_uri), mlflow.start_run(run_id=run_id):
        mlflow.sklearn.log_model(
            model,
            name="model",
            signature=ModelSignature(inputs=inputs, outputs=outputs),
            pip_requirements=[f"radiotx=={radiotx.__version__}"],
            pyfunc_predict_fn="predict" if model.survival else "predict_proba",
            serialization_format="cloudpickle",
            registered_model_name=register_as,
        )


@contextlib.contextmanager
def _global_tracking_uri(uri: str) -> Iterator[None]:
    """MLflow's model logging works through its global tracking URI, which it also copies
    into the MLFLOW_TRACKING_URI environment variable (inherited by every subprocess): set
    it for the duration only, then restore both."""
    import mlflow
    from mlflow.tracking._tracking_service import utils

    previous, environment = utils._tracking_uri, os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)
        if environment is not None:
            os.environ["MLFLOW_TRACKING_URI"] = environment


def _log_fold_run(client, experiment_id, model_run_id, fold, study_tags, model_name, wildcards):
    repeat = fold.get("repeat", 0)
    tags = {**study_tags, **wildcards, MLFLOW_PARENT_RUN_ID: model_run_id}
    tags.update({"snakemake.rule": "outer_fold", "repeat": str(repeat), "fold": str(fold["fold"])})
    tags.update({f"snakemake.wildcards.{k}": v for k, v in wildcards.items() if k != "classifier"})
    tags.update(
        {"snakemake.wildcards.repeat": str(repeat), "snakemake.wildcards.fold": str(fold["fold"])}
    )
    name = f"{model_name}/r{repeat}f{fold['fold']}"
    run = client.create_run(experiment_id, run_name=name, tags=resolve_tags(tags))
    timestamp = int(time.time() * 1000)
    _log_batch(client, run.info.run_id, _params(_fold_params(fold)), _fold_metrics(fold, timestamp))
    client.set_terminated(run.info.run_id)


def _log_manifest(client: MlflowClient, run_id: str, manifest: dict, key: str | None) -> None:
    shared = manifest if key is None else shareable_manifest(manifest, key)
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "manifest.json"
        path.write_text(json.dumps(shared, indent=2, sort_keys=True), encoding="utf-8")
        client.log_artifact(run_id, str(path))


def manifest_tags(manifest: dict) -> dict[str, str]:
    """The tags that tie a run to its code, config, inputs and environment."""
    git = manifest.get("git") or {}
    tags = {
        "radiotx.config_sha256": manifest["config_sha256"],
        "radiotx.inputs_sha256": manifest["inputs_sha256"],
        **{f"version.{name}": v for name, v in (manifest.get("packages") or {}).items()},
        **{f"platform.{name}": v for name, v in (manifest.get("platform") or {}).items()},
    }
    if git:
        tags.update({MLFLOW_GIT_COMMIT: git["commit"], "radiotx.git_dirty": str(git["dirty"])})
    return tags


def log_study(
    tracking_uri: str,
    experiment: str,
    model_dirs: list,
    *,
    run_name: str,
    params: dict | None = None,
    tags: dict | None = None,
    artifacts: list | None = None,
    manifest: dict | None = None,
    pseudonym_key: str | None = None,
    register: bool = False,
    image_explanations: list | None = None,
    fairness: str | Path | None = None,
) -> dict:
    """Log a study as one parent run (config, summary) with a nested child run per model
    and, nested in each, a run per outer fold (its choices and test-fold metrics).

    ``tags`` go on every run. ``manifest`` (:mod:`radiotx.manifest`) is logged to the
    parent run as ``manifest.json``. With ``pseudonym_key`` the logged predictions (and a
    model's per-patient SHAP values, logged with its other ``shap/`` outputs) carry
    :func:`~radiotx.pseudonyms.pseudonyms` instead of patient ids, and the manifest names its
    input files by pseudonyms instead of their paths. Each final model (``model.joblib``) is
    logged as an MLflow model; with ``register`` the headline model of each endpoint and
    pipeline (its ``selected`` model, or its only one) becomes a registered model version
    named ``<experiment>.<endpoint>.<pipeline>``. ``image_explanations`` are folders
    ``results/explain/<endpoint>/deep`` (image attributions, their sanity checks and
    overlays), logged to the parent run under ``explain/<endpoint>/deep``, patients
    pseudonymised too. ``fairness`` is the folder of the fairness audit
    (``results/fairness``): each model run gets its subgroup gaps and its mitigations'
    metrics, the parent run the audit's tables (none of which names a patient).

    Each call creates a new parent run. Child runs are named ``pipeline/classifier``
    (``endpoint/pipeline/classifier`` when the study has several endpoints), fold runs
    ``<child>/r<repeat>f<fold>``. Returns the experiment id, the parent run id, the child
    run ids keyed by those names and the tracking URI.
    """
    dirs = [Path(d) for d in model_dirs]
    extra = [Path(p) for p in artifacts or []]
    _check_inputs(dirs, extra)
    metrics = load_metrics(dirs)
    several = len({m["endpoint"] for m in metrics}) > 1
    keys = [_model_key(m, several) for m in metrics]
    if len(set(keys)) != len(keys):
        raise ValueError(f"duplicate models in study: {sorted(keys)}")

    with _quiet_mlflow():
        client = MlflowClient(tracking_uri)
        experiment_id = _experiment_id(client, experiment, _artifact_location(tracking_uri))
        parent = client.create_run(experiment_id, run_name=run_name, tags=resolve_tags(_tags(tags)))
        parent_id = parent.info.run_id
        try:
            _log_batch(client, parent_id, _params(params or {}), [])
            for path in extra:
                _log_path(client, parent_id, path)
            if manifest is not None:
                _log_manifest(client, parent_id, manifest, pseudonym_key)
            explained = [Path(folder) for folder in image_explanations or []]
            ids = set().union(*(_patient_ids(d) for d in dirs + explained))
            names = None if pseudonym_key is None else pseudonyms(sorted(ids), pseudonym_key)
            headline = {
                (m["endpoint"], m["pipeline"], m["classifier"])
                for m in (headline_models(metrics) if register else [])
            }
            audit = _fairness_metrics(fairness)
            for where, pairs in _selection_cost(metrics).items():
                audit.setdefault(where, []).extend(pairs)
            children = {}
            for key, d, m in zip(keys, dirs, metrics, strict=True):
                where = (m["endpoint"], m["pipeline"], m["classifier"])
                name = (
                    f"{experiment}.{m['endpoint']}.{m['pipeline']}" if where in headline else None
                )
                children[key] = _log_model_run(
                    client, experiment_id, parent_id, d, m, _tags(tags), key, names, name
                )
                stamp = int(time.time() * 1000)
                extra = [_metric(k, v, stamp) for k, v in audit.get(where, [])]
                _log_batch(client, children[key], [], extra)
            if fairness is not None:
                for path in sorted(Path(fairness).iterdir()):
                    if path.name not in FAIRNESS_PRIVATE:
                        client.log_artifact(parent_id, str(path), artifact_path="fairness")
            for folder in explained:
                _log_image_explanations(client, parent_id, folder, names)
            _log_batch(client, parent_id, [], _best_auc(metrics, int(time.time() * 1000)))
        except BaseException:
            client.set_terminated(parent_id, RunStatus.to_string(RunStatus.FAILED))
            raise
        client.set_terminated(parent_id)

    return {
        "experiment_id": experiment_id,
        "parent_run_id": parent_id,
        "child_run_ids": children,
        "tracking_uri": tracking_uri,
    }


def study_record(run_id: str, tracking_uri: str) -> tuple[dict, dict[str, dict[str, float]]]:
    """What a logged study recorded, for ``radiotx reproduce``: the manifest attached to its
    parent run ``run_id`` and, per child run (model), its pooled metrics."""
    with _quiet_mlflow():
        client = MlflowClient(tracking_uri)
        run = client.get_run(run_id)
        with tempfile.TemporaryDirectory() as tmp:
            path = client.download_artifacts(run_id, "manifest.json", tmp)
            manifest = json.loads(Path(path).read_text(encoding="utf-8"))
        children = client.search_runs(
            [run.info.experiment_id],
            filter_string=f"tags.{MLFLOW_PARENT_RUN_ID} = '{run_id}'",
        )
    pooled = {*METRICS, "c_index"}
    return manifest, {
        child.info.run_name: {k: v for k, v in child.data.metrics.items() if k in pooled}
        for child in children
    }
