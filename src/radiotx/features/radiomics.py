"""The one adapter between radiotx and pyradiomics.

pyradiomics keeps global logger state and takes loose keyword settings, so every call goes
through here: the rest of the project sees a patient id, two files and a parameter file.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from radiotx.errors import InputError

# pyradiomics logs every filter at INFO level; a cohort of patients makes that unreadable.
logging.getLogger("radiomics").setLevel(logging.WARNING)

GEOMETRY_TOLERANCE = 1e-3  # mm, and unitless for direction cosines


def read_image(path, patient_id: str, what: str) -> sitk.Image:
    """Read a NIfTI/NRRD/other ITK-readable volume, or explain which file could not be read."""
    path = Path(path)
    if not path.exists():
        raise InputError(
            f"{what} file does not exist",
            patient=patient_id,
            path=path,
            fix=f"correct the '{what}' path of this patient in the patient sheet",
        )
    try:
        return sitk.ReadImage(str(path))
    except RuntimeError as err:
        raise InputError(
            f"{what} could not be read as an image ({str(err).strip().splitlines()[-1]})",
            patient=patient_id,
            path=path,
            fix="provide a NIfTI (.nii/.nii.gz) or NRRD file",
        ) from err


def check_pair(image: sitk.Image, mask: sitk.Image, patient_id: str, mask_path, label: int):
    """Fail early, with the fix, on the mistakes pyradiomics reports cryptically."""
    checks = {
        "size": (image.GetSize(), mask.GetSize()),
        "spacing": (image.GetSpacing(), mask.GetSpacing()),
        "origin": (image.GetOrigin(), mask.GetOrigin()),
        "direction": (image.GetDirection(), mask.GetDirection()),
    }
    for name, (a, b) in checks.items():
        if len(a) != len(b) or not np.allclose(a, b, atol=GEOMETRY_TOLERANCE):
            raise InputError(
                f"mask {name} {tuple(np.round(b, 4))} differs from image {name} "
                f"{tuple(np.round(a, 4))}",
                patient=patient_id,
                path=mask_path,
                fix="export the mask on the image grid (same size, spacing, origin, direction)",
            )
    voxels = sitk.GetArrayViewFromImage(mask)
    if not np.any(voxels == label):
        present = sorted(int(v) for v in np.unique(voxels) if v != 0)
        problem = (
            "mask is empty"
            if not present
            else f"label {label} is absent from the mask (labels present: {present})"
        )
        raise InputError(
            problem,
            patient=patient_id,
            path=mask_path,
            fix="check the segmentation, or set radiomics.label in config/config.yaml",
        )


def compute(image: sitk.Image, mask: sitk.Image, params, label: int = 1) -> pd.Series:
    """pyradiomics features of the ROI ``mask == label``.

    ``params`` is a pyradiomics parameter file or the same content as a dict. Returns the
    features with pyradiomics' stable names (``original_glcm_Contrast``); the
    ``diagnostics_*`` entries are dropped because they describe the run, not the tumour.
    Raises ``ValueError``/``RuntimeError`` from pyradiomics unchanged.
    """
    from radiomics import featureextractor

    source = dict(params) if isinstance(params, dict) else str(params)
    extractor = featureextractor.RadiomicsFeatureExtractor(source)
    result = extractor.execute(image, mask, label=label)
    features = {k: float(v) for k, v in result.items() if not k.startswith("diagnostics_")}
    return pd.Series(features, dtype="float64")


def extract(image_path, mask_path, params_path, patient_id: str, label: int = 1) -> pd.Series:
    """Read, check and extract one patient's features (see :func:`compute`)."""
    image = read_image(image_path, patient_id, "image")
    mask = read_image(mask_path, patient_id, "mask")
    check_pair(image, mask, patient_id, mask_path, label)
    if not np.all(np.isfinite(sitk.GetArrayViewFromImage(image))):
        raise InputError(
            "image contains NaN or infinite intensities",
            patient=patient_id,
            path=image_path,
            fix="re-export the image without missing voxels",
        )
    try:
        return compute(image, mask, params_path, label=label)
    except (ValueError, RuntimeError) as err:
        raise InputError(
            f"pyradiomics failed: {err}",
            patient=patient_id,
            path=mask_path,
            fix="check that the ROI is large enough for the configured filters and settings",
        ) from err
