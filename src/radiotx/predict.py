"""Predictions for new patients from a trained model: the same per-patient extraction as
the workflow (image and mask checks, pyradiomics, RNA-seq reading and normalisation,
clinical encoding) with the training study's settings, read from its manifest, then the
final model's fitted preprocessing and recalibrated probabilities.

One patient's bad input is reported on that patient's row; the others are still scored.
"""

from __future__ import annotations

import logging
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

from radiotx import cohort, manifest, models
from radiotx.errors import InputError
from radiotx.features import qa, radiomics, rnaseq

log = logging.getLogger(__name__)


def _resolve(path, base: Path) -> str:
    path = Path(path)
    return str(path if path.is_absolute() else base / path)


def extract(
    sheet: pd.DataFrame, config: dict, base: Path, modalities, clinical=None, tables=None
) -> tuple[dict[str, pd.DataFrame], dict[str, list[str]]]:
    """Each modality's features of the sheet's patients (``base``: the training study's
    folder, against which the config's relative paths are read) and each patient's
    problems ("modality: problem. Fix: ..."), for the modalities the model uses."""
    frames: dict[str, pd.DataFrame] = {}
    problems: dict[str, list[str]] = {p: [] for p in sheet.index}

    def each_patient(modality, column, read):
        rows = {}
        for patient in cohort.patients_with(sheet, column):
            try:
                rows[patient] = read(patient)
            except InputError as err:
                problems[patient].append(f"{modality}: {err}")
        return pd.DataFrame.from_dict(rows, orient="index")

    if "radiomics" in modalities:
        params, settings = (
            _resolve(config["radiomics"]["params"], base),
            qa.Settings.from_config(config["radiomics"]),
        )
        frames["radiomics"] = each_patient(
            "radiomics", "mask", lambda p: radiomics.extract(
                sheet.at[p, "image"], sheet.at[p, "mask"], params, p, settings=settings
            ),
        )  # fmt: skip
    if "rnaseq" in modalities:
        options = config["rnaseq"]
        frames["rnaseq"] = each_patient(
            "rnaseq", "rnaseq", lambda p: rnaseq.extract(
                sheet.at[p, "rnaseq"], p, options["target_sum"], strand=options["strand"],
                values=options["values"], unit=options["unit"],
            ),
        )  # fmt: skip
    if "clinical" in modalities and clinical is not None:
        frames["clinical"] = clinical.reindex(sheet.index)
    for name, table in (tables or {}).items():
        if name in modalities:
            frames[name] = table.reindex(sheet.index)
    return frames, problems


def design(frames: dict[str, pd.DataFrame], columns, config: dict, patients) -> pd.DataFrame:
    """The design matrix of the model's ``columns`` (``modality:feature``). Clinical
    categories become the training cohort's indicators (a level the training cohort never
    had is all zeros); a feature a patient lacks is NaN, which the model imputes as it did
    in training. One row per patient of ``patients``."""
    index = pd.Index(patients, name="patient_id")
    frames = {name: frame.reindex(index) for name, frame in frames.items()}
    categorical = set(config["clinical"]["categorical"])
    missing = pd.Series(np.nan, index=index)
    out = {}
    for column in columns:
        modality, feature = column.split(models.SEPARATOR, 1)
        frame = frames.get(modality)
        variable, _, level = feature.partition("=")
        if frame is None or frame.empty:
            out[column] = missing
        elif modality == "clinical" and level and variable in categorical:
            if variable in frame:
                values = frame[variable].astype("string")
                out[column] = (values == level).astype(float).where(values.notna())
            else:
                out[column] = missing
        elif feature in frame:
            out[column] = pd.to_numeric(frame[feature], errors="coerce")
        else:
            out[column] = missing
    return pd.DataFrame(out, index=index, columns=list(columns))


def predict(
    model_path, sheet_path, *, clinical_path=None, table_paths=None, manifest_path=None
) -> pd.DataFrame:
    """Calibrated probabilities (or a risk score for a survival model) of every patient of
    the sheet, with the modalities each had and any problem. The training settings come
    from the study's manifest, by default ``<results>/manifest.json`` above the model."""
    model_path = Path(model_path)
    if manifest_path is None:
        results = next((p for p in model_path.parents if p.name == "results"), None)
        manifest_path = results / "manifest.json" if results else None
    if manifest_path is None or not Path(manifest_path).is_file():
        raise InputError(
            "the training study's manifest is not found",
            path=manifest_path or model_path,
            fix="give --manifest results/manifest.json of the study that trained the model",
        )
    config = manifest.read(manifest_path)["config"]
    base = Path(manifest_path).resolve().parents[1]  # the study folder above results/
    model = joblib.load(model_path)
    modalities = model.meta["modalities"]
    sheet = cohort.read_sheet(sheet_path)
    clinical = None
    if clinical_path is not None:
        spec = config["clinical"]
        table = cohort.read_clinical(clinical_path, spec["id_column"])
        clinical = table[[c for c in [*spec["numeric"], *spec["categorical"]] if c in table]]
    tables = {
        name: cohort.read_table(path, config["tables"][name]["id_column"])
        for name, path in (table_paths or {}).items()
    }
    frames, problems = extract(sheet, config, base, modalities, clinical, tables)
    X = design(frames, model.feature_names_in_, config, sheet.index)
    blocks = {m: [c for c in X.columns if c.startswith(m + models.SEPARATOR)] for m in modalities}
    has = pd.DataFrame({m: X[cols].notna().any(axis=1) for m, cols in blocks.items()})
    scorable = has.any(axis=1) if len(modalities) > 1 else has.all(axis=1)
    out = pd.DataFrame(index=X.index)
    out.index.name = "patient_id"
    out["modalities"] = has.apply(lambda r: "+".join(m for m in modalities if r[m]), axis=1)
    if model.survival:
        out["risk"] = np.nan
        out.loc[scorable, "risk"] = model.scores(X.loc[scorable])
    else:
        classes = model.meta.get("classes") or {"0": "negative", "1": "positive"}
        names = [f"p_{name}" for name in classes.values()]
        for name in names:
            out[name] = np.nan
        if scorable.any():
            out.loc[scorable, names] = model.predict_proba(X.loc[scorable])
        out["predicted"] = out[names].idxmax(axis=1, skipna=True).str.removeprefix("p_")
        out.loc[~scorable, "predicted"] = ""
    for patient in out.index[~scorable]:
        problems[patient].append(f"no {' or '.join(modalities)} features: not scored")
    out["problem"] = [" | ".join(problems[p]) for p in out.index]
    return out.reset_index()
