"""Read images and masks in the formats users have; always return SimpleITK images.

Images: any file SimpleITK reads (NIfTI, NRRD, MHA/MHD, ...) or a folder holding one DICOM
series. Masks: a label image, a DICOM RTSTRUCT or a DICOM SEG, returned as a UInt8 binary
mask (1 inside the ROI) on the grid of the image. DICOM masks are placed by their patient
coordinates, never by array shape, so a mask drawn on another grid still lands where it was
drawn. pydicom and highdicom are imported only when a DICOM mask is read.
"""

from __future__ import annotations

import contextlib
import gzip
import locale
import re
import zlib
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from radiotx.errors import InputError

GEOMETRY_TOLERANCE = 1e-3  # mm, and unitless for direction cosines

# DICOM tags copied from the first slice of a series onto the image, so that a DICOM mask can
# be checked against the scan it is paired with.
FRAME_OF_REFERENCE = "0020|0052"
SERIES_UID = "0020|000e"
MODALITY = "0008|0060"
_KEPT_TAGS = (FRAME_OF_REFERENCE, SERIES_UID, MODALITY)

# Series in a scan folder that are not the scan: exports often put the RTSTRUCT, SEG or dose
# next to the CT slices, and those must not count as a second series.
_NOT_A_SCAN = {"RTSTRUCT", "SEG", "RTPLAN", "RTDOSE", "RTRECORD", "SR", "PR", "KO", "REG"}


def read_image(path, *, patient: str | None = None) -> sitk.Image:
    """Read an image file or a DICOM series folder.

    DICOM rescale slope/intercept are applied (CT in HU); an integer result is kept as 16 bit
    when the stored pixels were 16 bit and the values fit.
    """
    path = Path(path)
    if path.is_dir():
        return _read_series(path, patient)
    header = _dicom_header(path)
    if header is not None and str(header.get("Modality", "")) in {"RTSTRUCT", "SEG"}:
        raise InputError(
            f"this is a DICOM {header.Modality}, a mask, not an image",
            patient=patient,
            path=path,
            fix="put this file in the mask column and the scan in the image column",
        )
    image = _read_file(path, patient, "image")
    if header is not None and (image.GetDimension() == 2 or image.GetSize()[-1] == 1):
        raise InputError(
            "the image is a single slice",
            patient=patient,
            path=path,
            fix="point the sheet at the folder holding all slices of the DICOM series",
        )
    return image


def read_mask(
    path,
    reference: sitk.Image,
    *,
    label: int = 1,
    roi: str | None = None,
    series_dir=None,
    patient: str | None = None,
) -> sitk.Image:
    """Return the ROI of a mask file as a UInt8 binary image on the ``reference`` grid.

    A label image gives ``voxels == label`` (resampled, nearest neighbour, if its grid
    differs). For a DICOM RTSTRUCT, ``roi`` is a case-insensitive regular expression searched
    in the ROI names (``None``: the only ROI). For a DICOM SEG, ``roi`` is searched in the
    segment labels or equals the segment number; with ``roi=None`` the segment number is
    ``label``. DICOM masks are checked against the frame of reference of the scan: taken from
    ``reference`` when :func:`read_image` read it from a series, else from ``series_dir``.
    """
    path = _single_file(Path(path), patient)
    header = _dicom_header(path)
    modality = "" if header is None else str(header.get("Modality", ""))
    if modality == "RTSTRUCT":
        frame = _frame_of_reference(reference, series_dir)
        mask = _read_rtstruct(path, reference, roi, frame, patient)
    elif modality == "SEG":
        frame = _frame_of_reference(reference, series_dir)
        mask = _read_seg(path, reference, label, roi, frame, patient)
    else:
        mask = _read_label_image(path, reference, label, patient)
    if not np.any(sitk.GetArrayViewFromImage(mask)):
        raise InputError(
            "the ROI has no voxel on the image grid (empty, or outside the image)",
            patient=patient,
            path=path,
            fix="pair the mask with the scan it was drawn on",
        )
    return mask


