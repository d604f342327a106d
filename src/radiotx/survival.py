"""Survival endpoints (time to event, with censoring): models, nested CV and metrics, with
scikit-survival.

The pipelines are those of binary endpoints without the balancing step (censored data have
no classes to balance): per-modality impute -> scale -> variance filter -> k features by
univariate Cox score, then a survival model. Every step is fitted on training rows only;
the inner CV tunes by Harrell's concordance index.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.feature_selection import SelectorMixin
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from radiotx import tables


def as_structured(frame: pd.DataFrame) -> np.ndarray:
    """The structured array scikit-survival expects (``event`` bool, ``time`` float)."""
    from sksurv.util import Surv

    return Surv.from_arrays(frame["event"].astype(bool), frame["time"].astype(float))


class CoxScoreSelector(SelectorMixin, BaseEstimator):
    """The ``k`` features with the largest univariate Cox score statistic (the log-rank
    test for a continuous covariate), computed in closed form for all features at once on
    the training rows. Vectorised by hand: scikit-survival has no univariate filter."""

    def __init__(self, k: int = 20):
        self.k = k

    def fit(self, X, y):
        X = np.asarray(X, dtype=float)
        time, event = y["time"], y["event"].astype(bool)
        order = np.argsort(-time, kind="stable")  # latest first: cumulative sums = risk sets
        Xs, ts, es = X[order], time[order], event[order]
        at_risk = np.arange(1, len(ts) + 1)
        mean_risk = np.cumsum(Xs, axis=0) / at_risk[:, None]
        var_risk = np.cumsum(Xs**2, axis=0) / at_risk[:, None] - mean_risk**2
        # with ties, the risk set of a time includes every patient with that time
        last = np.searchsorted(-ts, -ts, side="right") - 1
        mean_risk, var_risk = mean_risk[last], var_risk[last]
        score = ((Xs - mean_risk) * es[:, None]).sum(axis=0)
        information = (var_risk * es[:, None]).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.scores_ = np.nan_to_num(score**2 / information, nan=0.0, posinf=0.0)
        self.n_features_in_ = X.shape[1]
        return self

    def _get_support_mask(self):
        check_is_fitted(self, "scores_")
        k = min(self.k, self.n_features_in_)
        mask = np.zeros(self.n_features_in_, dtype=bool)
        mask[np.argsort(-self.scores_, kind="stable")[:k]] = True
        return mask


def _coxnet(seed):
    from sksurv.linear_model import CoxnetSurvivalAnalysis

    model = CoxnetSurvivalAnalysis(l1_ratio=0.5, alphas=[0.1], max_iter=100_000)
    return model, {"alphas": [[0.3], [0.1], [0.03]], "l1_ratio": [0.5, 0.9]}


def _rsf(seed):
    from sksurv.ensemble import RandomSurvivalForest

    forest = RandomSurvivalForest(n_estimators=200, min_samples_leaf=5, n_jobs=1, random_state=seed)
    return forest, {"min_samples_leaf": [5, 10]}


def _survival_svm(seed):
    from sksurv.svm import FastSurvivalSVM

    return FastSurvivalSVM(max_iter=200, random_state=seed), {"alpha": [0.01, 0.1, 1.0]}


MODELS = {"coxnet": _coxnet, "rsf": _rsf, "survival_svm": _survival_svm}


def build(
    blocks: dict[str, list[str]], model: str, *, seed: int = 42, k: int = 20, prepare=None
) -> Pipeline:
    """Per-modality [modality steps] -> impute -> scale -> variance filter -> Cox-score
    selection [-> block weight, with several blocks], then a survival model (``coxnet``,
    ``rsf`` or ``survival_svm``).
    ``prepare`` maps a modality to its own transformer (e.g. the RNA-seq steps)."""
    from radiotx import models

    if model not in MODELS:
        raise ValueError(f"unknown survival model {model!r}; choose from {sorted(MODELS)}")
    prepare = prepare or {}
    prep = ColumnTransformer(
        [
            (
                name,
                models.block(
                    cols, k, prepare=prepare.get(name), weight=len(blocks) > 1, name=name
                ).set_params(select=CoxScoreSelector(k=min(k, len(cols)))),
                tables.Columns(cols),
            )
            for name, cols in blocks.items()
        ],
        verbose_feature_names_out=False,
    )
    estimator, _ = MODELS[model](seed)
    return Pipeline([("prep", prep), ("model", estimator)])


def spaces(
    blocks: dict[str, list[str]], names, k_values, seed: int = 42, search: dict | None = None
) -> dict[str, list[dict]]:
    """The inner-CV search space of each survival model, with the model as a choice, so
    that one search can choose among them (:func:`radiotx.evaluate.tune_each`)."""
    out = {}
    for name in names:
        estimator, own = MODELS[name](seed)
        own = {**own, **{key: list(values) for key, values in (search or {}).get(name, {}).items()}}
        out[name] = [
            {
                **{f"prep__{b}__select__k": [min(k, len(c))] for b, c in blocks.items()},
                **{f"prep__{b}__weight__total": [k] for b in blocks if len(blocks) > 1},
                "model": [estimator],
                **{f"model__{key}": values for key, values in own.items()},
            }
            for k in sorted(set(k_values))
        ]
    return out


def concordance(y, risk) -> float:
    """Harrell's C: the share of comparable pairs whose higher risk fails first."""
    from sksurv.metrics import concordance_index_censored

    return float(concordance_index_censored(y["event"], y["time"], risk)[0])


