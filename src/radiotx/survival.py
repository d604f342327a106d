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
from sklearn.base import BaseEstimator, clone
from sklearn.compose import ColumnTransformer
from sklearn.feature_selection import SelectorMixin
from sklearn.impute import SimpleImputer
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from radiotx.errors import InputError


def labels(table: pd.DataFrame, time: str, event: str, event_value, path=None) -> pd.DataFrame:
    """``time`` (float) and ``event`` (bool) per patient; rows with either missing are NaN.

    ``event_value`` is the value of the ``event`` column meaning the event happened (e.g.
    ``Dead``); any other value is censoring at ``time``.
    """
    for column in (time, event):
        if column not in table.columns:
            raise InputError(
                f"survival column '{column}' is not in the clinical table",
                path=path,
                fix="correct endpoints.<name>.time / event in config/config.yaml",
            )
    times = pd.to_numeric(table[time], errors="coerce")
    events = table[event].astype("string").str.strip() == str(event_value)
    known = times.notna() & table[event].notna()
    if (times[known] < 0).any():
        patient = times[known][times[known] < 0].index[0]
        raise InputError(
            f"negative survival time {times[patient]}", patient=patient, path=path, fix="check it"
        )
    out = pd.DataFrame({"time": times, "event": events.astype("boolean")}, index=table.index)
    return out.where(known)


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


def build(blocks: dict[str, list[str]], model: str, *, seed: int = 42, k: int = 20) -> Pipeline:
    """Per-modality impute -> scale -> variance filter -> Cox-score selection, then a
    survival model (``coxnet``, ``rsf`` or ``survival_svm``)."""
    from sklearn.feature_selection import VarianceThreshold

    if model not in MODELS:
        raise ValueError(f"unknown survival model {model!r}; choose from {sorted(MODELS)}")
    prep = ColumnTransformer(
        [
            (
                name,
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                        ("scale", StandardScaler()),
                        ("variance", VarianceThreshold(0.0)),
                        ("select", CoxScoreSelector(k=min(k, len(cols)))),
                    ]
                ),
                cols,
            )
            for name, cols in blocks.items()
        ],
        verbose_feature_names_out=False,
    )
    estimator, _ = MODELS[model](seed)
    return Pipeline([("prep", prep), ("model", estimator)])


def grid(blocks: dict[str, list[str]], model: str, k_values, seed: int = 42) -> list[dict]:
    """The same k for every block crossed with the model's own grid."""
    _, space = MODELS[model](seed)
    return [
        {
            **{f"prep__{b}__select__k": [min(k, len(c))] for b, c in blocks.items()},
            **{f"model__{key}": values for key, values in space.items()},
        }
        for k in sorted(set(k_values))
    ]


def concordance(y, risk) -> float:
    """Harrell's C: the share of comparable pairs whose higher risk fails first."""
    from sksurv.metrics import concordance_index_censored

    return float(concordance_index_censored(y["event"], y["time"], risk)[0])


def time_auc(y_train, y_test, risk, times) -> dict[float, float]:
    """Cumulative/dynamic AUC at each of ``times`` (inverse-probability-of-censoring
    weights from the training rows), as scikit-survival computes it."""
    from sksurv.metrics import cumulative_dynamic_auc

    auc, _ = cumulative_dynamic_auc(y_train, y_test, risk, times)
    return {float(t): float(a) for t, a in zip(times, auc, strict=True)}


def nested_cv(
    pipeline, space, X: pd.DataFrame, y: np.ndarray, fold: pd.Series, *, inner_splits=3, seed=42
) -> dict:
    """Tune by C-index in the inner CV of each outer training set; score the held-out fold.

    Inner folds are stratified by event so every one has events. Returns the per-patient
    out-of-fold risks, per-fold and pooled C-index, and the time-dependent AUC of the pooled
    risks at the quartiles of the event times.
    """
    risks = pd.Series(np.nan, index=X.index)
    records = []
    for k in sorted(fold.unique()):
        test = (fold == k).to_numpy()
        inner = StratifiedKFold(inner_splits, shuffle=True, random_state=seed + int(k))
        splits = list(inner.split(X.loc[~test], y[~test]["event"]))
        search = GridSearchCV(clone(pipeline), space, cv=splits, n_jobs=1)
        search.fit(X.loc[~test], y[~test])
        risk = search.best_estimator_.predict(X.loc[test])
        risks[test] = risk
        records.append(
            {
                "fold": int(k),
                "n_test": int(test.sum()),
                "c_index": concordance(y[test], risk),
                "inner_c_index": float(search.best_score_),
            }
        )
    event_times = y["time"][y["event"]]
    times = np.quantile(event_times, [0.25, 0.5, 0.75])
    times = times[(times > y["time"].min()) & (times < y["time"].max())]
    c_values = [r["c_index"] for r in records]
    return {
        "folds": records,
        "pooled": {"c_index": concordance(y, risks.to_numpy())},
        "mean": {"c_index": float(np.mean(c_values))},
        "sd": {"c_index": float(np.std(c_values, ddof=1))},
        "time_auc": time_auc(y, y, risks.to_numpy(), times) if len(times) else {},
        "risks": risks,
    }