def labels_in(mask_path, *, patient: str | None = None) -> list[int]:
    """Non-zero labels of a label image (segment numbers for a DICOM SEG)."""
    path = Path(mask_path)
    header = _dicom_header(path)
    if header is not None and header.get("Modality") == "SEG":
        return sorted(int(item.SegmentNumber) for item in header.SegmentSequence)
    if header is not None and header.get("Modality") == "RTSTRUCT":
        raise InputError(
            "an RTSTRUCT holds named ROIs, not numbered labels",
            patient=patient,
            path=path,
            fix="select the ROI by name (a pattern) instead of by label",
        )
    image = _read_file(path, patient, "mask")  # the array view below needs it alive
    voxels = sitk.GetArrayViewFromImage(image).ravel()
    if voxels.dtype.kind in "iu" and voxels.size and voxels.min() >= 0 and voxels.max() < 2**16:
        # bincount is linear; np.unique sorts the whole volume
        return [int(v) for v in np.flatnonzero(np.bincount(voxels)) if v != 0]
    return [int(v) for v in np.unique(voxels) if v != 0]


# --- images -----------------------------------------------------------------------------


_HEADERS = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")  # one file, a header


def file_problem(path, patient, what: str, header: bool = True) -> InputError | None:
    """What a glance finds wrong with a patient's file (absent; named .gz but not gzip; a
    NIfTI, NRRD or MetaImage header that cannot be read), without reading its voxels:
    cheap enough to check every patient before any job. ``header=False`` skips the header
    for a caller that reads the whole image next."""
    path = Path(path)
    if not path.exists():
        return InputError(
            f"{what} file does not exist",
            patient=patient,
            path=path,
            fix=f"correct the '{what}' path of this patient in the patient sheet",
        )
    if path.is_file() and path.name.lower().endswith(".gz"):
        with open(path, "rb") as stream:
            if stream.read(2) != b"\x1f\x8b":
                return InputError(
                    f"{what} is not gzip-compressed as its name says",
                    patient=patient,
                    path=path,
                    fix="copy the file again from its source, or name it after its format",
                )
    if header and path.is_file() and path.name.lower().endswith(_HEADERS):
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        try:
            reader.ReadImageInformation()
        except RuntimeError as err:
            return InputError(
                f"{what} could not be read as an image ({_last_line(err)})",
                patient=patient,
                path=path,
                fix="provide a NIfTI, NRRD or MHA file, or a folder holding one DICOM series",
            )
    return None


def _read_file(path: Path, patient, what: str) -> sitk.Image:
    problem = file_problem(path, patient, what, header=False)  # ReadImage reads it below
    if problem is not None:
        raise problem
    if path.name.lower().endswith(".gz"):
        _check_gzip(path, patient, what)
    try:
        return sitk.ReadImage(str(path))
    except RuntimeError as err:
        raise InputError(
            f"{what} could not be read as an image ({_last_line(err)})",
            patient=patient,
            path=path,
            fix="provide a NIfTI, NRRD or MHA file, or a folder holding one DICOM series",
        ) from err


def _check_gzip(path: Path, patient, what: str) -> None:
    """A ``.gz`` file must hold a whole gzip stream: SimpleITK reads a truncated one without
    a word, filling the missing voxels with zeros."""
    try:
        with gzip.open(path, "rb") as stream:
            while stream.read(1 << 24):
                pass
    except (OSError, EOFError, zlib.error) as err:
        raise InputError(
            f"{what} could not be read: the file is truncated, or not gzip-compressed as its "
            f"name says ({err})",
            patient=patient,
            path=path,
            fix="copy the file again from its source, or name it after its format",
        ) from err


@contextlib.contextmanager
def _locale_kept():
    """GDCM switches the process locale to "C" while it scans a DICOM folder and leaves it
    there, which turns Python's default text encoding into ASCII; put it back."""
    saved = locale.setlocale(locale.LC_ALL)
    try:
        yield
    finally:
        locale.setlocale(locale.LC_ALL, saved)


def _read_series(folder: Path, patient) -> sitk.Image:
    with _locale_kept():
        return _read_series_files(folder, patient)


