"""Reading images and masks: NIfTI, DICOM series, RTSTRUCT and SEG on synthetic CT data."""

from __future__ import annotations

import locale
import shutil
import uuid
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from radiotx.errors import InputError
from radiotx.imaging import labels_in, read_image, read_mask

SHAPE = (20, 64, 64)  # slices, rows, columns
SPACING = (0.7, 0.7, 2.5)
ORIGIN = (-22.0, -30.0, 100.0)
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


def generate_uid() -> str:
    return f"2.25.{uuid.uuid4().int}"  # a UID derived from a UUID, as DICOM PS3.5 allows


def ct_volume(shape=SHAPE, seed=0) -> sitk.Image:
    """A CT-like int16 HU volume: air around a soft-tissue cylinder, with noise."""
    rng = np.random.default_rng(seed)
    _, y, x = np.indices(shape)
    hu = np.full(shape, -1000, dtype=np.int16)
    hu[(x - shape[2] / 2) ** 2 + (y - shape[1] / 2) ** 2 < (0.45 * min(shape[1:])) ** 2] = 40
    hu += rng.integers(-30, 30, size=shape, dtype=np.int16)
    image = sitk.GetImageFromArray(hu)
    image.SetSpacing(SPACING)
    image.SetOrigin(ORIGIN)
    return image


def sphere(shape=SHAPE, centre=(10, 22, 30), radius_mm=10.0) -> np.ndarray:
    """Boolean (slice, row, column) ball of ``radius_mm`` around the ``centre`` voxel."""
    z, y, x = np.indices(shape)
    cz, cy, cx = centre
    dx, dy, dz = SPACING
    return ((x - cx) * dx) ** 2 + ((y - cy) * dy) ** 2 + ((z - cz) * dz) ** 2 < radius_mm**2


def lung_box(shape=SHAPE) -> np.ndarray:
    box = np.zeros(shape, dtype=bool)
    box[3:17, 30:50, 42:56] = True
    return box


def write_series(image: sitk.Image, folder: Path, prefix="ct", **uids) -> dict[str, str]:
    """Write ``image`` as a CT DICOM series with stored values HU + 1024 (intercept -1024)."""
    folder.mkdir(parents=True, exist_ok=True)
    uids = {k: uids.get(k) or generate_uid() for k in ("study", "series", "frame")}
    d = image.GetDirection()
    tags = {
        "0008|0016": CT_IMAGE_STORAGE,
        "0008|0060": "CT",
        "0008|0020": "20240101",
        "0008|0030": "120000",
        "0008|0050": "A1",
        "0008|0090": "",
        "0010|0010": "Test^Patient",
        "0010|0020": "P001",
        "0010|0030": "19700101",
        "0010|0040": "O",
        "0020|0010": "1",
        "0020|0011": "1",
        "0020|000d": uids["study"],
        "0020|000e": uids["series"],
        "0020|0052": uids["frame"],
        "0020|0037": "\\".join(str(v) for v in (d[0], d[3], d[6], d[1], d[4], d[7])),
        "0018|0050": str(image.GetSpacing()[2]),
        # the writer stores HU - intercept, as CT scanners do
        "0028|1052": "-1024",
        "0028|1053": "1",
    }
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    # GDCM leaves the process locale at "C" after writing; keep the test process's locale.
    saved = locale.setlocale(locale.LC_ALL)
    for i in range(image.GetDepth()):
        slice_ = image[:, :, i]
        for key, value in tags.items():
            slice_.SetMetaData(key, value)
        slice_.SetMetaData("0008|0018", generate_uid())
        position = image.TransformIndexToPhysicalPoint((0, 0, i))
        slice_.SetMetaData("0020|0032", "\\".join(str(v) for v in position))
        slice_.SetMetaData("0020|0013", str(i + 1))
        writer.SetFileName(str(folder / f"{prefix}_{i:03d}.dcm"))
        writer.Execute(slice_)
    locale.setlocale(locale.LC_ALL, saved)
    return uids


