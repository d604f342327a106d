"""Per-patient checks of an image and its mask before radiomics extraction.

Every check names the patient, the file and the fix. The same checks produce a QA record
for the cohort table, with the provenance (file hashes, pyradiomics version, settings hash)
that lets a collaborator tell whether two runs saw the same inputs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import SimpleITK as sitk

from radiotx import imaging
from radiotx.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

LABEL_IMAGE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")


@dataclass(frozen=True)
class Settings:
    """QA settings (config section radiomics.qa, plus the mask label / ROI name)."""

    label: int = 1
    roi: str | None = None  # ROI name pattern for DICOM RTSTRUCT / SEG masks
    min_voxels: int = 10
    resample_mask: bool = False
    tolerance: float = 1e-3  # mm for spacing/origin, unitless for direction cosines

    @classmethod
    def from_config(cls, radiomics: dict) -> Settings:
        """From the config's radiomics section."""
        return cls(label=radiomics["label"], roi=radiomics["roi"] or None, **radiomics["qa"])


def is_label_image(path) -> bool:
    name = str(path).lower()
    return not Path(path).is_dir() and name.endswith(LABEL_IMAGE_SUFFIXES)


def geometry_differences(image: sitk.Image, mask: sitk.Image, tolerance: float) -> list[str]:
    """Which of size, spacing, origin and direction differ between the two grids."""
    pairs = {
        "size": (image.GetSize(), mask.GetSize()),
        "spacing": (image.GetSpacing(), mask.GetSpacing()),
        "origin": (image.GetOrigin(), mask.GetOrigin()),
        "direction": (image.GetDirection(), mask.GetDirection()),
    }
    return [
        f"mask {name} {_grid_values(b)} vs image {name} {_grid_values(a)}"
        for name, (a, b) in pairs.items()
        if len(a) != len(b) or not np.allclose(a, b, atol=tolerance)
    ]


def _grid_values(values) -> str:
    """(96, 96, 40) or (0.7, 0.7, 2.5): plain numbers, at most 4 decimals."""
    return "(" + ", ".join(f"{float(v):g}" for v in np.round(values, 4)) + ")"


def nan_voxels(image: sitk.Image, path) -> int:
    """Count NaN/inf voxels. SimpleITK's NIfTI reader turns NaN into 0, so NIfTI files are
    counted from the file itself."""
    if str(path).lower().endswith((".nii", ".nii.gz")):
        import nibabel as nib

        data = np.asanyarray(nib.load(str(path)).dataobj)
    else:
        data = sitk.GetArrayViewFromImage(image)
    return int(np.size(data) - np.count_nonzero(np.isfinite(data)))


def load(image_path, mask_path, patient_id: str, settings: Settings = Settings()):
    """Read and check one patient's image and ROI mask.

    Returns ``(image, mask, facts)``: the image, a binary mask (1 = ROI) on the image grid,
    and what was measured. Raises ``InputError`` naming patient, file and fix.
    """
    image = imaging.read_image(image_path, patient=patient_id)
    facts = {"geometry": "match"}
    bad = nan_voxels(image, image_path)
    if bad:
        raise InputError(
            f"image has {bad} NaN or infinite voxels",
            patient=patient_id,
            path=image_path,
            fix="re-export the image with every voxel defined",
        )
    if is_label_image(mask_path):
        differences = geometry_differences(
            image, _header(mask_path, patient_id), settings.tolerance
        )
        if differences and not settings.resample_mask:
            raise InputError(
                f"mask grid differs from the image grid: {'; '.join(differences)}",
                patient=patient_id,
                path=mask_path,
                fix="export the mask on the image grid, or set radiomics.qa.resample_mask: "
                "true to resample it (nearest neighbour)",
            )
        facts["geometry"] = "resampled" if differences else "match"
    mask = imaging.read_mask(
        mask_path,
        image,
        label=settings.label,
        roi=settings.roi,
        series_dir=image_path if Path(image_path).is_dir() else None,
        patient=patient_id,
    )
    voxels = int(np.count_nonzero(sitk.GetArrayViewFromImage(mask)))
    if voxels < settings.min_voxels:
        raise InputError(
            f"the ROI has {voxels} voxels, fewer than radiomics.qa.min_voxels "
            f"({settings.min_voxels})",
            patient=patient_id,
            path=mask_path,
            fix="check the segmentation (wrong label or a stray mark?) or lower the threshold",
        )
    roi = sitk.GetArrayViewFromImage(image)[sitk.GetArrayViewFromImage(mask) > 0]
    facts.update(
        roi_voxels=voxels,
        roi_volume_mm3=float(voxels * np.prod(image.GetSpacing())),
        roi_mean=float(roi.mean()),
        roi_min=float(roi.min()),
        roi_max=float(roi.max()),
        image_size=list(image.GetSize()),
        image_spacing=[round(s, 4) for s in image.GetSpacing()],
    )
    return image, mask, facts


