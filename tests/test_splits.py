"""Tests for the stored outer cross-validation folds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from radiotx import splits
from radiotx.errors import InputError


def make_labels(n: int = 100, positives: int = 30, missing: int = 7, seed: int = 0) -> pd.Series:
    rng = np.random.default_rng(seed)
    values = np.r_[np.ones(positives), np.zeros(n - positives)]
    rng.shuffle(values)
    values[rng.choice(n, missing, replace=False)] = np.nan
    index = pd.Index([f"P{i:03d}" for i in rng.permutation(n)], name="patient_id")
    return pd.Series(values, index=index, name="response")


def test_every_labelled_patient_exactly_once():
    labels = make_labels()
    folds = splits.make_folds(labels, n_splits=5, seed=1)

    labelled = labels.dropna()
    assert list(folds.columns) == ["patient_id", "fold", "label"]
    assert folds["patient_id"].is_unique
    assert set(folds["patient_id"]) == set(labelled.index)
    assert len(folds) == len(labelled) == 93
    assert sorted(folds["fold"].unique()) == [0, 1, 2, 3, 4]
    # The labels are carried over as integers, patient by patient.
    assert folds["label"].dtype.kind == "i"
    pd.testing.assert_series_equal(
        folds.set_index("patient_id")["label"].sort_index(),
        labelled.astype(int).sort_index(),
        check_names=False,
    )


def test_folds_are_stratified():
    labels = make_labels()
    folds = splits.make_folds(labels, n_splits=5, seed=3)
    overall = folds["label"].mean()
    sizes = folds.groupby("fold").size()
    assert sizes.max() - sizes.min() <= 1
    rates = folds.groupby("fold")["label"].mean()
    assert np.all(np.abs(rates - overall) <= 0.06), rates.to_dict()
    positives = folds.groupby("fold")["label"].sum()
    assert positives.max() - positives.min() <= 1


def test_folds_are_deterministic_per_seed():
    labels = make_labels()
    a = splits.make_folds(labels, n_splits=5, seed=42)
    b = splits.make_folds(labels.sample(frac=1.0, random_state=9), n_splits=5, seed=42)
    pd.testing.assert_frame_equal(a, b)
    c = splits.make_folds(labels, n_splits=5, seed=43)
    assert list(c["patient_id"]) == list(a["patient_id"])
    assert not np.array_equal(a["fold"].to_numpy(), c["fold"].to_numpy())


def test_smallest_class_smaller_than_n_splits():
    labels = pd.Series([1, 1, 1, 1, 0, 0, 0, 0, 0, 0, np.nan], name="os2y")
    labels.index = [f"P{i}" for i in range(len(labels))]
    with pytest.raises(InputError, match="'os2y' has 4 patients in its smallest class") as info:
        splits.make_folds(labels, n_splits=5)
    assert "Fix:" in str(info.value)
    assert splits.make_folds(labels, n_splits=4)["fold"].nunique() == 4


def test_single_class_is_an_error():
    labels = pd.Series(np.zeros(20), index=[f"P{i}" for i in range(20)], name="y")
    with pytest.raises(InputError, match="0 patients in its smallest class"):
        splits.make_folds(labels, n_splits=3)


def test_groups_never_span_two_folds():
    rng = np.random.default_rng(5)
    n_groups = 40
    sizes = rng.integers(1, 4, n_groups)
    group_labels = (rng.random(n_groups) < 0.35).astype(float)
    rows, groups, labels = [], [], []
    for g, (size, label) in enumerate(zip(sizes, group_labels, strict=True)):
        for lesion in range(size):
            rows.append(f"G{g:02d}-L{lesion}")
            groups.append(f"G{g:02d}")
            labels.append(label)
    labels = pd.Series(labels, index=rows, name="response")
    # The groups series may hold extra rows and come in any order: it is aligned by index.
    groups = pd.Series(groups + ["EXTRA"], index=rows + ["X-L0"]).iloc[::-1]

    folds = splits.make_folds(labels, n_splits=4, seed=0, groups=groups)
    assert len(folds) == len(rows)
    folds["group"] = groups.reindex(folds["patient_id"]).to_numpy()
    assert (folds.groupby("group")["fold"].nunique() == 1).all()
    assert folds["fold"].nunique() == 4


def test_write_read_round_trip(tmp_path):
    labels = make_labels(n=30, positives=10, missing=0)
    labels.index = [f"00{i}" for i in range(30)]  # ids that look numeric stay text
    folds = splits.make_folds(labels, n_splits=3, seed=0)
    path = tmp_path / "folds.tsv"
    splits.write(folds, path)
    back = splits.read(path)
    pd.testing.assert_frame_equal(back, folds)


def test_hold_out_is_locked_away_and_repeats_are_new_partitions():
    labels = make_labels(n=100, positives=30, missing=5)
    table = splits.make_splits(labels, n_splits=4, repeats=3, holdout=0.2, seed=7)
    assert list(table.columns) == splits.COLUMNS
    locked = splits.holdout_patients(table)
    development = splits.development_patients(table)
    assert len(locked) == 19 and len(development) == 76  # 20 % of the 95 labelled
    assert not set(locked) & set(development)
    assert set(locked) | set(development) == set(labels.dropna().index)
    # stratified: the hold-out set keeps the prevalence
    assert abs(table.loc[table["set"] == "holdout", "label"].mean() - 0.3) < 0.06
    assert splits.repeat_ids(table) == [0, 1, 2]
    partitions = []
    for repeat in range(3):
        fold = splits.outer(table, repeat)
        assert sorted(fold.index) == development and sorted(fold.unique()) == [0, 1, 2, 3]
        partitions.append(fold.loc[development].to_numpy())
    assert not np.array_equal(partitions[0], partitions[1])
    # repeat 0 is the single partition of make_folds on the development patients
    single = splits.make_folds(labels.loc[development], n_splits=4, seed=7)
    pd.testing.assert_series_equal(
        splits.outer(table, 0).sort_index(),
        single.set_index("patient_id")["fold"].sort_index(),
        check_names=False,
    )
    path_table = table.copy()
    assert (path_table.loc[path_table["set"] == "holdout", ["repeat", "fold"]] == -1).all().all()


def test_hold_out_share_must_be_a_fraction():
    with pytest.raises(InputError, match="cv.holdout is 1.5"):
        splits.make_splits(make_labels(), holdout=1.5)


def test_a_single_partition_table_reads_as_one_repeat():
    folds = splits.make_folds(make_labels(missing=0), n_splits=5, seed=0)
    assert splits.repeat_ids(folds) == [0] and splits.holdout_patients(folds) == []
    assert len(splits.outer(folds)) == len(folds)
