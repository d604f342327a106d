"""Subgroup performance of a binary classifier, and the gaps between subgroups.

A model that is accurate on average can still fail a subgroup: a sex, an age band, a
scanner or a site that is rare in training, or whose images look different, may get
poorly ranked or miscalibrated scores without the overall AUC showing it. This module
reports each metric per subgroup of one attribute (with a bootstrap CI) and the
between-group differences that fairness criteria are stated in:

- equalised odds asks for equal true- and false-positive rates across groups (the model
  errs as often for every group, whatever the true class); its difference is the larger
  of the TPR gap and the FPR gap;
- demographic parity asks for equal selection rates (the share predicted positive)
  across groups, whatever the prevalence in each.

The input is the out-of-fold predictions table of the platform (``patient_id``,
``repeat``, ``fold``, ``y_true``, ``score``, ``y_pred``). With repeated CV a patient has
one row per repeat, and every statistic here is computed on all rows pooled: each patient
counts once per repeat, so the point estimates average over the repeats. AUCs count only
the (positive, negative) pairs of one outer fold of one repeat, since each fold's scores
come from its own fitted model (:func:`radiotx.evaluate.within_fold_auc`). The per-group
CIs of :func:`subgroup_table` come from a row bootstrap within each group, which treats
the rows of one patient as independent and so is too narrow with several repeats; the CIs of
:func:`disparities` resample patients and carry all their rows along, so they are not.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
from fairlearn.metrics import (
    MetricFrame,
    selection_rate,
    true_negative_rate,
    true_positive_rate,
)
from scipy.stats import rankdata

from radiotx import evaluate

METRICS = (
    "n",
    "prevalence",
    "roc_auc",
    "sensitivity",
    "specificity",
    "selection_rate",
    "brier",
    "calibration_intercept",
)
DISPARITIES = (
    "equalized_odds_difference",
    "demographic_parity_difference",
    "auc_difference",
    "sensitivity_difference",
    "specificity_difference",
)
MISSING = "missing"
OVERALL = "overall"
QUANTILES = [0.025, 0.975]
_REQUIRED = ("patient_id", "y_true", "score", "y_pred")


def _nan_on_error(metric: Callable) -> Callable:
    """A metric that gives NaN where it is undefined: a bootstrap sample of a small group
    may hold one class only, and fairlearn's bootstrap lets an exception end the run."""

    def wrapped(y_true, y_pred, **params) -> float:
        try:
            return float(metric(np.asarray(y_true), np.asarray(y_pred), **params))
        except (ValueError, ZeroDivisionError):
            return np.nan

    wrapped.__name__ = getattr(metric, "__name__", "metric")
    return wrapped


def _sensitivity(y_true, y_pred) -> float:
    # fairlearn gives 0 when there is no positive; undefined is NaN, kept out of the CI
    if not (y_true == 1).any():
        return np.nan
    return true_positive_rate(y_true, y_pred, pos_label=1)


def _specificity(y_true, y_pred) -> float:
    if not (y_true == 0).any():
        return np.nan
    return true_negative_rate(y_true, y_pred, pos_label=1)


def _selection_rate(y_true, y_pred) -> float:
    return selection_rate(y_true, y_pred, pos_label=1)


def _roc_auc(y_true, score, stratum) -> float:
    return evaluate.within_fold_auc(y_true, score, stratum)


def _brier(y_true, probability) -> float:
    return np.mean((probability - y_true) ** 2)


def _calibration_in_the_large(y_true, probability) -> float:
    # positive: the model predicts more risk than the group has
    return np.mean(probability) - np.mean(y_true)


def _with_groups(predictions: pd.DataFrame, groups: pd.Series) -> pd.DataFrame:
    """The predictions with a string ``group`` column (patients without one: "missing")
    and the ``stratum`` (:func:`radiotx.evaluate.fold_strata`) of each row."""
    missing = [c for c in _REQUIRED if c not in predictions]
    if missing:
        raise ValueError(f"predictions lack the columns {missing}")
    table = predictions.reset_index(drop=True).copy()
    table["stratum"] = evaluate.fold_strata(table)
    table["patient_id"] = table["patient_id"].astype(str)
    lookup = pd.Series(groups.to_numpy(), index=groups.index.astype(str))
    lookup = lookup[~lookup.index.duplicated()]
    group = table["patient_id"].map(lookup)
    table["group"] = group.where(group.notna(), MISSING).astype(str)
    if (table["group"] == OVERALL).any():
        raise ValueError(f"a group is named {OVERALL!r}, which names the whole cohort here")
    table["y_true"] = table["y_true"].astype(int)
    table["y_pred"] = table["y_pred"].astype(int)
    table["score"] = table["score"].astype(float)
    return table


