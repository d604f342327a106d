"""Covariate-shift tests: planted shifts are found, random splits are not, odd input holds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from radiotx.fairness import shift

N_PATIENTS = 120
N_NUMERIC = 30
PLANTED = ["f00", "f01", "f02"]
N_PERMUTATIONS = 39  # smallest attainable p value 1/40, enough to call p <= 0.05; and fast


def _cohort(seed: int = 0) -> pd.DataFrame:
    """120 patients, 30 standard-normal radiomic-like features and a balanced scanner
    column, no shift anywhere."""
    rng = np.random.default_rng(seed)
    ids = [f"P{i:03d}" for i in range(N_PATIENTS)]
    X = pd.DataFrame(
        rng.normal(size=(N_PATIENTS, N_NUMERIC)),
        index=ids,
        columns=[f"f{j:02d}" for j in range(N_NUMERIC)],
    )
    X["scanner"] = rng.choice(["siemens", "ge", "philips"], size=N_PATIENTS)
    return X


def _halves(X: pd.DataFrame) -> pd.Series:
    return pd.Series(np.arange(len(X)) < len(X) // 2, index=X.index)


@pytest.fixture(scope="module")
def shifted():
    X = _cohort()
    group = _halves(X)
    X.loc[group, PLANTED] += 1.0  # set A sits 1 SD higher in three features
    return X, group


def test_planted_shift_is_flagged(shifted):
    X, group = shifted
    table = shift.feature_tests(X, group)
    assert list(table.columns) == shift.COLUMNS
    by_feature = table.set_index("feature")
    assert by_feature.loc[PLANTED, "shifted"].all()
    assert (by_feature.loc[PLANTED, "q_value"] < 0.05).all()
    assert (by_feature.loc[PLANTED, "effect"] > 0.5).all()  # A minus B, in pooled SDs
    assert set(table["feature"].head(3)) == set(PLANTED)
    false_flags = by_feature.drop(index=PLANTED)["shifted"].sum()
    assert false_flags <= 2
    assert by_feature.loc["scanner", "test"] == "chi2"
    assert (by_feature.loc[PLANTED, "test"] == "ks").all()
    assert (table[["n_a", "n_b"]] == 60).all().all()

    result = shift.classifier_test(X, group, n_permutations=N_PERMUTATIONS)
    assert result["auc"] > 0.7
    assert result["p_value"] <= 0.05
    assert result["n_permutations"] == N_PERMUTATIONS
    assert (result["n_a"], result["n_b"], result["n_features"]) == (60, 60, N_NUMERIC + 1)


def test_random_split_shows_no_shift():
    X = _cohort(seed=1)
    group = pd.Series(np.random.default_rng(2).permutation(_halves(X).to_numpy()), index=X.index)
    table = shift.feature_tests(X, group)
    assert table["shifted"].sum() <= 1
    assert table["p_value"].notna().all()

    result = shift.classifier_test(X, group, n_permutations=N_PERMUTATIONS, seed=3)
    assert result["auc"] < 0.65
    assert result["p_value"] > 0.05


def test_categorical_imbalance_is_flagged_by_chi2():
    X = _cohort(seed=4)
    group = _halves(X)
    rng = np.random.default_rng(5)
    X["site_protocol"] = np.where(
        group,
        rng.choice(["thin", "thick"], size=N_PATIENTS, p=[0.85, 0.15]),
        rng.choice(["thin", "thick"], size=N_PATIENTS, p=[0.2, 0.8]),
    )
    row = shift.feature_tests(X, group).set_index("feature").loc["site_protocol"]
    assert row["test"] == "chi2"
    assert row["shifted"]
    assert row["effect"] > 0.4  # Cramér's V


def test_missing_values_and_untestable_features():
    X = _cohort(seed=6)
    group = _halves(X)
    X.loc[~group, "f05"] = np.nan  # never measured at site B
    X.loc[X.index[::7], "f06"] = np.nan  # scattered missing values are simply dropped
    X["constant"] = 2.0
    X.loc[X.index[::5], "scanner"] = np.nan
    # Patients without a set and patients missing from X are ignored.
    group = group.astype(object)
    group.iloc[:4] = np.nan
    group["not-in-X"] = True

    table = shift.feature_tests(X, group).set_index("feature")
    for untested in ("f05", "constant"):
        assert np.isnan(table.loc[untested, "p_value"])
        assert np.isnan(table.loc[untested, "q_value"])
        assert not table.loc[untested, "shifted"]
    assert table.loc["f05", "n_b"] == 0
    assert not np.isnan(table.loc["f06", "p_value"])
    assert table.loc["f06", "n_a"] + table.loc["f06", "n_b"] < N_PATIENTS - 4
    assert table.loc["scanner", "n_a"] == 56  # missing is a level: every patient counts
    assert list(table.index[-2:]) in (["f05", "constant"], ["constant", "f05"])  # NaN last

    result = shift.classifier_test(X, group, n_permutations=9)
    assert (result["n_a"], result["n_b"]) == (56, 60)
    assert 0.0 <= result["auc"] <= 1.0


def test_classifier_test_needs_two_patients_per_set():
    X = _cohort(seed=7)
    group = pd.Series(False, index=X.index)
    group.iloc[0] = True
    with pytest.raises(ValueError, match=r"set A has 1 and set B has 119"):
        shift.classifier_test(X, group)


def test_compare_labels_both_results(shifted):
    X, group = shifted
    table, summary = shift.compare(X, group, name="site A vs site B", n_permutations=19)
    assert table.columns[0] == "comparison"
    assert (table["comparison"] == "site A vs site B").all()
    assert summary["comparison"] == "site A vs site B"
    assert summary["n_tested"] == N_NUMERIC + 1
    assert summary["n_shifted"] == int(table["shifted"].sum()) >= 3
    assert summary["n_permutations"] == 19
    assert summary["p_value"] == pytest.approx(1 / 20)


def test_wide_features_fit_the_same_classifier_in_the_span_of_the_training_rows():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3000))
    y = (X[:, :20].sum(axis=1) + rng.normal(size=60) > 0).astype(int)
    train, test = slice(0, 45), slice(45, None)
    span = shift.RowSpan().fit(X[train])
    assert span.transform(X[test]).shape == (15, 45)
    # an orthonormal basis: the L2 penalty is the same in either coordinates
    np.testing.assert_allclose(span.basis_.T @ span.basis_, np.eye(45), atol=1e-8)
    wide = LogisticRegression(C=0.1, tol=1e-10, max_iter=10_000).fit(X[train], y[train])
    narrow = make_pipeline(shift.RowSpan(), LogisticRegression(C=0.1, tol=1e-10, max_iter=10_000))
    narrow.fit(X[train], y[train])
    np.testing.assert_allclose(
        narrow.predict_proba(X[test]), wide.predict_proba(X[test]), rtol=1e-6, atol=1e-8
    )
    # narrow data pass through unchanged
    np.testing.assert_array_equal(shift.RowSpan().fit(X[:, :10]).transform(X[:5, :10]), X[:5, :10])


@pytest.mark.parametrize(
    "n_features, missing", [(30, 0.0), (30, 0.1), (400, 0.0)], ids=["narrow", "missing", "wide"]
)
def test_numeric_classifier_test_equals_scikit_learns_permutation_test(n_features, missing):
    """The all-numeric path runs its own loop for speed: it must give scikit-learn's
    permutation_test_score of the same pipeline, number for number."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, permutation_test_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(7)
    X = pd.DataFrame(rng.normal(size=(60, n_features)), index=[f"P{i:02d}" for i in range(60)])
    group = pd.Series(rng.random(60) < 0.4, index=X.index)
    X.iloc[:, 0] += 0.8 * group  # some shift, so that the AUC is not just noise
    X = X.mask(rng.random(X.shape) < missing)
    result = shift.classifier_test(X, group, n_permutations=19, seed=5)
    pipeline = make_pipeline(
        SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler(),
        shift.RowSpan(), LogisticRegression(C=0.1, max_iter=1000),
    )  # fmt: skip
    auc, _, p_value = permutation_test_score(
        pipeline, X.to_numpy(), group.astype(int), scoring="roc_auc", n_permutations=19,
        cv=StratifiedKFold(5, shuffle=True, random_state=5), random_state=5,
    )  # fmt: skip
    assert (result["auc"], result["p_value"]) == (auc, p_value)
