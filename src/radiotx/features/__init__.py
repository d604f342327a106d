"""Per-patient feature extraction, one module per modality.

Every extractor here works on a single patient and uses no cohort statistics, so it can run
before the data are split without leaking information between patients.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from radiotx.errors import InputError

if TYPE_CHECKING:
    import pandas as pd


def separator(path) -> str:
    """Comma for ``.csv`` / ``.csv.gz`` tables, tab otherwise."""
    return "," if str(path).lower().endswith((".csv", ".csv.gz")) else "\t"


LONG_COLUMNS = ("patient_id", "feature", "value")


def write_row(features: pd.Series | Mapping[str, float], patient_id: str, path) -> None:
    """Write one patient's features (a Series or a mapping, name -> value) as a long parquet
    table: a row per feature (``patient_id``, ``feature``, ``value``), in the features'
    order. Long rather than one wide row because parquet pays per column: a 20,000-gene
    wide row takes about 2 s to write and 1 s to read, the long table a few hundredths.
    Written with pyarrow, not pandas, whose import would double a patient's job."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if hasattr(features, "to_numpy"):  # a Series
        names, values = features.index.astype(str).tolist(), features.to_numpy(dtype="float64")
    else:
        names = [str(name) for name in features]
        values = np.fromiter(features.values(), dtype="float64", count=len(names))
    table = pa.table(
        {
            "patient_id": pa.array([patient_id] * len(names), pa.string()),
            "feature": pa.array(names, pa.string()),
            "value": pa.array(values, pa.float64()),
        }
    )
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def write_none(path) -> None:
    """Write an empty table: the patient has no features of this modality (e.g. the sample
    was excluded by QC). The file still exists, so the workflow knows the job ran."""
    write_row({}, "", path)


def read_rows(paths) -> pd.DataFrame:
    """Stack per-patient feature files into one patient-by-feature table, features in the
    order they first appear (empty tables, of patients without features, add no row)."""
    import pandas as pd

    patients, features, values = [], [], []
    for path in paths:
        long = pd.read_parquet(path)
        if not set(LONG_COLUMNS) <= set(long.columns):
            raise InputError(
                "not a long feature table (patient_id, feature, value): written by an "
                "earlier radiotx as one wide row",
                patient=Path(path).stem,
                path=path,
                fix="extract it again: snakemake --forcerun radiomics rnaseq (or delete "
                "work/features)",
            )
        if len(long):
            patients.append(long["patient_id"].iloc[0])
            features.append(pd.Index(long["feature"].to_numpy()))
            values.append(long["value"].to_numpy())
    if not patients:
        return pd.DataFrame()
    index = pd.Index(patients, name="patient_id")
    if all(names.equals(features[0]) for names in features):  # the usual case: stack
        return pd.DataFrame(np.vstack(values), index=index, columns=features[0])
    rows = [
        pd.DataFrame(row[np.newaxis, :], index=index[[i]], columns=names)
        for i, (names, row) in enumerate(zip(features, values, strict=True))
    ]
    return pd.concat(rows, axis=0, join="outer")