def _read_series_files(folder: Path, patient) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    series = {}
    for uid in reader.GetGDCMSeriesIDs(str(folder)):
        files = reader.GetGDCMSeriesFileNames(str(folder), uid)  # sorted by slice position
        header = _dicom_header(Path(files[0]))
        if header is None or str(header.get("Modality", "")) not in _NOT_A_SCAN:
            series[uid] = files
    if not series:
        raise InputError(
            "the folder holds no DICOM image series",
            patient=patient,
            path=folder,
            fix="point the sheet at the folder that directly holds the DICOM slices of the scan",
        )
    if len(series) > 1:
        listing = ", ".join(f"{uid} ({len(files)} slices)" for uid, files in series.items())
        raise InputError(
            f"the folder holds {len(series)} DICOM series: {listing}",
            patient=patient,
            path=folder,
            fix="point the sheet at a folder with one series",
        )
    files = next(iter(series.values()))
    reader.SetFileNames(files)
    reader.MetaDataDictionaryArrayUpdateOn()
    try:
        # GDCM applies RescaleSlope/Intercept, so CT voxels come back in HU
        image = reader.Execute()
    except RuntimeError as err:
        raise InputError(
            f"the DICOM series could not be read ({_last_line(err)})",
            patient=patient,
            path=folder,
            fix="re-export the series, uncompressed or in a transfer syntax GDCM reads",
        ) from err
    _check_slice_spacing(reader, folder, patient)
    image = _narrow_to_stored_bits(image, reader)
    for key in _KEPT_TAGS:
        if reader.HasMetaDataKey(0, key):
            image.SetMetaData(key, reader.GetMetaData(0, key).strip())
    return image


def _check_slice_spacing(reader: sitk.ImageSeriesReader, folder: Path, patient) -> None:
    """A missing or duplicated slice makes the volume geometry wrong without any error."""
    n = len(reader.GetFileNames())
    if n < 3 or not reader.HasMetaDataKey(0, "0020|0032"):
        return
    cosines = [float(v) for v in reader.GetMetaData(0, "0020|0037").split("\\")]
    normal = np.cross(cosines[:3], cosines[3:])
    positions = [
        [float(v) for v in reader.GetMetaData(i, "0020|0032").split("\\")] for i in range(n)
    ]
    steps = np.diff(np.asarray(positions) @ normal)
    if np.ptp(steps) > 0.1 * abs(np.median(steps)):
        raise InputError(
            f"slice spacing varies from {steps.min():.3g} to {steps.max():.3g} mm "
            "(missing or duplicated slices)",
            patient=patient,
            path=folder,
            fix="re-export the complete series",
        )


def _narrow_to_stored_bits(image: sitk.Image, reader: sitk.ImageSeriesReader) -> sitk.Image:
    """GDCM widens int16 + intercept to int32 for safety; HU fit the 16 bits they came in."""
    if image.GetPixelID() != sitk.sitkInt32 or not reader.HasMetaDataKey(0, "0028|0100"):
        return image
    if reader.GetMetaData(0, "0028|0100").strip() != "16":  # BitsAllocated
        return image
    extremes = sitk.MinimumMaximumImageFilter()
    extremes.Execute(image)
    if extremes.GetMinimum() >= -(2**15) and extremes.GetMaximum() < 2**15:
        return sitk.Cast(image, sitk.sitkInt16)
    return image


# --- masks ------------------------------------------------------------------------------


