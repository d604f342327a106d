"""Subgroup performance of a survival model: Harrell's C-index per subgroup and the gap
between subgroups, the survival counterpart of :mod:`radiotx.fairness.performance`."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from radiotx import evaluate, survival
from radiotx.fairness.performance import MISSING, OVERALL, QUANTILES, gap

SURVIVAL_METRICS = ("n", "events", "c_index")


def survival_summary(
    predictions: pd.DataFrame,
    groups_table: pd.DataFrame,
    *,
    n_boot: int = 200,
    seed: int = 42,
    min_group: int = 5,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The survival counterpart of :func:`~radiotx.fairness.performance.fairness_summary`,
    on out-of-fold risks (``time``, ``event``, ``score``, ``fold``): patients, events and
    Harrell's C-index (comparable pairs within each outer fold) per group
    with a 95 % CI (rows resampled within the group), and the C-index gap between the
    groups of at least ``min_group`` patients, its CI from the same resamples. Returns
    (subgroups, disparities) in the columns of the binary tables."""
    y = survival.as_structured(predictions)
    c_index = survival.within_fold_concordance
    event = y["event"]
    stratum = evaluate.fold_strata(predictions)
    risk = predictions["score"].to_numpy(dtype=float)
    ids = predictions["patient_id"].astype(str)
    rows, gaps = [], []
    rng = np.random.default_rng(seed)
    for attribute in groups_table.columns:
        group_of = ids.map(groups_table[attribute]).fillna(MISSING).astype(str).to_numpy()
        members = {OVERALL: np.arange(len(ids))}
        members.update({g: np.flatnonzero(group_of == g) for g in sorted(set(group_of))})
        point, draws, compared = {}, {}, []
        for group, index in members.items():
            picks = rng.choice(index, size=(n_boot, len(index)))
            draws[group] = np.array([c_index(y[d], risk[d], stratum[d]) for d in picks])
            point[group] = c_index(y[index], risk[index], stratum[index])
            n = ids.iloc[index].nunique()
            if group != OVERALL and n >= min_group:
                compared.append(group)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # every draw undefined
                low, high = np.nanquantile(draws[group], QUANTILES) if n_boot else (np.nan,) * 2
            small = group != OVERALL and n < min_group
            rows += [
                (attribute, group, "n", float(n), np.nan, np.nan, small),
                (attribute, group, "events", float(event[index].sum()), np.nan, np.nan, small),
                (attribute, group, "c_index", point[group], float(low), float(high), small),
            ]
        value = low = high = np.nan
        note = ""
        if len(compared) >= 2:
            value = gap(np.array([point[g] for g in compared]))
            boot = np.stack([draws[g] for g in compared], axis=-1)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                low, high = np.nanquantile(gap(boot), QUANTILES) if n_boot else (np.nan,) * 2
        else:
            note = f"fewer than two groups of at least {min_group} patients"
        gaps.append(
            (attribute, "c_index_difference", float(value), float(low), float(high),
             ", ".join(compared), note)
        )  # fmt: skip
    subgroups = pd.DataFrame(
        rows, columns=["attribute", "group", "metric", "value", "low", "high", "small"]
    )
    columns = ["attribute", "metric", "value", "low", "high", "groups", "note"]
    return subgroups, pd.DataFrame(gaps, columns=columns)