def write_rtstruct(series: Path, path: Path, rois: dict[str, np.ndarray]) -> Path:
    rt_utils = pytest.importorskip("rt_utils")
    rtstruct = rt_utils.RTStructBuilder.create_new(dicom_series_path=str(series))
    for name, voxels in rois.items():
        rtstruct.add_roi(mask=np.transpose(voxels, (1, 2, 0)), name=name)  # rows, columns, slices
    rtstruct.save(str(path))
    return path


def write_seg(series: Path, path: Path, segments: dict[str, np.ndarray]) -> Path:
    hd = pytest.importorskip("highdicom")
    pydicom = pytest.importorskip("pydicom")
    from pydicom.sr.codedict import codes

    sources = sorted(
        (pydicom.dcmread(p) for p in series.glob("*.dcm")),
        key=lambda ds: float(ds.ImagePositionPatient[2]),
    )
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=label,
            segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
            segmented_property_type=codes.SCT.Neoplasm,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        )
        for number, label in enumerate(segments, start=1)
    ]
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=np.stack(list(segments.values()), axis=-1),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=2,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="radiotx",
        manufacturer_model_name="test",
        software_versions="0",
        device_serial_number="1",
    )
    seg.save_as(path)
    return path


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


@pytest.fixture(scope="module")
def ct(tmp_path_factory):
    """A DICOM CT series, the HU volume it was written from, and its frame of reference."""
    pytest.importorskip("pydicom")
    root = tmp_path_factory.mktemp("ct")
    image = ct_volume()
    uids = write_series(image, root / "series")
    return root / "series", image, uids


@pytest.fixture(scope="module")
def rtstruct(ct, tmp_path_factory):
    series, _, _ = ct
    path = tmp_path_factory.mktemp("rt") / "rtstruct.dcm"
    return write_rtstruct(series, path, {"GTV-1": sphere(), "Lung_L": lung_box()})


@pytest.fixture(scope="module")
def seg(ct, tmp_path_factory):
    series, _, _ = ct
    path = tmp_path_factory.mktemp("seg") / "seg.dcm"
    return write_seg(series, path, {"Tumour": sphere(), "Lung left": lung_box()})


def assert_fix(excinfo, *fragments):
    message = str(excinfo.value)
    assert "Fix:" in message
    for fragment in fragments:
        assert fragment in message, message


def assert_same_grid(image: sitk.Image, reference: sitk.Image):
    assert image.GetSize() == reference.GetSize()
    np.testing.assert_allclose(image.GetSpacing(), reference.GetSpacing(), atol=1e-4)
    np.testing.assert_allclose(image.GetOrigin(), reference.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(image.GetDirection(), reference.GetDirection(), atol=1e-6)


# --- images -----------------------------------------------------------------------------


def test_dicom_series_is_read_in_hu_with_its_geometry(ct):
    series, original, uids = ct
    stored = pytest.importorskip("pydicom").dcmread(next(series.glob("*.dcm")))
    assert float(stored.RescaleIntercept) == -1024  # the files hold HU + 1024

    image = read_image(series)
    assert image.GetPixelID() == sitk.sitkInt16
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(original))
    assert_same_grid(image, original)
    assert image.GetMetaData("0020|0052") == uids["frame"]


def test_nifti_image_round_trips(tmp_path):
    original = ct_volume()
    sitk.WriteImage(original, str(tmp_path / "ct.nii.gz"))
    image = read_image(tmp_path / "ct.nii.gz")
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(original))


def test_series_folder_ignores_an_rtstruct_beside_the_slices(ct, rtstruct, tmp_path):
    series, original, _ = ct
    shutil.copytree(series, tmp_path / "export")
    shutil.copy(rtstruct, tmp_path / "export" / "rtstruct.dcm")
    assert read_image(tmp_path / "export").GetSize() == original.GetSize()