def within_fold_concordance(y, risk, fold=None) -> float:
    """Harrell's C over the comparable pairs of patients in the same outer fold (tied
    risks count one half): the risks of different folds come from different fitted models
    (a Cox model's linear predictor in one, a forest's risk in the next), so no pair across
    folds is compared. With ``fold`` None, :func:`concordance`."""
    from sksurv.metrics import concordance_index_censored

    risk = np.asarray(risk, dtype=float)
    fold = np.zeros(len(risk)) if fold is None else np.asarray(fold)
    concordant = tied = comparable = 0
    for f in np.unique(fold):
        rows = fold == f
        try:
            _, con, dis, tied_risk, _ = concordance_index_censored(
                y["event"][rows], y["time"][rows], risk[rows]
            )
        except ValueError:  # no comparable pair in this fold
            continue
        concordant, tied, comparable = (
            concordant + con,
            tied + tied_risk,
            comparable + con + dis + tied_risk,
        )
    return float((concordant + 0.5 * tied) / comparable) if comparable else float("nan")


def time_auc(y_train, y_test, risk, times) -> dict[float, float]:
    """Cumulative/dynamic AUC at each of ``times`` (inverse-probability-of-censoring
    weights from the training rows), as scikit-survival computes it."""
    from sksurv.metrics import cumulative_dynamic_auc

    auc, _ = cumulative_dynamic_auc(y_train, y_test, risk, times)
    return {float(t): float(a) for t, a in zip(times, auc, strict=True)}


def within_fold_time_auc(predictions: pd.DataFrame, times) -> dict[float, float]:
    """Time-dependent AUC of out-of-fold risks at each of ``times``: each outer fold's
    AUC among its own test patients (censoring weights from all of them), averaged over
    the folds weighted by their size. Folds whose follow-up does not reach past a time,
    or that hold no case or no control at it, do not count at that time (NaN when none
    does). Risks of different folds come from different fitted models and are never
    compared with each other; without a ``fold`` column the predictions are one fold."""
    y_all, fold = as_structured(predictions), _folds(predictions)
    risk = predictions["score"].to_numpy()
    labels = np.zeros(len(predictions)) if fold is None else fold
    out = {}
    for t in times:
        values, weights = [], []
        for f in np.unique(labels):
            y = y_all[labels == f]
            cases = (y["time"] <= t) & y["event"]
            inside = y["time"].min() <= t < y["time"].max()
            if not (inside and cases.any() and (y["time"] > t).any()):
                continue
            values.append(time_auc(y_all, y, risk[labels == f], [t])[float(t)])
            weights.append(len(y))
        out[float(t)] = float(np.average(values, weights=weights)) if values else float("nan")
    return out


# --------------------------------------------------------------------------- nested CV


def inner_splits(events: pd.Series, fold: int, n_splits: int, seed: int, repeats: int = 1) -> list:
    """Inner CV splits of one outer training set, stratified by event so every inner
    test fold has events to rank (``repeats`` partitions, as
    :func:`radiotx.evaluate.inner_cv`)."""
    from radiotx import evaluate

    inner = evaluate.inner_cv(int(fold), n_splits, seed, repeats)
    return list(inner.split(events.to_frame(), events.astype(int)))


def evaluate_fold(
    pipeline, spaces_: dict, X: pd.DataFrame, target: pd.DataFrame, outer_fold: pd.Series,
    fold: int, *, inner_folds: int = 3, inner_repeats: int = 1, seed: int = 42, repeat: int = 0,
    union: str | None = None, share: bool = True, selected=None, rule: str = "best",
) -> dict:  # fmt: skip
    """Every survival model tuned by C-index on the training rows of one outer fold (the
    preprocessing shared, as for binary endpoints) and scored on its test rows."""
    from radiotx import evaluate

    test = (outer_fold == fold).to_numpy()
    train = target.loc[~test]
    seed = evaluate.inner_seed(seed, repeat)
    cv = inner_splits(train["event"], fold, inner_folds, seed, inner_repeats)
    tuned = evaluate.tune_each(
        pipeline, spaces_, X.loc[~test], as_structured(train), cv,
        union=union, share=share, scoring=None, rule=rule,
    )  # fmt: skip
    results = {}
    for name, choice in tuned.items():
        results[name] = score_fold(choice, X.loc[test], target.loc[test], fold, repeat, selected)
        results[name].record["n_train"] = int((~test).sum())
    return results


