"""Outer cross-validation folds, made once per endpoint and reused by every model job.

Storing the folds (rather than re-deriving them in each job) is what makes single-modality
baselines and fusion strategies comparable: they are scored on identical patients per fold.
"""

from __future__ import annotations

import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from radiotx.errors import InputError


def make_folds(
    labels: pd.Series, n_splits: int = 5, seed: int = 42, groups: pd.Series | None = None
) -> pd.DataFrame:
    """Assign every labelled patient to one outer test fold.

    Stratified by label and grouped (all rows of a group land in the same fold), so that
    lesion-level or repeated rows of one patient can never sit on both sides of a split.
    Patients with a missing label are left out.
    """
    labels = labels.dropna().astype(int).sort_index()
    groups = labels.index.to_series() if groups is None else groups.reindex(labels.index)
    smallest = labels.value_counts().min() if labels.nunique() == 2 else 0
    if smallest < n_splits:
        raise InputError(
            f"the endpoint '{labels.name}' has {smallest} patients in its smallest class, "
            f"fewer than the {n_splits} outer folds",
            fix="lower cv.outer_folds in config/config.yaml or add patients",
        )
    cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    fold = pd.Series(-1, index=labels.index, dtype=int)
    for k, (_, test) in enumerate(cv.split(labels.to_frame(), labels, groups)):
        fold.iloc[test] = k
    return pd.DataFrame(
        {"patient_id": labels.index, "fold": fold.to_numpy(), "label": labels.to_numpy()}
    )


def write(folds: pd.DataFrame, path) -> None:
    folds.to_csv(path, sep="\t", index=False)


def read(path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype={"patient_id": str})
