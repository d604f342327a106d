"""Per-patient feature extraction, one module per modality.

Every extractor here works on a single patient and uses no cohort statistics, so it can run
before the data are split without leaking information between patients.
"""

from pathlib import Path

import pandas as pd


def separator(path) -> str:
    """Comma for ``.csv`` / ``.csv.gz`` tables, tab otherwise."""
    return "," if str(path).lower().endswith((".csv", ".csv.gz")) else "\t"


def write_row(features: pd.Series, patient_id: str, path) -> None:
    """Write one patient's features as a one-row parquet table indexed by patient id."""
    frame = features.to_frame(name=patient_id).T
    frame.index.name = "patient_id"
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path)


def write_none(path) -> None:
    """Write an empty table: the patient has no features of this modality (e.g. the sample
    was excluded by QC). The file still exists, so the workflow knows the job ran."""
    frame = pd.DataFrame(index=pd.Index([], name="patient_id", dtype=str))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path)


def read_rows(paths) -> pd.DataFrame:
    """Stack per-patient parquet rows into one patient-by-feature table (empty tables, of
    patients without features, add no row)."""
    frames = [f for f in (pd.read_parquet(p) for p in paths) if len(f)]
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, axis=0, join="outer")
