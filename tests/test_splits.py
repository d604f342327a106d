"""Tests for the stored outer cross-validation folds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from radiotx import demo, splits
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


# --- leave-one-site-out ----------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_clinical() -> pd.DataFrame:
    """The demo clinical table of 80 patients: sites A (29), B (29) and C (22), and the
    binary endpoint 'response' (10, 11 and 3 responders)."""
    return demo.clinical_table(demo.design(80, seed=7), seed=7).set_index("patient_id")


def test_leave_one_site_out_one_fold_per_site(demo_clinical):
    labels, sites = demo_clinical["response"], demo_clinical["site"]
    table = splits.make_splits(labels, n_splits=3, sites=sites)
    assert list(table.columns) == splits.COLUMNS
    assert (table["set"] == "development").all() and (table["repeat"] == 0).all()
    assert table["patient_id"].is_unique
    assert sorted(table["patient_id"]) == sorted(labels.index)
    fold = splits.outer(table)
    assert sorted(fold.unique()) == [0, 1, 2]
    # fold k is the k-th site in sorted order, and nothing else
    for k, site in enumerate(["A", "B", "C"]):
        assert sorted(fold.index[fold == k]) == sorted(sites.index[sites == site])
    assert table.groupby("fold").size().to_dict() == {0: 29, 1: 29, 2: 22}
    assert splits.repeat_ids(table) == [0] and splits.holdout_patients(table) == []
    assert table.set_index("patient_id")["label"].to_dict() == labels.to_dict()


def test_leave_one_site_out_folds_follow_sorted_site_names():
    labels = make_labels(n=60, positives=20, missing=6, seed=2)
    names = np.array(["UMC", "AMC", "R01"])
    sites = pd.Series(names[np.arange(len(labels)) % 3], index=labels.index)
    # extra patients and any order: the sites are aligned by patient id
    sites = pd.concat([sites, pd.Series(["XYZ"], index=["OTHER"])]).sample(frac=1, random_state=0)
    table = splits.make_splits(labels, n_splits=3, sites=sites)
    assert len(table) == 54 and "OTHER" not in set(table["patient_id"])
    site_of_fold = (
        table.assign(site=sites.reindex(table["patient_id"]).to_numpy())
        .groupby("fold")["site"]
        .unique()
    )
    assert {k: list(v) for k, v in site_of_fold.items()} == {0: ["AMC"], 1: ["R01"], 2: ["UMC"]}


def test_unlabelled_patients_need_no_site():
    labels = make_labels(n=40, positives=16, missing=4, seed=1)
    sites = pd.Series(np.where(np.arange(40) % 2, "A", "B"), index=labels.index, dtype=object)
    sites[labels.isna()] = np.nan
    table = splits.make_splits(labels, n_splits=2, sites=sites)
    assert len(table) == 36 and sorted(table["fold"].unique()) == [0, 1]


def test_leave_one_site_out_with_hold_out(demo_clinical):
    labels, sites = demo_clinical["response"], demo_clinical["site"]
    table = splits.make_splits(labels, n_splits=3, holdout=0.2, seed=42, sites=sites)
    locked = splits.holdout_patients(table)
    development = splits.development_patients(table)
    assert len(locked) == 16 and len(development) == 64
    assert not set(locked) & set(development)
    assert set(locked) | set(development) == set(labels.index)
    holdout_rows = table[table["set"] == "holdout"]
    assert (holdout_rows[["repeat", "fold"]] == -1).all().all()
    # the hold-out patients are in no fold; the others in exactly one, that of their site
    fold = splits.outer(table)
    assert sorted(fold.index) == development and not set(fold.index) & set(locked)
    assert (fold == sites.loc[fold.index].map({"A": 0, "B": 1, "C": 2})).all()
    # the hold-out set is the same as without sites
    plain = splits.make_splits(labels, n_splits=3, holdout=0.2, seed=42)
    assert splits.holdout_patients(plain) == locked


@pytest.mark.parametrize("unknown", [np.nan, "missing"])
def test_patient_without_a_site(demo_clinical, unknown):
    labels = demo_clinical["response"]
    sites = demo_clinical["site"].astype(object)
    sites["P012"] = unknown
    with pytest.raises(InputError, match=r"1 patients have no value") as info:
        splits.make_splits(labels, n_splits=3, sites=sites)
    assert "P012" in str(info.value) and "cv.leave_out" in str(info.value)


def test_patients_absent_from_the_sites_are_named(demo_clinical):
    labels, sites = demo_clinical["response"], demo_clinical["site"]
    with pytest.raises(InputError, match=r"2 patients have no value.*\(P003, P040\)"):
        splits.make_splits(labels, n_splits=3, sites=sites.drop(["P040", "P003"]))


def test_number_of_folds_must_be_the_number_of_sites(demo_clinical):
    labels, sites = demo_clinical["response"], demo_clinical["site"]
    for k in (2, 5):
        with pytest.raises(InputError, match=r"3 sites \(A, B, C\)") as info:
            splits.make_splits(labels, n_splits=k, sites=sites)
        assert f"cv.outer_folds is {k}" in str(info.value)
        assert "set cv.outer_folds to 3" in str(info.value)


def test_repeats_with_sites_is_an_error(demo_clinical):
    labels, sites = demo_clinical["response"], demo_clinical["site"]
    with pytest.raises(InputError, match="cv.repeats is 2") as info:
        splits.make_splits(labels, n_splits=3, repeats=2, sites=sites)
    assert "set cv.repeats to 1" in str(info.value)


def test_site_with_a_single_class_is_an_error(demo_clinical):
    labels = demo_clinical["response"].copy()
    sites = demo_clinical["site"]
    labels[sites == "C"] = 0
    with pytest.raises(InputError, match="site C has only patients of class 0") as info:
        splits.make_splits(labels, n_splits=3, sites=sites)
    assert "'response'" in str(info.value)