def _header(path, patient_id: str) -> sitk.ImageFileReader:
    """The grid of an image file, read without its voxels."""
    if not Path(path).exists():
        raise InputError(
            "mask file does not exist",
            patient=patient_id,
            path=path,
            fix="correct the 'mask' path of this patient in the patient sheet",
        )
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as err:
        raise InputError(
            "mask could not be read as an image",
            patient=patient_id,
            path=path,
            fix="provide the mask as NIfTI/NRRD, DICOM RTSTRUCT or DICOM SEG",
        ) from err
    return reader


def sha256(path) -> str:
    """Hash of a file, or of every file of a folder (a DICOM series) in name order."""
    digest = hashlib.sha256()
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode())
        with open(file, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def settings_hash(params_path, settings: Settings) -> str:
    """Hash of the pyradiomics parameters (as parsed, so formatting does not count) and the
    QA settings."""
    import yaml

    params = yaml.safe_load(Path(params_path).read_text(encoding="utf-8"))
    text = json.dumps({"params": params, "qa": asdict(settings)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def provenance(image_path, mask_path, params_path, settings: Settings) -> dict:
    """What a collaborator needs to tell whether two runs extracted from the same inputs."""
    import radiomics

    return {
        "image_sha256": sha256(image_path) if Path(image_path).exists() else None,
        "mask_sha256": sha256(mask_path) if Path(mask_path).exists() else None,
        "pyradiomics_version": radiomics.__version__,
        "settings_sha256": settings_hash(params_path, settings),
    }


def record(image_path, mask_path, params_path, patient_id: str, settings: Settings) -> dict:
    """The QA record of one patient; never raises for bad input (the error is recorded)."""
    entry = {"patient_id": patient_id, "image": str(image_path), "mask": str(mask_path)}
    try:
        _, _, facts = load(image_path, mask_path, patient_id, settings)
        entry.update(status="ok", problem="", fix="", **facts)
    except InputError as err:
        entry.update(status="error", problem=err.problem, fix=err.fix, file=err.path)
    entry.update(provenance(image_path, mask_path, params_path, settings))
    return entry


def raise_if_failed(entry: dict) -> None:
    """Turn a failed QA record back into the error it recorded."""
    if entry["status"] != "ok":
        raise InputError(
            entry["problem"], patient=entry["patient_id"], path=entry.get("file"), fix=entry["fix"]
        )


def table(paths) -> pd.DataFrame:
    """The cohort QA table from per-patient QA records (JSON files)."""
    import pandas as pd

    rows = []
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            entry = json.load(handle)
        rows.append({k: json.dumps(v) if isinstance(v, list) else v for k, v in entry.items()})
    # no patient (a modality that no pipeline uses): the header alone, readable as a table
    return pd.DataFrame(rows, columns=None if rows else ["patient_id", "status", "problem", "fix"])
