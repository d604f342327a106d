"""Outer cross-validation folds, made once per endpoint and reused by every model job.

Storing the folds (rather than re-deriving them in each job) is what makes single-modality
baselines and fusion strategies comparable: they are scored on identical patients per fold.
The stored table (:func:`make_splits`) has one row per development patient and repeat of
the outer CV, and one row per patient of the locked hold-out set, which no model sees
until the final models are scored on it once.
"""

from __future__ import annotations

import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

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
    smallest = labels.value_counts().min() if labels.nunique() >= 2 else 0
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


DEVELOPMENT, HOLDOUT = "development", "holdout"
COLUMNS = ["patient_id", "label", "set", "repeat", "fold"]


def make_splits(
    labels: pd.Series,
    n_splits: int = 5,
    *,
    repeats: int = 1,
    holdout: float = 0.0,
    seed: int = 42,
    sites: pd.Series | None = None,
) -> pd.DataFrame:
    """The stored splits of one endpoint: a locked hold-out set (a stratified ``holdout``
    share of the labelled patients; none at 0) and ``repeats`` independent stratified
    K-fold partitions of the others (repeat ``r`` shuffled with seed ``seed + r``, so
    repeat 0 equals :func:`make_folds`). Hold-out rows have repeat and fold -1.

    ``sites`` (each patient's site, scanner or other group) turns the outer CV into
    leave-one-site-out: fold ``k`` is the ``k``-th site in sorted order, so every model
    is scored on a site that none of its training patients came from.
    """
    labels = labels.dropna().astype(int).sort_index()
    every, frames = labels, []
    if holdout:
        if not 0 < holdout < 1:
            raise InputError(
                f"cv.holdout is {holdout}, not a share between 0 and 1",
                fix="set cv.holdout to e.g. 0.2 (or 0 for no hold-out set)",
            )
        develop, locked = train_test_split(
            labels.index, test_size=holdout, stratify=labels, random_state=seed
        )
        frames.append(
            pd.DataFrame({"patient_id": sorted(locked), "set": HOLDOUT, "repeat": -1, "fold": -1})
        )
        labels = labels.loc[sorted(develop)]
    if sites is not None:
        if repeats != 1:
            raise InputError(
                f"cv.repeats is {repeats}, but leave-one-site-out folds are the same in "
                "every repeat",
                fix="set cv.repeats to 1 with cv.leave_out",
            )
        frames.append(site_folds(labels, sites, n_splits).assign(set=DEVELOPMENT, repeat=0))
    for r in range(repeats if sites is None else 0):
        folds = make_folds(labels, n_splits=n_splits, seed=seed + r)
        frames.append(folds[["patient_id", "fold"]].assign(set=DEVELOPMENT, repeat=r))
    table = pd.concat(frames, ignore_index=True)
    table["label"] = table["patient_id"].map(every).astype(int)
    return table[COLUMNS]


def site_folds(labels: pd.Series, sites: pd.Series, n_splits: int) -> pd.DataFrame:
    """Leave-one-site-out outer folds of the labelled patients (see :func:`make_splits`)."""
    sites = sites.reindex(labels.index)
    unknown = sorted(sites.index[sites.isna() | (sites == "missing")])
    if unknown:
        raise InputError(
            f"{len(unknown)} patients have no value of the cv.leave_out attribute "
            f"({', '.join(unknown[:10])}{', ...' if len(unknown) > 10 else ''})",
            fix="record their site in the clinical table, or drop them from the patient sheet",
        )
    names = sorted(sites.unique())
    if len(names) != n_splits:
        raise InputError(
            f"the endpoint '{labels.name}' has patients from {len(names)} sites "
            f"({', '.join(names)}), but cv.outer_folds is {n_splits}",
            fix=f"set cv.outer_folds to {len(names)}: one outer fold per left-out site",
        )
    for name in names:
        counts = labels[sites == name].value_counts()
        if len(counts) < 2 and labels.nunique() >= 2:
            raise InputError(
                f"site {name} has only patients of class {counts.index[0]} for the "
                f"endpoint '{labels.name}', so no AUC can be computed when it is left out",
                fix="merge it with another site, or leave cv.leave_out empty",
            )
    fold = sites.map({name: k for k, name in enumerate(names)}).astype(int)
    return pd.DataFrame({"patient_id": labels.index, "fold": fold.to_numpy()})


def outer(folds: pd.DataFrame, repeat: int = 0) -> pd.Series:
    """The outer fold of each development patient in one repeat (a table of
    :func:`make_folds` counts as a single repeat without hold-out)."""
    if "repeat" in folds:
        folds = folds[(folds["set"] == DEVELOPMENT) & (folds["repeat"] == repeat)]
    return folds.set_index("patient_id")["fold"].astype(int)


def repeat_ids(folds: pd.DataFrame) -> list[int]:
    if "repeat" not in folds:
        return [0]
    return sorted(folds.loc[folds["set"] == DEVELOPMENT, "repeat"].unique().tolist())


def development_patients(folds: pd.DataFrame) -> list[str]:
    if "set" in folds:
        folds = folds[folds["set"] == DEVELOPMENT]
    return sorted(folds["patient_id"].unique())


def holdout_patients(folds: pd.DataFrame) -> list[str]:
    if "set" not in folds:
        return []
    return sorted(folds.loc[folds["set"] == HOLDOUT, "patient_id"])


def write(folds: pd.DataFrame, path) -> None:
    folds.to_csv(path, sep="\t", index=False)


def read(path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype={"patient_id": str})
