"""Tests for per-patient feature extraction: RNA-seq normalisation and pyradiomics."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from radiotx.errors import InputError
from radiotx.features import radiomics, read_rows, rnaseq, write_row

# ------------------------------------------------------------------------------------ RNA-seq


def test_normalise_is_log1p_cpm():
    counts = pd.Series([0.0, 5.0, 120.0, 3875.0, 1.0], index=["A", "B", "C", "D", "E"])
    expected = np.log1p(counts.to_numpy() / counts.sum() * 1e6)
    result = rnaseq.normalise(counts)
    assert list(result.index) == list(counts.index)
    assert result.dtype == np.float64
    np.testing.assert_allclose(result.to_numpy(), expected, rtol=1e-12)
    assert result["A"] == 0.0


def test_normalise_target_sum():
    counts = pd.Series([10.0, 30.0, 60.0], index=["A", "B", "C"])
    result = rnaseq.normalise(counts, target_sum=100.0)
    np.testing.assert_allclose(result.to_numpy(), np.log1p([10.0, 30.0, 60.0]), rtol=1e-12)


def test_normalise_equals_scanpy_to_the_bit(demo_sheet):
    """The same values as scanpy's normalize_total and log1p, for real-sized samples and
    for an empty library."""
    import anndata as ad
    import scanpy as sc

    paths = demo_sheet.loc[demo_sheet["rnaseq"] != "", "rnaseq"].iloc[:5]
    samples = [rnaseq.read_counts(path, "P") for path in paths]
    samples.append(pd.Series(0.0, index=samples[0].index))
    for counts in samples:
        for target_sum in (1e6, 1e4):
            adata = ad.AnnData(X=counts.to_numpy(dtype="float64", copy=True)[np.newaxis, :])
            sc.pp.normalize_total(adata, target_sum=target_sum)
            sc.pp.log1p(adata)
            ours = rnaseq.normalise(counts, target_sum=target_sum).to_numpy()
            assert np.array_equal(ours, np.asarray(adata.X).ravel())


def test_normalise_does_not_modify_input():
    counts = pd.Series([1.0, 2.0, 3.0], index=["A", "B", "C"])
    rnaseq.normalise(counts)
    assert counts.tolist() == [1.0, 2.0, 3.0]


def test_normalise_uses_only_the_sample_itself(demo_sheet):
    """A sample's features are identical whatever other samples exist in the cohort."""
    paths = demo_sheet.loc[demo_sheet["rnaseq"] != ""].set_index("patient_id")["rnaseq"]
    pid, path = paths.index[0], paths.iloc[0]
    alone = rnaseq.extract(path, pid)

    cohort = pd.DataFrame({p: rnaseq.read_counts(f, p) for p, f in paths.items()}).T
    # Scaling the other samples or dropping them must not change this sample's result.
    cohort.iloc[1:] *= 50
    jointly = pd.DataFrame({p: rnaseq.normalise(cohort.loc[p]) for p in cohort.index}).T
    pd.testing.assert_series_equal(jointly.loc[pid], alone, check_names=False)

    counts = rnaseq.read_counts(path, pid)
    expected = np.log1p(counts / counts.sum() * 1e6)
    np.testing.assert_allclose(alone.to_numpy(), expected.to_numpy(), rtol=1e-12)


def test_read_counts_demo_file(demo_sheet):
    row = demo_sheet.loc[demo_sheet["rnaseq"] != ""].iloc[0]
    counts = rnaseq.read_counts(row["rnaseq"], row["patient_id"])
    raw = pd.read_csv(row["rnaseq"], sep="\t")
    assert counts.dtype == np.float64
    assert list(counts.index) == raw["gene"].tolist()
    np.testing.assert_array_equal(counts.to_numpy(), raw["count"].to_numpy())


def test_read_counts_csv_and_gzip(tmp_path):
    csv = tmp_path / "s1.csv"
    csv.write_text("gene,count\nA,1\nB,3\n", encoding="utf-8")
    assert rnaseq.read_counts(csv, "S1").to_dict() == {"A": 1.0, "B": 3.0}
    gz = tmp_path / "s1.tsv.gz"
    with gzip.open(gz, "wt") as handle:
        handle.write("gene\tcount\textra\nA\t2\tx\nB\t0\ty\n")
    assert rnaseq.read_counts(gz, "S1").to_dict() == {"A": 2.0, "B": 0.0}


@pytest.mark.parametrize(
    "name, text, problem",
    [
        ("cols.tsv", "symbol\treads\nA\t1\n", "lack 'gene' and 'count'"),
        ("neg.tsv", "gene\tcount\nA\t1\nB\t-2\n", "first: B"),
        ("nan.tsv", "gene\tcount\nA\t1\nB\tmany\n", "first: B"),
        ("zero.tsv", "gene\tcount\nA\t0\nB\t0\n", "library is empty"),
    ],
)
def test_read_counts_errors_name_patient_file_and_fix(tmp_path, name, text, problem):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as info:
        rnaseq.read_counts(path, "P042")
    message = str(info.value)
    assert problem in message
    assert "patient P042" in message
    assert str(path) in message
    assert "Fix:" in message


