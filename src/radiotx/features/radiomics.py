"""The one adapter between radiotx and pyradiomics.

pyradiomics keeps global logger state and takes loose keyword settings, so every call goes
through here: the rest of the project sees a patient id, two files and a parameter file.
"""

from __future__ import annotations

import difflib
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

import SimpleITK as sitk

from radiotx.errors import InputError
from radiotx.features import qa

if TYPE_CHECKING:
    import pandas as pd

# pyradiomics logs every filter at INFO level; a cohort of patients makes that unreadable.
logging.getLogger("radiomics").setLevel(logging.WARNING)


def compute(image: sitk.Image, mask: sitk.Image, params, label: int = 1) -> pd.Series:
    """pyradiomics features of the ROI ``mask == label``.

    ``params`` is a pyradiomics parameter file or the same content as a dict. Returns the
    features with pyradiomics' stable names (``original_glcm_Contrast``); the
    ``diagnostics_*`` entries are not computed (``additionalInfo`` off, whatever the file
    says): they describe the run, not the tumour, and their image and mask hashes cost a
    large CT a second. Raises ``ValueError``/``RuntimeError`` from pyradiomics unchanged.
    """
    import pandas as pd

    return pd.Series(features(image, mask, params, label), dtype="float64")


def features(image: sitk.Image, mask: sitk.Image, params, label: int = 1) -> dict[str, float]:
    """:func:`compute` as a dict (no pandas: a patient's job stays light)."""
    from radiomics import featureextractor

    source = dict(params) if isinstance(params, dict) else str(params)
    extractor = featureextractor.RadiomicsFeatureExtractor(source)
    extractor.settings["additionalInfo"] = False
    result = extractor.execute(image, mask, label=label)
    return {k: float(v) for k, v in result.items() if not k.startswith("diagnostics_")}


def check_params(path) -> None:
    """Raise InputError, naming the file, the setting and the fix, when pyradiomics would
    reject the parameter file ``path`` (unreadable YAML, an unknown setting, a wrong value).
    The workflow checks it before any job: otherwise every patient's extraction fails, after
    Snakemake has deleted the features made with the previous file."""
    import radiomics
    from radiomics import featureextractor

    quiet = logging.getLogger("pykwalify")
    level, quiet.level = quiet.level, logging.CRITICAL  # it logs what it raises
    try:
        featureextractor.RadiomicsFeatureExtractor(str(path))
    except Exception as err:  # pykwalify's SchemaError, a YAML parser error, a ValueError
        schema = Path(radiomics.__file__).parent / "schemas" / "paramSchema.yaml"
        problem = _schema_problem(str(err), schema)
        if "yaml" in type(err).__module__.lower():  # PyYAML's or ruamel's parser
            problem = f"it is not valid YAML: {problem}"
        raise InputError(
            f"pyradiomics rejects this parameter file: {problem}",
            path=path,
            fix="correct it (settings: https://pyradiomics.readthedocs.io/en/latest/"
            "customization.html), or name another file in radiomics.params",
        ) from err
    finally:
        quiet.level = level


def _schema_problem(message: str, schema_path: Path) -> str:
    """pykwalify's message reduced to its findings, each unknown key with the nearest
    valid one."""
    import yaml

    unknown = re.findall(r"Key '([^']+)' was not defined\. Path: '/([^']*)'", message)
    if not unknown:
        return " ".join(message.split())
    mapping = yaml.safe_load(schema_path.read_text(encoding="utf-8"))["mapping"]
    found = []
    for key, where in unknown:
        valid = list((mapping.get(where) or {}).get("mapping") or {})
        near = difflib.get_close_matches(key, valid, n=1)
        hint = f" (did you mean '{near[0]}'?)" if near else ""
        found.append(f"unknown key '{key}' under '{where}'{hint}")
    return "; ".join(found)


def extract(*args, **kwargs) -> pd.Series:
    """:func:`extract_values` as a Series."""
    import pandas as pd

    return pd.Series(extract_values(*args, **kwargs), dtype="float64")


def extract_values(
    image_path,
    mask_path,
    params_path,
    patient_id: str,
    label: int = 1,
    settings: qa.Settings | None = None,
) -> dict[str, float]:
    """Read, check (see :mod:`radiotx.features.qa`) and extract one patient's features, as a
    dict (no pandas: a patient's job stays light)."""
    settings = settings or qa.Settings(label=label)
    image, mask, _ = qa.load(image_path, mask_path, patient_id, settings)
    try:
        return features(image, mask, params_path, label=1)
    except (ValueError, RuntimeError) as err:
        raise InputError(
            f"pyradiomics failed: {err}",
            patient=patient_id,
            path=mask_path,
            fix="check that the ROI is large enough for the configured filters and settings",
        ) from err