def test_folder_with_two_series_lists_both(ct, tmp_path):
    series, _, uids = ct
    shutil.copytree(series, tmp_path / "mixed")
    other = write_series(ct_volume(shape=(5, 64, 64), seed=1), tmp_path / "mixed", prefix="mr")
    with pytest.raises(InputError) as excinfo:
        read_image(tmp_path / "mixed")
    assert_fix(
        excinfo,
        f"{uids['series']} (20 slices)",
        f"{other['series']} (5 slices)",
        "point the sheet at a folder with one series",
    )


def test_missing_slice_is_reported(ct, tmp_path):
    series, _, _ = ct
    shutil.copytree(series, tmp_path / "gap")
    (tmp_path / "gap" / "ct_007.dcm").unlink()
    with pytest.raises(InputError) as excinfo:
        read_image(tmp_path / "gap")
    assert_fix(excinfo, "missing or duplicated slices")


def test_unreadable_missing_and_empty_inputs_are_input_errors(ct, rtstruct, tmp_path):
    series, _, _ = ct
    garbage = tmp_path / "scan.nii.gz"
    garbage.write_bytes(b"not an image at all")
    (tmp_path / "empty").mkdir()
    cases = [
        (lambda: read_image(garbage), "not gzip-compressed as its name says"),
        (lambda: read_image(tmp_path / "absent.nii.gz"), "does not exist"),
        (lambda: read_image(tmp_path / "empty"), "no DICOM image series"),
        (lambda: read_image(rtstruct), "a mask, not an image"),
        (lambda: read_image(next(series.glob("*.dcm"))), "single slice"),
        (lambda: read_mask(garbage, ct_volume()), "not gzip-compressed as its name says"),
    ]
    for call, fragment in cases:
        with pytest.raises(InputError) as excinfo:
            call()
        assert_fix(excinfo, fragment)


# --- label images -----------------------------------------------------------------------


def test_label_image_selects_one_label(tmp_path):
    reference = ct_volume()
    labels = sphere().astype(np.uint8) * 2 + lung_box().astype(np.uint8) * 3
    labels[0, :2, :2] = 1
    label_image = sitk.GetImageFromArray(labels)
    label_image.CopyInformation(reference)
    sitk.WriteImage(label_image, str(tmp_path / "labels.nii.gz"))

    mask = read_mask(tmp_path / "labels.nii.gz", reference, label=2)
    assert mask.GetPixelID() == sitk.sitkUInt8
    assert_same_grid(mask, reference)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(mask), labels == 2)
    assert labels_in(tmp_path / "labels.nii.gz") == [1, 2, 3]

    with pytest.raises(InputError) as excinfo:
        read_mask(tmp_path / "labels.nii.gz", reference, label=4)
    assert_fix(excinfo, "label 4 is absent", "[1, 2, 3]")


def test_label_image_on_a_cropped_grid_is_placed_by_geometry(tmp_path):
    reference = ct_volume()
    ball = sphere()
    cropped = sitk.GetImageFromArray(ball.astype(np.uint8))[10:50, 5:45, 4:16]
    cropped.SetSpacing(SPACING)
    cropped.SetOrigin(reference.TransformIndexToPhysicalPoint((10, 5, 4)))
    sitk.WriteImage(cropped, str(tmp_path / "crop.nrrd"))

    mask = read_mask(tmp_path / "crop.nrrd", reference)
    assert_same_grid(mask, reference)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(mask), ball)


# --- RTSTRUCT ---------------------------------------------------------------------------


def test_rtstruct_roi_is_rasterised_onto_the_series(ct, rtstruct):
    series, _, _ = ct
    reference = read_image(series)
    mask = read_mask(rtstruct, reference, roi="gtv")
    assert mask.GetPixelID() == sitk.sitkUInt8
    assert_same_grid(mask, reference)
    # contours through the centres of edge voxels: those voxels must count as inside
    assert dice(sitk.GetArrayFromImage(mask), sphere()) > 0.98

    lung = read_mask(rtstruct, reference, roi=r"^lung_l$")
    assert dice(sitk.GetArrayFromImage(lung), lung_box()) > 0.9