def test_duplicated_genes_are_summed_for_counts_and_averaged_for_expression(tmp_path):
    counts = tmp_path / "dup.tsv"
    counts.write_text("gene\tcount\nA\t1\nB\t2\nA\t3\n", encoding="utf-8")
    assert rnaseq.read(counts, "P1").to_dict() == {"A": 4.0, "B": 2.0}
    expression = tmp_path / "dup_expr.tsv"
    expression.write_text("gene\texpression\nA\t1.5\nB\t-2\nA\t0.5\n", encoding="utf-8")
    assert rnaseq.read(expression, "P1", values="normalised").to_dict() == {"A": 1.0, "B": -2.0}


def test_read_counts_missing_file(tmp_path):
    path = tmp_path / "absent.tsv"
    with pytest.raises(InputError, match="does not exist") as info:
        rnaseq.extract(path, "P042")
    message = str(info.value)
    assert "patient P042" in message and str(path) in message and "Fix:" in message


# ----------------------------------------------------------------------------------- radiomics


@pytest.fixture(scope="session")
def demo_features(demo_sheet, radiomics_params) -> pd.Series:
    row = demo_sheet.iloc[0]
    return radiomics.extract(row["image"], row["mask"], radiomics_params, row["patient_id"])


def test_extract_demo_patient(demo_features):
    assert len(demo_features) > 500
    assert demo_features.dtype == np.float64
    assert np.isfinite(demo_features.to_numpy()).all()
    assert not demo_features.index.str.startswith("diagnostics_").any()
    assert demo_features.index.is_unique
    for name in ["original_shape_MeshVolume", "original_glcm_Contrast", "original_firstorder_Mean"]:
        assert name in demo_features.index
    for prefix in ("wavelet-LLH_", "wavelet-HHH_", "log-sigma-1-0-mm-3D_", "log-sigma-3-0-mm-3D_"):
        assert demo_features.index.str.startswith(prefix).sum() > 50, prefix


def test_extract_shape_volume_matches_mask(demo_sheet, demo_features):
    mask = sitk.ReadImage(demo_sheet.iloc[0]["mask"])
    voxels = int(sitk.GetArrayViewFromImage(mask).sum())
    volume = voxels * float(np.prod(mask.GetSpacing()))
    assert volume > 100
    assert demo_features["original_shape_MeshVolume"] == pytest.approx(volume, rel=0.1)
    assert demo_features["original_shape_VoxelVolume"] == pytest.approx(volume, rel=0.1)


def test_extract_is_deterministic(demo_sheet, demo_features, radiomics_params):
    row = demo_sheet.iloc[0]
    again = radiomics.extract(row["image"], row["mask"], radiomics_params, row["patient_id"])
    pd.testing.assert_series_equal(again, demo_features)


SIZE = (24, 24, 12)
SPACING = (1.0, 1.0, 2.0)


def write_volume(path, array: np.ndarray, spacing=SPACING) -> str:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    sitk.WriteImage(image, str(path))
    return str(path)


@pytest.fixture
def small_case(tmp_path):
    """A small image and a cubic label-1 mask on the same grid."""
    rng = np.random.default_rng(0)
    shape = SIZE[::-1]
    image = rng.normal(40.0, 20.0, shape).astype(np.float32)
    mask = np.zeros(shape, dtype=np.uint8)
    mask[3:9, 6:18, 6:18] = 1
    return (
        write_volume(tmp_path / "ct.nii.gz", image),
        write_volume(tmp_path / "mask.nii.gz", mask),
        image,
        mask,
    )


def assert_input_error(info, path, problem: str):
    message = str(info.value)
    assert problem in message
    assert "patient P9" in message
    assert f"file {path}" in message
    assert "Fix:" in message


def test_extract_small_case_runs(small_case, radiomics_params):
    image, mask, _, _ = small_case
    features = radiomics.extract(image, mask, radiomics_params, "P9")
    assert features["original_shape_VoxelVolume"] == pytest.approx(6 * 12 * 12 * 2.0, rel=0.1)


def test_extract_empty_mask(small_case, radiomics_params, tmp_path):
    image, _, _, mask = small_case
    empty = write_volume(tmp_path / "empty.nii.gz", np.zeros_like(mask))
    with pytest.raises(InputError) as info:
        radiomics.extract(image, empty, radiomics_params, "P9")
    assert_input_error(info, empty, "mask is empty")


def test_extract_absent_label(small_case, radiomics_params, tmp_path):
    image, _, _, mask = small_case
    other = write_volume(tmp_path / "label2.nii.gz", mask * 2)
    with pytest.raises(InputError) as info:
        radiomics.extract(image, other, radiomics_params, "P9")
    assert_input_error(info, other, "label 1 is absent from the mask (labels present: [2])")
    # The same mask works when the label is configured.
    features = radiomics.extract(image, other, radiomics_params, "P9", label=2)
    assert np.isfinite(features["original_shape_MeshVolume"])


