"""Per-patient ROI crops for the deep-learning modality.

A crop is a cube of ``size`` voxels of ``spacing`` mm on each side, centred on the ROI's
centroid and aligned with the image axes, so that every patient's crop covers the same
physical extent (tumour size stays visible to the network). The image is resampled
linearly (outside the scan: ``fill``, air by default), windowed to ``window`` and scaled
to [0, 1]; voxels farther than ``context`` mm from the ROI are set to 0, so that the
encoder describes the lesion and its margin rather than the anatomy around it (with the
whole cube, SimCLR's instance discrimination learns mostly the surrounding anatomy, which
tells patients apart best). The mask is resampled by nearest neighbour and kept beside the
image for explanations. Nothing here uses another patient, so crops are made before the split; the
encoders that turn crops into features are fitted inside the folds
(:class:`radiotx.deep.encoder.DeepEncoder`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage


@dataclass(frozen=True)
class CropSettings:
    """Config section ``deep.crop``."""

    size: int = 24  # voxels per side
    spacing: float = 2.0  # mm, isotropic
    window: tuple[float, float] = (-150.0, 250.0)  # intensities mapped to 0 and 1
    fill: float = -1000.0  # intensity outside the scan (air in HU)
    context: float | None = 4.0  # mm of tissue kept around the ROI (None: the whole cube)

    @classmethod
    def from_config(cls, crop: dict) -> CropSettings:
        return cls(
            size=int(crop["size"]),
            spacing=float(crop["spacing"]),
            window=tuple(float(v) for v in crop["window"]),
            fill=float(crop["fill"]),
            context=None if crop["context"] is None else float(crop["context"]),
        )


def crop(image, mask, settings: CropSettings = CropSettings()):
    """The windowed image crop (float32 in [0, 1]) and the mask crop (uint8), both of
    shape (size, size, size) in z, y, x order."""
    import SimpleITK as sitk  # here: the encoders need this module's helpers, not SimpleITK

    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(sitk.Cast(mask > 0, sitk.sitkUInt8))
    centre = np.array(stats.GetCentroid(1))
    direction = np.array(image.GetDirection()).reshape(3, 3)
    half = (settings.size - 1) / 2 * settings.spacing
    origin = centre - direction @ np.full(3, half)
    grid = sitk.Image([settings.size] * 3, sitk.sitkFloat32)
    grid.SetSpacing([settings.spacing] * 3)
    grid.SetDirection(image.GetDirection())
    grid.SetOrigin(origin.tolist())
    pixels = sitk.Resample(
        sitk.Cast(image, sitk.sitkFloat32), grid, sitk.Transform(), sitk.sitkLinear,
        settings.fill,
    )  # fmt: skip
    roi = sitk.Resample(
        sitk.Cast(mask > 0, sitk.sitkUInt8), grid, sitk.Transform(), sitk.sitkNearestNeighbor, 0
    )
    low, high = settings.window
    values = (np.clip(sitk.GetArrayFromImage(pixels), low, high) - low) / (high - low)
    mask_values = sitk.GetArrayFromImage(roi).astype(np.uint8)
    if settings.context is not None:
        steps = int(round(settings.context / settings.spacing))
        near = (
            ndimage.binary_dilation(mask_values > 0, iterations=steps) if steps else mask_values > 0
        )
        values = np.where(near, values, 0.0)
    return values.astype(np.float32), mask_values


def write_crop(path, image: np.ndarray, mask: np.ndarray, settings: CropSettings) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, image=image, mask=mask, spacing=settings.spacing)


def read_crop(path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path) as data:
        return data["image"], data["mask"]


def voxel_columns(size: int) -> list[str]:
    return [f"v{i:06d}" for i in range(size**3)]


def read_crops(paths) -> pd.DataFrame:
    """Patients x voxels (the flattened image crops), indexed by patient id (the file
    name); the modality that the cohort holds and the encoders read."""
    rows = {Path(p).name.removesuffix(".npz"): read_crop(p)[0].ravel() for p in paths}
    if not rows:
        return pd.DataFrame()
    size = side(len(next(iter(rows.values()))))
    return pd.DataFrame.from_dict(rows, orient="index", columns=voxel_columns(size))


def read_masks(paths) -> dict[str, np.ndarray]:
    """Each patient's mask crop, by patient id."""
    return {Path(p).name.removesuffix(".npz"): read_crop(p)[1] for p in paths}


def side(n_voxels: int) -> int:
    """The side of a cube of ``n_voxels`` voxels (a flattened crop)."""
    size = round(n_voxels ** (1 / 3))
    if size**3 != n_voxels:
        raise ValueError(f"{n_voxels} columns are not a cubic crop")
    return size


def unlabelled_crops(sheet: pd.DataFrame, study_patients, settings, qa_settings, path):
    """Crops (N x size**3) of an external sheet's images for SimCLR pretraining. A patient
    of the study among them would put test patients into pretraining: an error."""
    from radiotx.errors import InputError
    from radiotx.features import qa

    shared = sorted(set(sheet.index) & set(study_patients))
    if shared:
        raise InputError(
            f"{len(shared)} patients of the unlabelled set are patients of the study "
            f"(first: {shared[0]}), so pretraining would see test patients",
            path=path,
            fix="remove the study's patients from the deep.unlabelled sheet",
        )
    rows = []
    for patient, entry in sheet.iterrows():
        image, mask, _ = qa.load(entry["image"], entry["mask"], patient, qa_settings)
        rows.append(crop(image, mask, settings)[0].ravel())
    if not rows:
        raise InputError(
            "the unlabelled sheet has no patients", path=path, fix="list images and masks"
        )
    return np.stack(rows)