def test_rtstruct_roi_errors_list_the_names(ct, rtstruct):
    reference = read_image(ct[0])
    cases = [
        ("PTV", ["no ROI name matches 'PTV'", "'GTV-1'", "'Lung_L'"]),
        ("[-_]", ["matches several ROIs", "'GTV-1'", "'Lung_L'", "make the pattern specific"]),
        (None, ["no ROI name pattern given", "'GTV-1'"]),
        ("(", ["not a regular expression"]),
    ]
    for roi, fragments in cases:
        with pytest.raises(InputError) as excinfo:
            read_mask(rtstruct, reference, roi=roi)
        assert_fix(excinfo, str(rtstruct), *fragments)


def test_dicom_masks_on_another_scan_are_refused(ct, rtstruct, seg, tmp_path):
    other = tmp_path / "other"
    write_series(ct_volume(), other)
    for path in (rtstruct, seg):
        # the frame of reference comes from the image read from the series ...
        with pytest.raises(InputError) as excinfo:
            read_mask(path, read_image(other), roi="gtv|tumour")
        assert_fix(excinfo, "frame of reference", "pair the mask with the DICOM series")
        # ... or, for an image without DICOM tags, from the series folder
        with pytest.raises(InputError) as excinfo:
            read_mask(path, ct_volume(), roi="gtv|tumour", series_dir=other)
        assert_fix(excinfo, "frame of reference")
    assert read_mask(rtstruct, ct_volume(), roi="gtv", series_dir=ct[0]).GetSize() == (64, 64, 20)


def test_rtstruct_on_non_square_slices(tmp_path):
    shape = (12, 40, 64)
    write_series(ct_volume(shape=shape), tmp_path / "series")
    ball = sphere(shape=shape, centre=(6, 20, 40), radius_mm=9.0)
    path = write_rtstruct(tmp_path / "series", tmp_path / "rt.dcm", {"GTV": ball})
    mask = read_mask(path, read_image(tmp_path / "series"), roi="GTV")
    assert dice(sitk.GetArrayFromImage(mask), ball) > 0.9


# --- SEG --------------------------------------------------------------------------------


def test_seg_segment_is_placed_on_the_reference_grid(ct, seg):
    series, _, _ = ct
    reference = read_image(series)
    by_label = read_mask(seg, reference, roi="tumou?r")
    assert by_label.GetPixelID() == sitk.sitkUInt8
    assert_same_grid(by_label, reference)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(by_label), sphere())

    by_number = read_mask(seg, reference, label=2)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(by_number), lung_box())
    assert labels_in(seg) == [1, 2]


def test_seg_on_a_coarser_reference_follows_geometry(ct, seg):
    _, original, _ = ct
    # every second slice of the scan: placement must use positions, not array indices
    coarse = original[:, :, 1::2]
    mask = read_mask(seg, coarse, roi="tumour")
    assert_same_grid(mask, coarse)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(mask), sphere()[1::2])


def test_seg_errors_list_the_segments(ct, seg):
    reference = read_image(ct[0])
    for kwargs, fragment in [
        ({"roi": "liver"}, "no segment name matches 'liver'"),
        ({"label": 3}, "no segment number 3"),
        ({"roi": "t"}, "matches several segments"),
    ]:
        with pytest.raises(InputError) as excinfo:
            read_mask(seg, reference, **kwargs)
        assert_fix(excinfo, str(seg), "1: 'Tumour'", "2: 'Lung left'", fragment)


def test_dicom_masks_follow_a_reoriented_reference(ct, rtstruct, seg):
    """A reference converted to RAS (as NIfTI tools do) has flipped axes but the same voxels."""
    _, original, _ = ct
    reference = sitk.DICOMOrient(original, "RAS")
    truth = sitk.GetImageFromArray(sphere().astype(np.uint8))
    truth.CopyInformation(original)
    expected = sitk.GetArrayFromImage(sitk.DICOMOrient(truth, "RAS"))
    for path in (rtstruct, seg):
        mask = read_mask(path, reference, roi="gtv|tumour")
        assert_same_grid(mask, reference)
        np.testing.assert_array_equal(sitk.GetArrayFromImage(mask), expected)