def _patients_per_group(table: pd.DataFrame) -> pd.Series:
    return table.groupby("group")["patient_id"].nunique().sort_index()


def subgroup_table(
    predictions: pd.DataFrame,
    groups: pd.Series,
    *,
    attribute: str,
    n_boot: int = 200,
    seed: int = 42,
    probability: bool = True,
    min_group: int = 5,
) -> pd.DataFrame:
    """Each metric of :data:`METRICS` per group of one attribute, and overall.

    ``groups`` holds each patient's group (index ``patient_id``); patients not in it form
    the group "missing". ``n`` counts patients, ``prevalence`` is the share of positive
    rows; the other metrics (fairlearn's MetricFrame) get a 95 % CI from a bootstrap of
    the rows within each group (``n_boot`` replicates). ``brier`` and
    ``calibration_intercept`` (mean predicted probability minus prevalence: 0 is ideal,
    positive means over-prediction) need probabilities and are NaN when ``probability``
    is False. Groups of fewer than ``min_group`` patients are reported with ``small``
    True: their estimates are too unstable to compare. Returns a long table: attribute,
    group, metric, value, low, high, small.
    """
    table = _with_groups(predictions, groups)
    if probability and not table["score"].between(0, 1).all():
        raise ValueError("score holds values outside [0, 1]; pass probability=False")
    sizes = _patients_per_group(table)
    label_metrics = {
        "sensitivity": _nan_on_error(_sensitivity),
        "specificity": _nan_on_error(_specificity),
        "selection_rate": _nan_on_error(_selection_rate),
    }
    score_metrics = {"roc_auc": _nan_on_error(_roc_auc)}
    if probability:
        score_metrics["brier"] = _nan_on_error(_brier)
        score_metrics["calibration_intercept"] = _nan_on_error(_calibration_in_the_large)

    sensitive = table["group"].rename(attribute)
    estimates: dict[str, tuple[pd.Series, pd.Series, pd.Series]] = {}
    rng = np.random.default_rng(seed)
    for metrics, y_pred in ((label_metrics, table["y_pred"]), (score_metrics, table["score"])):
        paired = {"roc_auc": {"stratum": table["stratum"].to_numpy()}}
        frame = MetricFrame(
            metrics=metrics, y_true=table["y_true"], y_pred=y_pred, sensitive_features=sensitive,
            sample_params={name: paired[name] for name in metrics if name in paired},
        )  # fmt: skip
        by_group = frame.by_group.copy()
        by_group.loc[OVERALL] = frame.overall
        for name in metrics:
            estimates[name] = (by_group[name], *_bootstrap(table, name, n_boot, rng))

    rows = []
    prevalence = table.groupby("group")["y_true"].mean()
    for group in [OVERALL, *sizes.index]:
        in_group = table if group == OVERALL else table[table["group"] == group]
        n = in_group["patient_id"].nunique()
        small = group != OVERALL and n < min_group
        for metric in METRICS:
            if metric == "n":
                value, low, high = float(n), np.nan, np.nan
            elif metric == "prevalence":
                value = in_group["y_true"].mean() if group == OVERALL else prevalence[group]
                low, high = np.nan, np.nan
            elif metric in estimates:
                value, low, high = (float(s.get(group, np.nan)) for s in estimates[metric])
            else:
                value, low, high = np.nan, np.nan, np.nan
            rows.append((attribute, group, metric, float(value), low, high, small))
    columns = ["attribute", "group", "metric", "value", "low", "high", "small"]
    return pd.DataFrame(rows, columns=columns)


def _bootstrap(table: pd.DataFrame, metric: str, n_boot: int, rng) -> tuple[pd.Series, pd.Series]:
    """95 % percentile bounds of ``metric`` per group (and overall) over ``n_boot`` row
    resamples within each group, computed vectorised (fairlearn's own bootstrap refits
    every metric per replicate, too slow for every model of a study)."""
    low, high = {}, {}
    for group, part in [(OVERALL, table), *table.groupby("group")]:
        if n_boot <= 0 or len(part) < 2:
            low[group] = high[group] = np.nan
            continue
        rows = rng.integers(0, len(part), size=(n_boot, len(part)))
        y = part["y_true"].to_numpy()[rows]
        pred = part["y_pred"].to_numpy()[rows]
        score = part["score"].to_numpy()[rows]
        stratum = part["stratum"].to_numpy()[rows]
        values = _VECTORISED[metric](y, pred, score, stratum)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: no bounds
            low[group], high[group] = np.nanquantile(values, QUANTILES)
    return pd.Series(low), pd.Series(high)


def _ratio(numerator, denominator) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / np.maximum(denominator, 1), np.nan)