def _single_file(path: Path, patient) -> Path:
    """Archives such as TCIA store an RTSTRUCT or SEG alone in its own series folder."""
    if not path.is_dir():
        return path
    files = [p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")]
    if len(files) != 1:
        raise InputError(
            f"the mask folder holds {len(files)} files, expected one",
            patient=patient,
            path=path,
            fix="point the sheet at the mask file (label image, RTSTRUCT or SEG)",
        )
    return files[0]


def _read_label_image(path: Path, reference: sitk.Image, label: int, patient) -> sitk.Image:
    labels = _read_file(path, patient, "mask")
    if labels.GetNumberOfComponentsPerPixel() != 1 or labels.GetDimension() != 3:
        raise InputError(
            "the mask is not a 3D single-channel label image",
            patient=patient,
            path=path,
            fix="export the mask as a 3D label image (one integer label per voxel)",
        )
    voxels = sitk.GetArrayViewFromImage(labels)
    if not np.any(voxels == label):
        present = labels_in(path, patient=patient)
        raise InputError(
            f"label {label} is absent from the mask (labels present: {present})"
            if present
            else "the mask is empty",
            patient=patient,
            path=path,
            fix="check the segmentation, or set radiomics.label in config/config.yaml",
        )
    mask = sitk.GetImageFromArray((voxels == label).astype(np.uint8))
    mask.CopyInformation(labels)
    return _onto(mask, reference)


def _read_rtstruct(path: Path, reference: sitk.Image, roi, frame, patient) -> sitk.Image:
    import pydicom

    ds = pydicom.dcmread(path)
    names = {int(item.ROINumber): str(item.ROIName) for item in ds.StructureSetROISequence}
    number = _pick(names, roi, None, path, patient, "ROI")
    for item in ds.StructureSetROISequence:
        if int(item.ROINumber) == number:
            _check_frame_of_reference(
                item.get("ReferencedFrameOfReferenceUID"), frame, path, patient
            )
    contours = [
        contour
        for item in ds.get("ROIContourSequence", [])
        if int(item.ReferencedROINumber) == number
        for contour in item.get("ContourSequence", [])
        # points and open lines enclose no volume
        if contour.get("ContourGeometricType", "CLOSED_PLANAR") == "CLOSED_PLANAR"
    ]
    if not contours:
        raise InputError(
            f"ROI '{names[number]}' has no closed contours",
            patient=patient,
            path=path,
            fix="re-export the RTSTRUCT with the contours of this ROI",
        )
    size = reference.GetSize()
    voxels = np.zeros(size[::-1], dtype=bool)
    for contour in contours:
        points = np.asarray(contour.ContourData, dtype=float).reshape(-1, 3)
        index = _physical_to_index(reference, points)
        k = round(float(index[:, 2].mean()))
        if 0 <= k < size[2]:
            # XOR: a contour inside another on the same slice is a hole
            voxels[k] ^= _fill_polygon(index[:, :2], size[1], size[0])
    mask = sitk.GetImageFromArray(voxels.astype(np.uint8))
    mask.CopyInformation(reference)
    return mask


def _read_seg(path: Path, reference: sitk.Image, label, roi, frame, patient) -> sitk.Image:
    import highdicom

    seg = highdicom.seg.segread(path)
    names = {int(item.SegmentNumber): str(item.SegmentLabel) for item in seg.SegmentSequence}
    number = _pick(names, roi, label, path, patient, "segment")
    _check_frame_of_reference(seg.get("FrameOfReferenceUID"), frame, path, patient)
    try:
        volume = seg.get_volume(segment_numbers=[number], combine_segments=False)
    except (ValueError, RuntimeError) as err:
        raise InputError(
            f"the SEG frames do not form a regular 3D volume ({err})",
            patient=patient,
            path=path,
            fix="export the SEG with one frame per slice of the scan",
        ) from err
    voxels = volume.array.reshape(volume.array.shape[:3])  # (slice, row, column)
    # fractional segmentations are probabilities or occupancies in [0, 1]
    inside = voxels >= 0.5 if voxels.dtype.kind == "f" else voxels > 0
    # highdicom's affine maps (slice, row, column) to patient LPS, as SimpleITK uses
    axes = volume.affine[:3, [2, 1, 0]]
    spacing = np.linalg.norm(axes, axis=0)
    mask = sitk.GetImageFromArray(inside.astype(np.uint8))
    mask.SetSpacing(spacing.tolist())
    mask.SetDirection((axes / spacing).ravel().tolist())
    mask.SetOrigin(volume.affine[:3, 3].tolist())
    return _onto(mask, reference)


def _pick(names: dict[int, str], roi, label, path, patient, what: str) -> int:
    """The one ROI/segment number that ``roi`` (a name pattern) or ``label`` selects."""
    present = ", ".join(f"{n}: '{name}'" for n, name in sorted(names.items()))
    if roi is None:
        if label is not None and label in names:
            return label
        if label is None and len(names) == 1:
            return next(iter(names))
        problem = (
            f"no {what} number {label} (present: {present})"
            if label is not None
            else f"several {what}s and no {what} name pattern given (present: {present})"
        )
        raise InputError(problem, patient=patient, path=path, fix=f"set the {what} name pattern")
    try:
        pattern = re.compile(roi, re.IGNORECASE)
    except re.error as err:
        raise InputError(
            f"the {what} pattern '{roi}' is not a regular expression ({err})",
            patient=patient,
            path=path,
            fix=f"write the {what} pattern as a Python regular expression, e.g. '^GTV'",
        ) from err
    hits = {
        n: name
        for n, name in names.items()
        if pattern.search(name) or (label is not None and str(n) == roi.strip())
    }
    if not hits:
        raise InputError(
            f"no {what} name matches '{roi}' ({what}s present: {present})",
            patient=patient,
            path=path,
            fix=f"set the {what} pattern to match one of the names present",
        )
    if len(hits) > 1:
        listing = ", ".join(f"{n}: '{name}'" for n, name in hits.items())
        raise InputError(
            f"the {what} pattern '{roi}' matches several {what}s: {listing}",
            patient=patient,
            path=path,
            fix=f"make the pattern specific, e.g. '^{next(iter(hits.values()))}$'",
        )
    return next(iter(hits))


def _frame_of_reference(reference: sitk.Image, series_dir) -> str | None:
    """Frame of reference UID of the scan, if it is known."""
    if reference.HasMetaDataKey(FRAME_OF_REFERENCE):
        return reference.GetMetaData(FRAME_OF_REFERENCE).strip()
    if series_dir is None or not Path(series_dir).is_dir():
        return None
    for file in sorted(Path(series_dir).iterdir()):
        header = _dicom_header(file)
        if (
            header is not None
            and header.get("Modality") not in _NOT_A_SCAN
            and "FrameOfReferenceUID" in header
        ):
            return str(header.FrameOfReferenceUID).strip()
    return None


def _check_frame_of_reference(uid, expected: str | None, path, patient) -> None:
    """A mask drawn on another scan has another frame of reference; catch it by UID."""
    if uid is None or expected is None:
        return
    if str(uid).strip() != expected:
        raise InputError(
            f"the mask's frame of reference {uid} differs from the image's {expected}",
            patient=patient,
            path=path,
            fix="pair the mask with the DICOM series it was drawn on",
        )


def _onto(mask: sitk.Image, reference: sitk.Image) -> sitk.Image:
    """Put a binary mask on the reference grid: copied when the grids agree, else resampled."""
    same = mask.GetSize() == reference.GetSize() and all(
        np.allclose(a, b, atol=GEOMETRY_TOLERANCE)
        for a, b in [
            (mask.GetSpacing(), reference.GetSpacing()),
            (mask.GetOrigin(), reference.GetOrigin()),
            (mask.GetDirection(), reference.GetDirection()),
        ]
    )
    if same:
        mask = sitk.Cast(mask, sitk.sitkUInt8)
        mask.CopyInformation(reference)  # drop sub-tolerance rounding of the mask header
        return mask
    return sitk.Resample(
        mask, reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8
    )


def _physical_to_index(image: sitk.Image, points: np.ndarray) -> np.ndarray:
    """Continuous (x, y, z) voxel indices of patient-coordinate points, shape (n, 3)."""
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    to_physical = direction * np.asarray(image.GetSpacing())
    return np.linalg.solve(to_physical, (points - np.asarray(image.GetOrigin())).T).T


def _fill_polygon(polygon: np.ndarray, rows: int, columns: int) -> np.ndarray:
    """Voxels of a (rows, columns) slice whose centre lies inside or on the polygon."""
    from matplotlib.path import Path as Polygon

    inside = np.zeros((rows, columns), dtype=bool)
    low = np.maximum(np.floor(polygon.min(axis=0)).astype(int), 0)
    high = np.minimum(np.ceil(polygon.max(axis=0)).astype(int), [columns - 1, rows - 1])
    if np.any(high < low):
        return inside
    x, y = np.meshgrid(np.arange(low[0], high[0] + 1), np.arange(low[1], high[1] + 1))
    centres = np.column_stack([x.ravel(), y.ravel()])
    outline = Polygon(polygon)
    # Contours often run through the centres of the edge voxels, up to rounding of the stored
    # coordinates. A small radius grows or shrinks the polygon depending on its winding
    # direction; trying both signs counts centres on (or within 0.001 voxel of) the edge.
    hit = outline.contains_points(centres, radius=1e-3) | outline.contains_points(
        centres, radius=-1e-3
    )
    inside[low[1] : high[1] + 1, low[0] : high[0] + 1] = hit.reshape(x.shape)
    return inside


# --- DICOM header -----------------------------------------------------------------------


def _dicom_header(path: Path):
    """The DICOM header of ``path`` without its pixels, or None if it is not a DICOM file."""
    try:
        with open(path, "rb") as stream:
            if stream.read(132)[128:] != b"DICM":
                return None
    except OSError:
        return None
    import pydicom

    try:
        return pydicom.dcmread(path, stop_before_pixels=True)
    except (pydicom.errors.InvalidDicomError, OSError, ValueError):
        return None


def _last_line(err: Exception) -> str:
    lines = str(err).strip().splitlines()
    return lines[-1] if lines else type(err).__name__
