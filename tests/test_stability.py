"""Tests for segmentation-robustness features: mask perturbation, ICC(3,1), stability filter."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import estimator_checks

from radiotx import demo, stability
from radiotx.stability import PERTURBATIONS, StabilityFilter, icc31, perturb, stability_table

# ------------------------------------------------------------------------------------- ICC

# Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges.
SHROUT_FLEISS = np.array(
    [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]],
    dtype=float,
)


def long_table(values: np.ndarray, features=None) -> pd.DataFrame:
    """(patients, perturbations, features) array -> long (patient_id, perturbation) table."""
    if values.ndim == 2:
        values = values[:, :, None]
    n, k, f = values.shape
    index = pd.MultiIndex.from_product(
        [[f"P{i:03d}" for i in range(n)], [f"r{j}" for j in range(k)]],
        names=["patient_id", "perturbation"],
    )
    columns = features if features is not None else [f"f{i}" for i in range(f)]
    return pd.DataFrame(values.reshape(n * k, f), index=index, columns=columns)


def reference_icc(ratings: np.ndarray) -> dict[str, float]:
    """ICC(1,1), ICC(2,1), ICC(3,1) of one targets x judges matrix, textbook two-way ANOVA."""
    n, k = ratings.shape
    grand = ratings.mean()
    ss_total = ((ratings - grand) ** 2).sum()
    ss_rows = k * ((ratings.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((ratings.mean(axis=0) - grand) ** 2).sum()
    bms = ss_rows / (n - 1)
    wms = (ss_total - ss_rows) / (n * (k - 1))
    jms = ss_cols / (k - 1)
    ems = (ss_total - ss_rows - ss_cols) / ((n - 1) * (k - 1))
    return {
        "1,1": (bms - wms) / (bms + (k - 1) * wms),
        "2,1": (bms - ems) / (bms + (k - 1) * ems + k * (jms - ems) / n),
        "3,1": (bms - ems) / (bms + (k - 1) * ems),
    }


def test_icc_shrout_fleiss_example():
    ref = reference_icc(SHROUT_FLEISS)
    assert ref["1,1"] == pytest.approx(0.17, abs=0.005)
    assert ref["2,1"] == pytest.approx(0.29, abs=0.005)
    assert ref["3,1"] == pytest.approx(0.715, abs=0.0005)
    result = icc31(long_table(SHROUT_FLEISS))
    assert result.name == "icc"
    assert result["f0"] == pytest.approx(ref["3,1"], rel=1e-12)


def test_icc_vectorised_equals_per_feature_anova():
    rng = np.random.default_rng(0)
    n, k, f = 15, 5, 12
    between = rng.normal(0, rng.uniform(0.1, 5.0, f), (n, 1, f))
    bias = rng.normal(0, 1.0, (1, k, f))
    values = 1e3 * rng.uniform(-1, 1, f) + between + bias + rng.normal(0, 1.0, (n, k, f))
    result = icc31(long_table(values))
    expected = [reference_icc(values[:, :, j])["3,1"] for j in range(f)]
    np.testing.assert_allclose(result.to_numpy(), expected, rtol=1e-10)
    assert result.between(-1 / (k - 1), 1).all()


def test_icc_drops_incomplete_patients_per_feature():
    rng = np.random.default_rng(1)
    values = rng.normal(0, 1, (10, 4, 3)) + rng.normal(0, 2, (10, 1, 3))
    table = long_table(values)
    table.iloc[5, 0] = np.nan  # patient 1, feature f0
    table = table.drop(index=("P007", "r2"))  # patient 7 lacks one perturbation entirely
    result = icc31(table)
    keep_f0 = [i for i in range(10) if i not in (1, 7)]
    keep_other = [i for i in range(10) if i != 7]
    assert result["f0"] == pytest.approx(reference_icc(values[keep_f0, :, 0])["3,1"])
    assert result["f1"] == pytest.approx(reference_icc(values[keep_other, :, 1])["3,1"])
    counts = stability_table(table, 0.5)["n_patients"]
    assert counts.to_dict() == {"f0": 8, "f1": 9, "f2": 9}


def test_icc_extremes():
    rng = np.random.default_rng(2)
    patients = rng.normal(0, 1, (30, 1, 1))
    repeated = np.repeat(patients, 7, axis=1)
    noise = rng.normal(0, 1, (300, 7, 1))
    assert icc31(long_table(repeated))["f0"] == pytest.approx(1.0)
    assert abs(icc31(long_table(noise))["f0"]) < 0.05
    # A shift shared by all patients is not a disagreement under consistency.
    shifted = repeated + np.arange(7)[None, :, None]
    assert icc31(long_table(shifted))["f0"] == pytest.approx(1.0)


def test_icc_undefined_cases_are_nan():
    values = np.stack([np.full((5, 3), 4.2), np.random.default_rng(3).normal(size=(5, 3))], axis=-1)
    table = long_table(values)
    table.loc[table.index.get_level_values(0) != "P000", "f1"] = np.nan
    result = icc31(table)
    assert np.isnan(result["f0"])  # constant
    assert np.isnan(result["f1"])  # one complete patient


def test_icc_rejects_malformed_tables():
    table = long_table(SHROUT_FLEISS)
    with pytest.raises(ValueError, match="two-level"):
        icc31(table.reset_index(drop=True))
    with pytest.raises(ValueError, match="repeat"):
        icc31(pd.concat([table, table.iloc[:1]]))


def test_stability_table_sorted_and_thresholded():
    rng = np.random.default_rng(4)
    signal = rng.normal(0, 1, (20, 1, 1))
    values = np.concatenate(
        [signal + rng.normal(0, s, (20, 5, 1)) for s in (0.01, 3.0, 0.5)], axis=2
    )
    table = stability_table(long_table(values, ["tight", "loose", "middle"]), threshold=0.75)
    assert list(table.index) == ["tight", "middle", "loose"]
    assert list(table.columns) == ["icc", "n_patients", "stable"]
    assert table["stable"].tolist() == [True, True, False]
    assert (table["n_patients"] == 20).all()


# ------------------------------------------------------------------------------ perturbation


def blob_mask() -> sitk.Image:
    """Ellipsoid with label 2 (and a label-1 distractor) on an anisotropic, offset grid."""
    z, y, x = np.mgrid[:16, :32, :32]
    voxels = np.zeros((16, 32, 32), dtype=np.uint8)
    voxels[((x - 15) / 7) ** 2 + ((y - 16) / 6) ** 2 + ((z - 8) / 3.5) ** 2 <= 1] = 2
    voxels[0, 0, :4] = 1
    mask = sitk.GetImageFromArray(voxels)
    mask.SetSpacing((0.7, 0.9, 2.5))
    mask.SetOrigin((-10.0, 5.0, 40.0))
    return mask


def centroid(mask: sitk.Image) -> np.ndarray:
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(mask)
    return np.array(stats.GetCentroid(1))


def count(mask: sitk.Image) -> int:
    return int(sitk.GetArrayFromImage(mask).sum())


def test_perturb_changes_the_roi_as_named():
    mask = blob_mask()
    original = perturb(mask, "original", label=2)
    n = count(original)
    assert n == int((sitk.GetArrayFromImage(mask) == 2).sum())
    results = {kind: perturb(mask, kind, label=2) for kind in PERTURBATIONS}
    for kind, result in results.items():
        voxels = sitk.GetArrayFromImage(result)
        assert set(np.unique(voxels)) == {0, 1}, kind
        assert result.GetSize() == mask.GetSize()
        assert result.GetSpacing() == mask.GetSpacing()
        assert result.GetOrigin() == mask.GetOrigin()
        assert result.GetDirection() == mask.GetDirection()
    assert count(results["erode1"]) < n < count(results["dilate1"])
    eroded, dilated = (sitk.GetArrayFromImage(results[k]) for k in ("erode1", "dilate1"))
    eroded, dilated = eroded.astype(bool), dilated.astype(bool)
    inside = sitk.GetArrayFromImage(original).astype(bool)
    assert not (eroded & ~inside).any() and not (inside & ~dilated).any()
    # In-plane only: the end slices of the ROI survive the erosion.
    slices = np.flatnonzero(inside.any(axis=(1, 2)))
    in_plane = sitk.GetArrayFromImage(perturb(mask, "erode1xy", label=2))
    assert np.array_equal(np.flatnonzero(in_plane.any(axis=(1, 2))), slices)
    assert len(np.flatnonzero(eroded.any(axis=(1, 2)))) < len(slices)

    spacing = np.array(mask.GetSpacing())
    for kind, axis, sign in [
        ("shift+x", 0, 1),
        ("shift-x", 0, -1),
        ("shift+y", 1, 1),
        ("shift-y", 1, -1),
        ("shift+z", 2, 1),
    ]:
        shifted = perturb(mask, kind, label=2)
        assert count(shifted) == n, kind
        expected = np.zeros(3)
        expected[axis] = sign * spacing[axis]
        np.testing.assert_allclose(centroid(shifted) - centroid(original), expected, atol=1e-9)


def test_perturb_rejects_unknown_kinds():
    mask = blob_mask()
    for kind in ("erode", "erode0", "blur1", "shift+w", "shift x", ""):
        with pytest.raises(ValueError, match="unknown perturbation"):
            perturb(mask, kind)
    flat = sitk.Image(8, 8, sitk.sitkUInt8)
    with pytest.raises(ValueError, match="cannot shift along z"):
        perturb(flat, "shift+z")


# -------------------------------------------------------------------------- demo features

SMALL_PARAMS = {
    "setting": {"binWidth": 25, "geometryTolerance": 0.001},
    "imageType": {"Original": {}},
    "featureClass": {"firstorder": None, "shape": None, "glcm": None},
}


def demo_images(pid: str, label: int) -> tuple[sitk.Image, sitk.Image]:
    pair = []
    for voxels in demo.tumour_case(pid, label, seed=7):
        image = sitk.GetImageFromArray(voxels)
        image.SetSpacing(demo.SPACING)
        image.SetOrigin(demo.ORIGIN)
        pair.append(image)
    return pair[0], pair[1]


@pytest.fixture(scope="module")
def demo_perturbed() -> pd.DataFrame:
    tables = {
        pid: stability.perturbed_features(*demo_images(pid, label), SMALL_PARAMS)
        for pid, label in [("P001", 0), ("P002", 1), ("P003", 1)]
    }
    return pd.concat(tables, names=["patient_id", "perturbation"])


def test_perturbed_features_on_demo_patients(demo_perturbed):
    one = demo_perturbed.loc["P001"]
    assert list(one.index) == list(PERTURBATIONS)
    assert one.notna().all().all()
    assert any(c.startswith("original_glcm_") for c in one.columns)
    volume = one["original_shape_VoxelVolume"]
    assert volume["erode1"] < volume["original"] < volume["dilate1"]
    for kind in ("shift+x", "shift-x", "shift+y", "shift-y"):
        assert volume[kind] == volume["original"]
    icc = icc31(demo_perturbed)
    assert list(icc.index) == list(demo_perturbed.columns)
    assert icc.notna().sum() > 0.8 * len(icc)


def test_perturbed_features_failed_perturbation_is_nan():
    image, _ = demo_images("P001", 0)
    voxels = np.zeros(image.GetSize()[::-1], dtype=np.uint8)
    voxels[20:22, 40:44, 40:44] = 1  # two slices: one-voxel erosion through-plane empties it
    mask = sitk.GetImageFromArray(voxels)
    mask.CopyInformation(image)
    with pytest.warns(UserWarning, match="erode1"):
        table = stability.perturbed_features(
            image, mask, SMALL_PARAMS, kinds=["original", "erode1"]
        )
    assert table.loc["original"].notna().all()
    assert table.loc["erode1"].isna().all()
    with pytest.raises(ValueError, match="unknown perturbation"):
        stability.perturbed_features(image, mask, SMALL_PARAMS, kinds=["original", "smooth"])


# ---------------------------------------------------------------------------- the filter


def two_cohorts(seed: int = 5) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Perturbed table where 'mixed' is stable on patients A* and unstable on B*, and the
    patient-level feature table X with a clinical column absent from the perturbed data."""
    rng = np.random.default_rng(seed)
    n, k = 12, len(PERTURBATIONS)
    a = {
        "steady": rng.normal(0, 10, (n, 1)) + rng.normal(0, 0.1, (n, k)),
        "mixed": rng.normal(0, 10, (n, 1)) + rng.normal(0, 0.1, (n, k)),
        "noise": rng.normal(0, 1, (n, k)),
    }
    b = {
        "steady": rng.normal(0, 10, (n, 1)) + rng.normal(0, 0.1, (n, k)),
        "mixed": rng.normal(0, 0.1, (n, 1)) + rng.normal(0, 10, (n, k)),
        "noise": rng.normal(0, 1, (n, k)),
    }
    frames = {}
    for prefix, values in (("A", a), ("B", b)):
        for i in range(n):
            frames[f"{prefix}{i:02d}"] = pd.DataFrame(
                {name: v[i] for name, v in values.items()}, index=list(PERTURBATIONS)
            )
    perturbed = pd.concat(frames, names=["patient_id", "perturbation"])
    original = perturbed.xs("original", level="perturbation")
    X = original.add_prefix("ct:")
    X["clinical:age"] = rng.normal(60, 10, len(X))
    return perturbed, X


