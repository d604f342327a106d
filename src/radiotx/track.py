"""MLflow experiment tracking: one parent run per workflow invocation, one child run per model.

This is the only module that talks to MLflow, so the rest of the package runs without it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunStatus
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode
from mlflow.tracking.context.registry import resolve_tags
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from mlflow.utils.validation import (
    MAX_ENTITY_KEY_LENGTH,
    MAX_METRICS_PER_BATCH,
    MAX_PARAM_VAL_LENGTH,
    MAX_PARAMS_TAGS_PER_BATCH,
    MAX_TAG_VAL_LENGTH,
)

from radiotx.report import METRICS, load_metrics

REQUIRED_FILES = ("metrics.json", "predictions.tsv", "selected_features.tsv")
OPTIONAL_FILES = ("performance.png", "model.joblib")
ARTIFACT_DIR = "mlartifacts"
_SQLITE = "sqlite:///"
# MLflow logs table creation and schema migrations at INFO on every fresh database.
_NOISY_LOGGERS = ("mlflow.store.db.utils", "alembic")


def default_tracking_uri(results_dir: str | Path) -> str:
    """``sqlite:///<abs results_dir>/mlflow.db``."""
    return _SQLITE + (Path(results_dir).resolve() / "mlflow.db").as_posix()


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
    if not tracking_uri.startswith(_SQLITE):
        return None
    db = Path(tracking_uri[len(_SQLITE) :]).resolve()
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
    for fold in m.get("folds") or []:
        repeat = f"repeat{fold['repeat']}." if fold.get("repeat") else ""
        name = f"{repeat}fold{fold['fold']}"
        if fold.get("best_params"):
            params[name] = fold["best_params"]
        for key in ("strategy", "rule", "modality"):  # what a fusion's inner CV chose
            if fold.get(key):
                params[f"{name}.{key}"] = fold[key]
    return params


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
            # one step per outer fold of every repeat
            step = 1000 * fold.get("repeat", 0) + fold["fold"]
            out.append(_metric(f"fold_{metric}", fold.get(metric), timestamp, step))
    for fold in m.get("folds") or []:  # the generative sampler's fidelity, per class
        step = 1000 * fold.get("repeat", 0) + fold["fold"]
        for label, values in (fold.get("sampler_fidelity") or {}).items():
            for key in ("ks", "correlation_diff", "nn_ratio"):
                name = f"sampler_fidelity_{key}.class{label}"
                out.append(_metric(name, values.get(key), timestamp, step))
        # a fusion model: each modality's learned weight and block permutation importance
        for modality, part in (fold.get("contribution") or {}).items():
            for key in ("weight", "importance"):
                name = f"modality_{key}.{modality}"
                out.append(_metric(name, part.get(key), timestamp, step))
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
) -> str:
    """One child run for one model directory; returns its run id."""
    tags = {**study_tags, MLFLOW_PARENT_RUN_ID: parent_id}
    tags.update({k: str(m[k]) for k in ("endpoint", "pipeline", "classifier")})
    run = client.create_run(experiment_id, run_name=run_name, tags=resolve_tags(tags))
    run_id = run.info.run_id
    try:
        timestamp = int(time.time() * 1000)
        _log_batch(client, run_id, _params(_model_params(m)), _model_metrics(m, timestamp))
        for name in REQUIRED_FILES + OPTIONAL_FILES:
            if (model_dir / name).is_file():
                client.log_artifact(run_id, str(model_dir / name))
    except BaseException:
        client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED))
        raise
    client.set_terminated(run_id)
    return run_id


def log_study(
    tracking_uri: str,
    experiment: str,
    model_dirs: list,
    *,
    run_name: str,
    params: dict | None = None,
    tags: dict | None = None,
    artifacts: list | None = None,
) -> dict:
    """Log a study as one parent run (config, summary) with a nested child run per model.

    ``tags`` go on the parent and on every child run.

    Each call creates a new parent run. Child runs are named ``pipeline/classifier``
    (``endpoint/pipeline/classifier`` when the study has several endpoints). Returns the
    experiment id, the parent run id, the child run ids keyed by those names and the
    tracking URI.
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
            children = {
                key: _log_model_run(client, experiment_id, parent_id, d, m, _tags(tags), key)
                for key, d, m in zip(keys, dirs, metrics, strict=True)
            }
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