def _auc_rows(y: np.ndarray, score: np.ndarray, stratum: np.ndarray) -> np.ndarray:
    """ROC AUC of every row over the pairs within one stratum (Mann-Whitney U from
    mid-ranks, summed over strata); NaN for a row without such a pair. The scores of the
    other strata are set below every score, so each stratum's ranks are its own plus a
    constant."""
    u = pairs = 0.0
    for value in np.unique(stratum):
        inside = stratum == value
        ranks = rankdata(np.where(inside, score, -np.inf), axis=1)
        positives = (y * inside).sum(axis=1)
        negatives = inside.sum(axis=1) - positives
        outside = (~inside).sum(axis=1)
        u = u + (ranks * y * inside).sum(axis=1) - positives * (outside + (positives + 1) / 2)
        pairs = pairs + positives * negatives
    return _ratio(u, pairs)


_VECTORISED = {
    "sensitivity": lambda y, pred, score, _: _ratio((pred * y).sum(1), y.sum(1)),
    "specificity": lambda y, pred, score, _: _ratio(((1 - pred) * (1 - y)).sum(1), (1 - y).sum(1)),
    "selection_rate": lambda y, pred, score, _: pred.mean(1),
    "roc_auc": lambda y, pred, score, stratum: _auc_rows(y, score, stratum),
    "brier": lambda y, pred, score, _: ((score - y) ** 2).mean(1),
    "calibration_intercept": lambda y, pred, score, _: score.mean(1) - y.mean(1),
}


def _rates(counts: np.ndarray) -> dict[str, np.ndarray]:
    """TPR, TNR, FPR and selection rate from summed per-patient counts (last axis:
    positives, true positives, negatives, false positives, rows, selected)."""
    pos, tp, neg, fp, rows, selected = np.moveaxis(counts, -1, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "tpr": np.where(pos > 0, tp / pos, np.nan),
            "tnr": np.where(neg > 0, (neg - fp) / neg, np.nan),
            "fpr": np.where(neg > 0, fp / neg, np.nan),
            "selection": np.where(rows > 0, selected / rows, np.nan),
        }


def _weighted_auc(score, y_true, weights, stratum) -> np.ndarray:
    """ROC AUC of one group under each row of ``weights`` (replicates x rows): the
    Mann-Whitney probability that a positive outranks a negative of the same stratum
    (:func:`radiotx.evaluate.fold_strata`), ties counting one half. Integer weights give
    the AUC of the rows repeated that often, so one sort serves every bootstrap
    replicate."""
    beaten = pairs = 0.0
    for value in np.unique(stratum):
        inside = stratum == value
        part = _weighted_pairs(score[inside], y_true[inside], weights[:, inside])
        beaten, pairs = beaten + part[0], pairs + part[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs > 0, beaten / pairs, np.nan)


def _weighted_pairs(score, y_true, weights) -> tuple[np.ndarray, np.ndarray]:
    """The weighted Mann-Whitney count and the weighted number of (positive, negative)
    pairs of each row of ``weights``."""
    order = np.argsort(score, kind="stable")
    score, y_true, weights = score[order], y_true[order], weights[:, order]
    negative = weights * (y_true == 0)
    below = np.concatenate([np.zeros((len(weights), 1)), np.cumsum(negative, axis=1)], axis=1)
    first = np.searchsorted(score, score, side="left")
    last = np.searchsorted(score, score, side="right")
    beaten = below[:, first] + 0.5 * (below[:, last] - below[:, first])
    positive = weights * (y_true == 1)
    return (positive * beaten).sum(axis=1), positive.sum(axis=1) * negative.sum(axis=1)


def gap(values: np.ndarray) -> np.ndarray:
    """Largest minus smallest group value (groups on the last axis); NaN when any group's
    value is undefined, as the gap then is too."""
    return values.max(axis=-1) - values.min(axis=-1)


