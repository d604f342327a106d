"""Per-patient image/mask QA before radiomics extraction, and the cohort QA table."""

import json

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from radiotx.errors import InputError
from radiotx.features import qa, radiomics


@pytest.fixture
def case(demo_dir):
    return demo_dir / "images" / "P001_ct.nii.gz", demo_dir / "masks" / "P001_mask.nii.gz"


def write_like(array, reference: sitk.Image, path):
    image = sitk.GetImageFromArray(array)
    image.CopyInformation(reference)
    sitk.WriteImage(image, str(path))
    return path


def test_a_good_case_passes_with_measurements(case):
    image, mask, facts = qa.load(*case, "P001")
    voxels = int(sitk.GetArrayViewFromImage(mask).sum())
    assert facts["roi_voxels"] == voxels > 100 and facts["geometry"] == "match"
    assert facts["roi_volume_mm3"] == pytest.approx(voxels * 0.8 * 0.8 * 2.5, rel=1e-5)
    assert -200 < facts["roi_mean"] < 200  # soft-tissue tumour in HU


@pytest.mark.parametrize("what", ["image", "mask"])
@pytest.mark.parametrize("damage", ["truncated", "not gzip"])
def test_a_damaged_gz_file_is_recorded_with_the_fix(case, tmp_path, radiomics_params, what, damage):
    files = dict(zip(("image", "mask"), case, strict=True))
    data = files[what].read_bytes()
    damaged = tmp_path / files[what].name
    # SimpleITK reads a truncated stream without a word, the rest zero-filled
    damaged.write_bytes(data[: 2 * len(data) // 3] if damage == "truncated" else b"\0" * 400)
    files[what] = damaged
    entry = qa.record(files["image"], files["mask"], radiomics_params, "P001", qa.Settings())
    assert entry["status"] == "error" and entry["file"] == str(damaged)
    if damage == "truncated":
        assert "truncated, or not gzip-compressed" in entry["problem"]
        assert "copy the file again" in entry["fix"]
    elif what == "image":
        assert "not gzip-compressed as its name says" in entry["problem"]
        assert "copy the file again" in entry["fix"]
    else:  # a mask's header is read first
        assert "could not be read" in entry["problem"]


def test_nan_voxels_in_nifti_are_found(case, tmp_path):
    """SimpleITK reads NaN in NIfTI as 0; the check must look at the file itself."""
    source = nib.load(str(case[0]))
    data = source.get_fdata().astype("float32")
    data[40, 40, 20] = np.nan
    path = tmp_path / "nan.nii.gz"
    nib.save(nib.Nifti1Image(data, source.affine), str(path))
    assert not np.isnan(sitk.GetArrayFromImage(sitk.ReadImage(str(path)))).any()
    with pytest.raises(InputError, match="1 NaN or infinite voxels") as info:
        qa.load(path, case[1], "P001")
    assert "patient P001" in str(info.value) and "nan.nii.gz" in str(info.value)


def test_mask_on_another_grid_errors_or_is_resampled(case, tmp_path):
    mask = sitk.ReadImage(str(case[1]))
    coarse = sitk.Resample(
        mask,
        [s // 2 for s in mask.GetSize()],
        sitk.Transform(),
        sitk.sitkNearestNeighbor,
        mask.GetOrigin(),
        [s * 2 for s in mask.GetSpacing()],
        mask.GetDirection(),
    )
    path = tmp_path / "coarse_mask.nii.gz"
    sitk.WriteImage(coarse, str(path))
    with pytest.raises(InputError, match="mask grid differs.*spacing") as info:
        qa.load(case[0], path, "P001")
    assert "resample_mask" in info.value.fix
    image, resampled, facts = qa.load(case[0], path, "P001", qa.Settings(resample_mask=True))
    assert facts["geometry"] == "resampled" and resampled.GetSize() == image.GetSize()
    original = sitk.GetArrayFromImage(mask) > 0
    overlap = original & (sitk.GetArrayFromImage(resampled) > 0)
    assert (
        2 * overlap.sum() / (original.sum() + (sitk.GetArrayFromImage(resampled) > 0).sum()) > 0.8
    )


def test_labels_small_rois_and_empty_masks(case, tmp_path):
    mask = sitk.ReadImage(str(case[1]))
    labels = sitk.GetArrayFromImage(mask).astype("uint8") * 3
    multi = write_like(labels, mask, tmp_path / "multi.nii.gz")
    with pytest.raises(InputError, match=r"label 1 is absent.*\[3\]"):
        qa.load(case[0], multi, "P001")
    assert qa.load(case[0], multi, "P001", qa.Settings(label=3))[2]["roi_voxels"] > 100
    tiny = np.zeros_like(labels)
    tiny[20, 48, 48] = 1
    with pytest.raises(InputError, match="ROI has 1 voxels"):
        qa.load(case[0], write_like(tiny, mask, tmp_path / "tiny.nii.gz"), "P001")
    with pytest.raises(InputError, match="mask is empty"):
        qa.load(case[0], write_like(tiny * 0, mask, tmp_path / "empty.nii.gz"), "P001")


def test_record_never_raises_and_carries_provenance(case, tmp_path, radiomics_params):
    good = qa.record(*case, radiomics_params, "P001", qa.Settings())
    bad = qa.record(case[0], tmp_path / "missing.nii.gz", radiomics_params, "P002", qa.Settings())
    assert good["status"] == "ok" and bad["status"] == "error"
    assert "does not exist" in bad["problem"] and bad["fix"]
    assert good["image_sha256"] == qa.sha256(case[0]) and bad["mask_sha256"] is None
    import radiomics as pyradiomics

    assert good["pyradiomics_version"] == pyradiomics.__version__
    with pytest.raises(InputError, match="patient P002.*missing.nii.gz.*Fix:"):
        qa.raise_if_failed(bad)
    paths = []
    for entry in (good, bad):
        paths.append(tmp_path / f"{entry['patient_id']}.json")
        paths[-1].write_text(json.dumps(entry), encoding="utf-8")
    table = qa.table(paths)
    assert list(table["status"]) == ["ok", "error"] and table.loc[0, "roi_voxels"] > 100


def test_settings_hash_ignores_formatting_but_not_values(tmp_path, radiomics_params):
    text = radiomics_params.read_text(encoding="utf-8")
    reformatted = tmp_path / "a.yaml"
    reformatted.write_text(
        "# a comment\n" + text.replace("binWidth: 25", "binWidth:   25"), encoding="utf-8"
    )
    changed = tmp_path / "b.yaml"
    changed.write_text(text.replace("binWidth: 25", "binWidth: 10"), encoding="utf-8")
    base = qa.settings_hash(radiomics_params, qa.Settings())
    assert qa.settings_hash(reformatted, qa.Settings()) == base
    assert qa.settings_hash(changed, qa.Settings()) != base
    assert qa.settings_hash(radiomics_params, qa.Settings(label=2)) != base


def test_sha256_of_a_dicom_like_folder(tmp_path):
    folder = tmp_path / "series"
    folder.mkdir()
    (folder / "1.dcm").write_bytes(b"a")
    (folder / "2.dcm").write_bytes(b"b")
    first = qa.sha256(folder)
    (folder / "2.dcm").write_bytes(b"c")
    assert qa.sha256(folder) != first


@pytest.mark.parametrize("preset", ["ct.yaml", "mr.yaml"])
def test_presets_compute_every_family_and_filter(case, repo_root, preset):
    image, mask, _ = qa.load(*case, "P001")
    features = radiomics.compute(image, mask, repo_root / "config" / "radiomics" / preset)
    prefixes = {name.split("_")[0] for name in features.index}
    assert {"original", "wavelet-LLH", "log-sigma-3-0-mm-3D", "square", "squareroot",
            "logarithm", "exponential", "gradient", "lbp-2D"} <= prefixes  # fmt: skip
    families = {name.split("_")[1] for name in features.index}
    assert families == {"firstorder", "shape", "glcm", "glrlm", "glszm", "gldm", "ngtdm"}
    assert np.isfinite(features).all() and len(features) > 1800