def test_filter_uses_only_the_training_patients():
    perturbed, X = two_cohorts()
    on_a = StabilityFilter(perturbed).fit(X.loc[X.index.str.startswith("A")])
    on_b = StabilityFilter(perturbed).fit(X.loc[X.index.str.startswith("B")])
    # Untested (clinical) columns are kept; undefined or low ICC is dropped.
    assert on_a.get_feature_names_out().tolist() == ["ct:steady", "ct:mixed", "clinical:age"]
    assert on_b.get_feature_names_out().tolist() == ["ct:steady", "clinical:age"]
    assert on_a.tested_.tolist() == [True, True, True, False]
    assert np.isnan(on_a.icc_["clinical:age"])
    a_rows = perturbed.index.get_level_values(0).str.startswith("A")
    assert on_a.icc_["ct:mixed"] == pytest.approx(icc31(perturbed.loc[a_rows])["mixed"])
    assert set(on_a.patients_) == set(X.index[X.index.str.startswith("A")])
    # Training rows without perturbation data are ignored rather than fatal.
    extra = pd.concat([X.loc[X.index.str.startswith("A")], X.iloc[:1].rename(index=lambda _: "Z")])
    assert StabilityFilter(perturbed).fit(extra).support_.tolist() == on_a.support_.tolist()


