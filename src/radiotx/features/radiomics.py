"""The one adapter between radiotx and pyradiomics.

pyradiomics keeps global logger state and takes loose keyword settings, so every call goes
through here: the rest of the project sees a patient id, two files and a parameter file.
"""

from __future__ import annotations

import logging

import pandas as pd
import SimpleITK as sitk

from radiotx.errors import InputError
from radiotx.features import qa

# pyradiomics logs every filter at INFO level; a cohort of patients makes that unreadable.
logging.getLogger("radiomics").setLevel(logging.WARNING)


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


def extract(
    image_path,
    mask_path,
    params_path,
    patient_id: str,
    label: int = 1,
    settings: qa.Settings | None = None,
) -> pd.Series:
    """Read, check (see :mod:`radiotx.features.qa`) and extract one patient's features."""
    settings = settings or qa.Settings(label=label)
    image, mask, _ = qa.load(image_path, mask_path, patient_id, settings)
    try:
        return compute(image, mask, params_path, label=1)
    except (ValueError, RuntimeError) as err:
        raise InputError(
            f"pyradiomics failed: {err}",
            patient=patient_id,
            path=mask_path,
            fix="check that the ROI is large enough for the configured filters and settings",
        ) from err
