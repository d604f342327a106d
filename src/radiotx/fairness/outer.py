"""Bias mitigations in the outer cross-validation.

Each mitigation (:mod:`radiotx.fairness.mitigation`) of a model is fitted on an outer
fold's training patients, with the model's inner-CV choice of hyper-parameters, and scored
on that fold's test patients: the same honest estimate as the model's own, so that the
accuracy and fairness of the two can be set side by side.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from radiotx.fairness import mitigation

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Options:
    """What to mitigate (config ``fairness.mitigate``): the sensitive ``attribute``, each
    patient's group under it (``groups``), the models and the methods."""

    attribute: str
    groups: pd.Series
    models: tuple[str, ...] = ("selected",)
    methods: tuple[str, ...] = mitigation.METHODS
    constraint: str = "equalized_odds"

    @classmethod
    def from_config(cls, settings: dict | None, subgroups: pd.DataFrame | None) -> Options | None:
        if not settings or subgroups is None:
            return None
        attribute = settings["attribute"]
        return cls(
            attribute,
            subgroups[attribute],
            tuple(settings["models"]),
            tuple(settings["methods"]),
            settings["constraint"],
        )


def fold_hook(options: Options, repeat: int, fold: int, inner_splits: int, seed: int):
    """``mitigate(name, fitted, X_train, y_train, X_test, y_test)`` for
    :func:`radiotx.evaluate.evaluate_fold`: by method, the test predictions of each
    mitigation of the models named in ``options`` (or why it does not apply)."""

    def mitigate(name, fitted, X_train, y_train, X_test, y_test):
        if name not in options.models:
            return None
        train = options.groups.reindex(X_train.index).fillna("missing").to_numpy()
        test = options.groups.reindex(X_test.index).fillna("missing").to_numpy()
        out = {}
        for method in options.methods:
            if not mitigation.applies(fitted, method):
                out[method] = {"error": f"{method} does not apply to {_final_step(fitted)}"}
                log.info("%s: %s does not apply (repeat %d, fold %d)", name, method, repeat, fold)
                continue
            model = mitigation.Mitigated(
                fitted, method, options.constraint, inner_splits=inner_splits, seed=seed
            )
            try:
                model.fit(X_train, y_train, sensitive_features=train)
                score = model.decision_scores(X_test, sensitive_features=test)
                pred = np.asarray(model.predict(X_test, sensitive_features=test), dtype=int)
            except ValueError as error:  # e.g. a group of the test fold absent in training
                out[method] = {"error": str(error)}
                log.warning(
                    "%s: %s failed in repeat %d, fold %d: %s", name, method, repeat, fold, error
                )
                continue
            out[method] = {
                "predictions": {
                    "patient_id": list(X_test.index),
                    "repeat": [int(repeat)] * len(X_test),
                    "fold": [int(fold)] * len(X_test),
                    "y_true": y_test.astype(int).tolist(),
                    "score": np.asarray(score, dtype=float).tolist(),
                    "y_pred": pred.tolist(),
                },
            }
        return out

    return mitigate


def _final_step(estimator) -> str:
    """The class of the step that would take the weights: a pipeline's last step."""
    steps = getattr(estimator, "steps", None)
    return type(steps[-1][1] if steps else estimator).__name__


def mitigated_models(folds: list[dict]) -> list[str]:
    """The models with mitigations in the outer-fold results of an (endpoint, pipeline)."""
    return sorted({name for results in folds for name, r in results.items() if r.get("mitigated")})


def collect(folds: list[dict], model: str) -> dict[str, pd.DataFrame | str]:
    """The out-of-fold predictions of each mitigation of ``model``, from the outer-fold
    results of its (endpoint, pipeline) (``results`` of each outer-fold JSON); a method
    that failed in any fold gives the first fold's error message instead."""
    parts: dict[str, list[pd.DataFrame]] = {}
    errors: dict[str, str] = {}
    for results in folds:
        mitigated = results.get(model, {}).get("mitigated") or {}
        for method, part in mitigated.items():
            if "error" in part:
                errors.setdefault(method, part["error"])
            else:
                parts.setdefault(method, []).append(pd.DataFrame(part["predictions"]))
    out: dict[str, pd.DataFrame | str] = dict(errors)
    for method, frames in parts.items():
        if method not in errors:
            table = pd.concat(frames, ignore_index=True)
            table["patient_id"] = table["patient_id"].astype(str)
            out[method] = table
    return out