def test_filter_transform_and_pandas_output():
    perturbed, X = two_cohorts()
    selector = StabilityFilter(perturbed, threshold=0.9).set_output(transform="pandas")
    out = selector.fit_transform(X)
    assert isinstance(out, pd.DataFrame)
    assert out.index.equals(X.index)
    assert list(out.columns) == list(selector.get_feature_names_out())
    assert "ct:noise" not in out.columns
    default = StabilityFilter(perturbed).fit(X).transform(X)
    assert isinstance(default, np.ndarray) and default.shape[1] == out.shape[1]
    with pytest.raises(ValueError, match="feature names"):
        selector.transform(X[X.columns[::-1]])


def test_filter_without_perturbation_data_keeps_everything():
    _, X = two_cohorts()
    selector = StabilityFilter().fit(X)
    assert selector.support_.all()
    assert selector.get_feature_names_out().tolist() == X.columns.tolist()
    assert StabilityFilter().fit_transform(X.to_numpy()).shape == X.shape


def test_filter_errors_are_clear():
    perturbed, X = two_cohorts()
    with pytest.raises(ValueError, match="DataFrame indexed by patient id"):
        StabilityFilter(perturbed).fit(X.to_numpy())
    with pytest.raises(ValueError, match="none of the patients"):
        StabilityFilter(perturbed).fit(X.rename(index=lambda p: "x" + p))
    with pytest.raises(ValueError, match="no column of X matches"):
        StabilityFilter(perturbed).fit(X.rename(columns=lambda c: c + "_v2"))
    with pytest.raises(ValueError, match="no column of X matches"):
        StabilityFilter(perturbed, separator="|").fit(X)
    with pytest.raises(ValueError, match="threshold"):
        StabilityFilter(perturbed, threshold="high").fit(X)