def score_fold(choice, X_test, target_test: pd.DataFrame, fold, repeat=0, selected=None):
    """The FoldResult of one tuned survival pipeline: its risk scores on the test rows."""
    from radiotx import evaluate

    risk = np.asarray(choice.estimator.predict(X_test), dtype=float)
    predictions = pd.DataFrame(
        {
            "patient_id": X_test.index,
            "repeat": repeat,
            "fold": fold,
            "time": target_test["time"].to_numpy(dtype=float),
            "event": target_test["event"].to_numpy(dtype=int),
            "score": risk,
        }
    )
    record = {
        "repeat": int(repeat),
        "fold": int(fold),
        "n_test": len(X_test),
        "c_index": concordance(as_structured(target_test), risk),
        "best_params": {key: evaluate.plain(v) for key, v in choice.params.items()},
        "inner_c_index": choice.inner_score,
    }
    chosen = evaluate.chosen_frame(choice.estimator, fold, selected)
    return evaluate.FoldResult(record, predictions, chosen, probability=False)


def pooled_c_index(predictions: pd.DataFrame) -> float:
    """Harrell's C of the out-of-fold risks over the pairs within each outer fold
    (:func:`within_fold_concordance`), averaged over repeats of the outer CV."""
    from radiotx import evaluate

    return float(
        np.mean(
            [
                within_fold_concordance(as_structured(p), p["score"].to_numpy(), _folds(p))
                for p in evaluate.by_repeat(predictions)
            ]
        )
    )


def _folds(predictions: pd.DataFrame):
    return predictions["fold"].to_numpy() if "fold" in predictions else None


def summary(result, n_boot: int = 1000, seed: int = 42) -> dict:
    """Pooled C-index (averaged over repeats) with its patient-bootstrap CI, per-fold mean
    and SD with the corrected resampled t CI, and the time-dependent AUC within the outer
    folds (:func:`within_fold_time_auc`) at the quartiles of the event times."""
    from radiotx import evaluate

    predictions = result.predictions
    per_fold = pd.DataFrame(result.folds)
    parts = evaluate.by_repeat(predictions)
    first = parts[0]
    y = as_structured(first)
    event_times = y["time"][y["event"]]
    times = np.quantile(event_times, [0.25, 0.5, 0.75]) if len(event_times) else []
    times = [t for t in times if y["time"].min() < t < y["time"].max()]
    aucs = [within_fold_time_auc(part, times) for part in parts] if times else []
    n_test = per_fold["n_test"].mean()
    n_patients = predictions["patient_id"].nunique()
    out = {
        "folds": result.folds,
        "pooled": {"c_index": pooled_c_index(predictions)},
        "mean": {"c_index": float(per_fold["c_index"].mean())},
        "sd": {"c_index": float(per_fold["c_index"].std(ddof=1))},
        "ci95": {"c_index": bootstrap_c_index(predictions, n_boot, seed)},
        "ci95_t": {
            "c_index": evaluate.corrected_t_ci(per_fold["c_index"], n_test, n_patients - n_test)
        },
        "time_auc": {
            str(round(t)): float(np.nanmean([a[t] for a in aucs]))
            for t in (aucs[0] if aucs else {})
            if np.isfinite([a[t] for a in aucs]).any()
        },
        "n_events": int(first["event"].sum()),
    }
    if len(parts) > 1:
        out["repeats"] = len(parts)
    return out


def bootstrap_c_index(predictions: pd.DataFrame, n_boot: int = 1000, seed: int = 42) -> list:
    """95 % percentile CI of the C-index over patients resampled with replacement (within
    event status), averaged over repeats of the outer CV like the estimate itself."""
    from radiotx import evaluate

    parts = evaluate.by_repeat(predictions)
    rng = np.random.default_rng(seed)
    events = parts[0]["event"].to_numpy(dtype=bool)
    pos, neg = np.flatnonzero(events), np.flatnonzero(~events)
    draws = np.hstack(
        [rng.choice(pos, size=(n_boot, len(pos))), rng.choice(neg, size=(n_boot, len(neg)))]
    )
    replicates = np.zeros(n_boot)
    for part in parts:
        y, fold = as_structured(part), _folds(part)
        risk = part["score"].to_numpy()
        replicates += [
            within_fold_concordance(y[d], risk[d], None if fold is None else fold[d]) for d in draws
        ]
    replicates /= len(parts)
    return [float(np.nanquantile(replicates, q)) for q in (0.025, 0.975)]