def disparities(
    predictions: pd.DataFrame,
    groups: pd.Series,
    *,
    attribute: str,
    n_boot: int = 200,
    seed: int = 42,
    min_group: int = 5,
) -> pd.DataFrame:
    """Between-group differences of one attribute, over the groups of at least
    ``min_group`` patients: equalised odds (the larger of the TPR and FPR gaps, as
    fairlearn's ``equalized_odds_difference``), demographic parity (the selection-rate
    gap, as ``demographic_parity_difference``), and the AUC, sensitivity and specificity
    gaps (largest minus smallest group).

    The point estimates use all rows; the 95 % CI is the percentile interval over
    ``n_boot`` patient bootstraps, stratified by group so that every group keeps its size
    (replicates where a gap is undefined are left out). A gap is NaN when a compared group
    leaves its rate undefined (no positives for TPR, no negatives for FPR, either for AUC),
    where fairlearn would count the empty rate as 0. Returns attribute, metric, value,
    low, high, groups (those compared), note.
    """
    table = _with_groups(predictions, groups)
    sizes = _patients_per_group(table)
    compared = sizes.index[sizes >= min_group].tolist()
    excluded = sizes.index[sizes < min_group].tolist()
    notes = []
    if excluded:
        notes.append(f"left out groups of fewer than {min_group} patients: {', '.join(excluded)}")

    def result(values: dict[str, tuple[float, float, float]]) -> pd.DataFrame:
        rows = [
            (attribute, metric, *values[metric], ", ".join(compared), "; ".join(notes))
            for metric in DISPARITIES
        ]
        columns = ["attribute", "metric", "value", "low", "high", "groups", "note"]
        return pd.DataFrame(rows, columns=columns)

    if len(compared) < 2:
        notes.insert(0, f"fewer than two groups of at least {min_group} patients")
        return result({metric: (np.nan, np.nan, np.nan) for metric in DISPARITIES})

    table = table[table["group"].isin(compared)].sort_values("patient_id", kind="stable")
    patients, row_patient = np.unique(table["patient_id"].to_numpy(), return_inverse=True)
    y_true = table["y_true"].to_numpy()
    y_pred = table["y_pred"].to_numpy()
    score = table["score"].to_numpy()
    stratum = table["stratum"].to_numpy()
    # a patient's rows (one per repeat) travel together in the bootstrap
    per_row = np.column_stack(
        [y_true == 1, (y_true == 1) & (y_pred == 1), y_true == 0, (y_true == 0) & (y_pred == 1)]
        + [np.ones(len(table), bool), y_pred == 1]
    ).astype(float)
    per_patient = np.zeros((len(patients), per_row.shape[1]))
    np.add.at(per_patient, row_patient, per_row)
    patient_group = table.groupby("patient_id")["group"].first().loc[patients].to_numpy()

    rng = np.random.default_rng(seed)
    counts, aucs, boot_counts, boot_aucs = [], [], [], []
    for group in compared:
        members = np.flatnonzero(patient_group == group)
        draws = rng.integers(0, len(members), size=(n_boot, len(members)))
        offsets = (draws + len(members) * np.arange(n_boot)[:, None]).ravel()
        times = np.bincount(offsets, minlength=n_boot * len(members))
        times = times.reshape(n_boot, len(members)).astype(float)
        counts.append(per_patient[members].sum(axis=0))
        boot_counts.append(times @ per_patient[members])
        in_group = np.isin(row_patient, members)
        position = np.searchsorted(members, row_patient[in_group])
        weights = np.vstack([np.ones(in_group.sum()), times[:, position]])
        auc = _weighted_auc(score[in_group], y_true[in_group], weights, stratum[in_group])
        aucs.append(auc[0])
        boot_aucs.append(auc[1:])

    point = _rates(np.stack(counts))
    boot = _rates(np.stack(boot_counts, axis=1))
    point["auc"], boot["auc"] = np.array(aucs), np.stack(boot_aucs, axis=1)

    def gaps(rates: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {
            "equalized_odds_difference": np.maximum(gap(rates["tpr"]), gap(rates["fpr"])),
            "demographic_parity_difference": gap(rates["selection"]),
            "auc_difference": gap(rates["auc"]),
            "sensitivity_difference": gap(rates["tpr"]),
            "specificity_difference": gap(rates["tnr"]),
        }

    point_gaps, boot_gaps = gaps(point), gaps(boot)
    values = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all replicates undefined: NaN CI
        for metric in DISPARITIES:
            low, high = (
                np.nanquantile(boot_gaps[metric], QUANTILES) if n_boot > 0 else (np.nan,) * 2
            )
            values[metric] = (float(point_gaps[metric]), float(low), float(high))
    return result(values)


def fairness_summary(
    predictions: pd.DataFrame,
    groups_table: pd.DataFrame,
    *,
    n_boot: int = 200,
    seed: int = 42,
    probability: bool = True,
    min_group: int = 5,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`subgroup_table` and :func:`disparities` over every attribute (column) of
    ``groups_table`` (index ``patient_id``); returns (subgroups, disparities)."""
    subgroups, gaps = [], []
    for attribute in groups_table.columns:
        groups = groups_table[attribute]
        subgroups.append(
            subgroup_table(
                predictions,
                groups,
                attribute=attribute,
                n_boot=n_boot,
                seed=seed,
                probability=probability,
                min_group=min_group,
            )
        )
        gaps.append(
            disparities(
                predictions,
                groups,
                attribute=attribute,
                n_boot=n_boot,
                seed=seed,
                min_group=min_group,
            )
        )
    if not subgroups:
        raise ValueError("groups_table has no attribute columns")
    return pd.concat(subgroups, ignore_index=True), pd.concat(gaps, ignore_index=True)