@pytest.mark.parametrize("what", ["spacing", "size"])
def test_extract_geometry_mismatch(small_case, radiomics_params, tmp_path, what):
    image, _, _, mask = small_case
    if what == "spacing":
        bad = write_volume(tmp_path / "bad.nii.gz", mask, spacing=(1.0, 1.0, 2.5))
    else:
        bad = write_volume(tmp_path / "bad.nii.gz", mask[:, :, :-2])
    with pytest.raises(InputError) as info:
        radiomics.extract(image, bad, radiomics_params, "P9")
    assert_input_error(info, bad, f"mask {what}")


def test_extract_missing_image(small_case, radiomics_params, tmp_path):
    _, mask, _, _ = small_case
    absent = tmp_path / "nope.nii.gz"
    with pytest.raises(InputError) as info:
        radiomics.extract(absent, mask, radiomics_params, "P9")
    assert_input_error(info, absent, "image file does not exist")


def test_extract_unreadable_mask(small_case, radiomics_params, tmp_path):
    image, _, _, _ = small_case
    junk = tmp_path / "mask.nii.gz"
    junk.write_bytes(b"not an image")
    with pytest.raises(InputError) as info:
        radiomics.extract(image, junk, radiomics_params, "P9")
    assert_input_error(info, junk, "mask could not be read")


def test_extract_nan_intensities(small_case, radiomics_params, tmp_path):
    # NRRD keeps NaN voxels as NaN when read back; ITK's NIfTI reader turns them into 0.
    _, mask, image, _ = small_case
    image = image.copy()
    image[5, 10, 10] = np.nan
    bad = write_volume(tmp_path / "nan.nrrd", image)
    assert np.isnan(sitk.GetArrayViewFromImage(sitk.ReadImage(bad))).sum() == 1
    with pytest.raises(InputError) as info:
        radiomics.extract(bad, mask, radiomics_params, "P9")
    assert_input_error(info, bad, "NaN")


# ----------------------------------------------------------------------------- parquet rows


def test_write_row_read_rows_round_trip(tmp_path):
    a = pd.Series({"f1": 1.5, "f2": -2.0, "f3": 0.25})
    b = pd.Series({"f1": 3.0, "f3": np.nan, "f4": 7.0})
    write_row(a, "P1", tmp_path / "deep" / "P1.parquet")
    write_row(b, "P2", tmp_path / "deep" / "P2.parquet")

    table = read_rows([tmp_path / "deep" / "P1.parquet", tmp_path / "deep" / "P2.parquet"])
    assert list(table.index) == ["P1", "P2"]
    assert table.index.name == "patient_id"
    assert set(table.columns) == {"f1", "f2", "f3", "f4"}
    pd.testing.assert_series_equal(table.loc["P1", list(a.index)], a, check_names=False)
    assert table.loc["P2", "f1"] == 3.0 and table.loc["P2", "f4"] == 7.0
    assert np.isnan(table.loc["P2", "f2"]) and np.isnan(table.loc["P1", "f4"])


def test_a_wide_row_of_an_earlier_version_names_the_file_and_the_fix(tmp_path):
    path = tmp_path / "rnaseq" / "P7.parquet"
    path.parent.mkdir()
    pd.DataFrame({"GENE1": [1.0]}, index=pd.Index(["P7"], name="patient_id")).to_parquet(path)
    with pytest.raises(InputError) as error:
        read_rows([path])
    assert "patient P7" in str(error.value) and str(path) in str(error.value)
    assert "--forcerun radiomics rnaseq" in error.value.fix


def test_read_rows_of_nothing():
    assert read_rows([]).empty


def test_write_row_keeps_radiomics_names(tmp_path, demo_features):
    path = tmp_path / "P001.parquet"
    write_row(demo_features, "P001", path)
    back = read_rows([path]).loc["P001"]
    pd.testing.assert_series_equal(back, demo_features, check_names=False)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("setting:\n  binWidht: 25\n", r"'binWidht' under 'setting' \(did you mean 'binWidth'\?\)"),
        ("setting:\n  binWidth: [25\n", r"while parsing a flow sequence"),
        ("imageType:\n  Orignal: {}\n", r"Image Type Orignal is not recognized"),
    ],
)  # fmt: skip
def test_a_parameter_file_pyradiomics_rejects_is_named_with_its_setting(tmp_path, text, problem):
    path = tmp_path / "params.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=problem) as raised:
        radiomics.check_params(path)
    assert raised.value.path == str(path) and "radiomics.params" in raised.value.fix


def test_the_shipped_parameter_files_pass_the_check(repo_root):
    for path in sorted((repo_root / "config" / "radiomics").rglob("*.yaml")):
        radiomics.check_params(path)