def pipeline(perturbed, pandas: bool = True) -> Pipeline:
    ct = [c for c in two_cohorts()[1].columns if c.startswith("ct:")]
    prep = ColumnTransformer(
        [
            (
                "ct",
                Pipeline([("stable", StabilityFilter(perturbed)), ("scale", StandardScaler())]),
                ct,
            ),
            ("clinical", StandardScaler(), ["clinical:age"]),
        ],
        verbose_feature_names_out=False,
    )
    model = Pipeline([("prep", prep), ("clf", LogisticRegression())])
    return model.set_output(transform="pandas") if pandas else model


def test_filter_inside_column_transformer_and_cross_validation():
    perturbed, X = two_cohorts()
    y = pd.Series(np.tile([0, 1], len(X) // 2), index=X.index)
    model = pipeline(perturbed).fit(X, y)
    prep = model.named_steps["prep"]
    assert prep.get_feature_names_out().tolist() == ["ct:steady", "clinical:age"]
    assert list(prep.transform(X).columns) == ["ct:steady", "clinical:age"]
    # First in its block, the filter gets a DataFrame even without pandas output.
    plain = pipeline(perturbed, pandas=False).fit(X, y)
    assert plain.named_steps["prep"].get_feature_names_out().tolist() == [
        "ct:steady",
        "clinical:age",
    ]

    folds = KFold(n_splits=3, shuffle=True, random_state=0)
    cv = cross_validate(
        pipeline(perturbed), X, y, cv=folds, return_estimator=True, return_indices=True
    )
    for fitted, train in zip(cv["estimator"], cv["indices"]["train"], strict=True):
        selector = fitted.named_steps["prep"].named_transformers_["ct"].named_steps["stable"]
        assert set(selector.patients_) == set(X.index[train])

    search = GridSearchCV(
        pipeline(perturbed), {"prep__ct__stable__threshold": [0.5, 0.9]}, cv=folds
    ).fit(X, y)
    assert search.best_params_["prep__ct__stable__threshold"] in (0.5, 0.9)


def test_filter_clone_and_params_round_trip():
    perturbed, _ = two_cohorts()
    selector = StabilityFilter(perturbed, threshold=0.8, separator="|")
    params = selector.get_params()
    assert set(params) == {"perturbed", "threshold", "separator"}
    copy = clone(selector)
    assert copy.get_params()["threshold"] == 0.8 and copy.get_params()["separator"] == "|"
    pd.testing.assert_frame_equal(copy.get_params()["perturbed"], perturbed)
    assert StabilityFilter().set_params(**params).get_params()["perturbed"] is perturbed


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.SkipTestWarning")
def test_filter_passes_sklearn_estimator_checks():
    estimator_checks.check_estimator(StabilityFilter())


@pytest.mark.parametrize(
    "check",
    [
        estimator_checks.check_no_attributes_set_in_init,
        estimator_checks.check_get_params_invariance,
        estimator_checks.check_set_params,
        estimator_checks.check_estimator_cloneable,
        estimator_checks.check_estimator_repr,
        estimator_checks.check_parameters_default_constructible,
        estimator_checks.check_mixin_order,
    ],
    ids=lambda check: check.__name__,
)
def test_filter_with_perturbation_data_passes_parameter_checks(check):
    check("StabilityFilter", StabilityFilter(two_cohorts()[0], threshold=0.6))
