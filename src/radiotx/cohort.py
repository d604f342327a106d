"""The cohort: patient sheet, clinical table, endpoints and the multi-modal container.

All modalities meet here in one patient-keyed MuData object (``results/cohort.h5mu``): one
AnnData per modality with the patients that have it, a shared patient index, the endpoint
labels in ``obs`` and an explicit availability mask (``obs['has_<modality>']``).
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from radiotx.errors import InputError
from radiotx.features import separator

if TYPE_CHECKING:
    import anndata as ad
    import mudata as md

SHEET_COLUMNS = ("patient_id", "image", "mask", "rnaseq")
PATIENT_ID = r"[A-Za-z0-9][A-Za-z0-9._-]*"  # as workflow/schemas/patients.schema.yaml
# Cells meaning "missing" in clinical tables, compared case-insensitively.
MISSING_STRINGS = (
    "", "na", "n/a", "nan", "none", "not collected", "not recorded in database", "unknown",
)  # fmt: skip


@functools.cache
def _mudata():
    """mudata, imported when a cohort is built or read: the workflow's start reads the
    sheet and the clinical table through this module and needs neither."""
    import mudata

    mudata.set_options(pull_on_update=False)
    return mudata


def read_sheet(path) -> pd.DataFrame:
    """Read the patient sheet (TSV, one row per patient); empty cells mean 'not available'.
    Rows are named by their line in the file (the header is line 1)."""
    if not Path(path).is_file():
        raise InputError(
            "the patient sheet does not exist",
            path=path,
            fix="set `patients` in the config to the sheet's path (relative to the study "
            "directory), or leave it empty to take the patients of the clinical table",
        )
    sheet = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    if "patient_id" not in sheet.columns:
        raise InputError(
            "the patient sheet has no 'patient_id' column",
            path=path,
            fix=f"use a TSV header with {', '.join(SHEET_COLUMNS)}",
        )
    unknown = [c for c in sheet.columns if c not in SHEET_COLUMNS]
    if unknown:
        raise InputError(
            f"the patient sheet has column(s) {', '.join(map(repr, unknown))} that radiotx does "
            f"not read",
            path=path,
            fix=f"keep only {', '.join(SHEET_COLUMNS)} (other patient data belong in the "
            "clinical table), or correct the column's name",
        )
    sheet["patient_id"] = sheet["patient_id"].str.strip()
    empty = sheet.index[sheet["patient_id"] == ""]
    if len(empty):
        raise InputError(
            f"line {empty[0] + 2} has an empty patient_id",
            path=path,
            fix="give every row a patient id",
        )
    bad = sheet.index[~sheet["patient_id"].str.fullmatch(PATIENT_ID)]
    if len(bad):
        raise InputError(
            f"patient id {sheet['patient_id'].iloc[bad[0]]!r} on line {bad[0] + 2} has "
            "characters other than letters, digits, '.', '_' and '-' (ids name files)",
            patient=sheet["patient_id"].iloc[bad[0]],
            path=path,
            fix="rename the patient in the sheet and in the clinical table",
        )
    dup = sheet["patient_id"][sheet["patient_id"].duplicated()]
    if len(dup):
        raise InputError(
            f"patient {dup.iloc[0]} appears more than once",
            path=path,
            fix="keep one row per patient (lesion-level rows are not supported here)",
        )
    for column in SHEET_COLUMNS[1:]:
        if column not in sheet.columns:
            sheet[column] = ""
    return sheet.set_index("patient_id", drop=False)


def sheet_of(patients) -> pd.DataFrame:
    """A patient sheet with no per-patient files, for studies whose data are tables only."""
    ids = [str(p).strip() for p in patients]
    sheet = pd.DataFrame({"patient_id": ids, **{c: "" for c in SHEET_COLUMNS[1:]}})
    return sheet.set_index("patient_id", drop=False)


def patients_with(sheet: pd.DataFrame, *columns: str) -> list[str]:
    """Patients whose sheet has a non-empty value in every one of ``columns``."""
    present = np.ones(len(sheet), dtype=bool)
    for column in columns:
        present &= sheet[column].str.strip().to_numpy() != ""
    return sheet.index[present].tolist()


def check_modalities(used, patients: dict[str, list[str]], sheet_path) -> None:
    """Raise InputError when a pipeline models a per-patient modality that no patient has
    (an empty or missing sheet column): every model job of it would fail."""
    columns = {"radiomics": "image and mask", "deep": "image and mask", "rnaseq": "rnaseq"}
    for modality in sorted(set(used) & set(patients)):
        if not patients[modality]:
            raise InputError(
                f"a pipeline models {modality}, but no patient of the sheet has its "
                f"{columns[modality]} column(s) filled",
                path=sheet_path,
                fix=f"fill the {columns[modality]} column(s) of the sheet, or remove "
                f"{modality} from the pipelines",
            )


def read_clinical(path, id_column: str = "patient_id") -> pd.DataFrame:
    """Read the clinical / outcome table (CSV or TSV), indexed by patient id."""
    path = Path(path)
    if not path.is_file():
        raise InputError(
            "the clinical table does not exist",
            path=path,
            fix="set clinical.table in config/config.yaml to the table's path (relative to "
            "the study directory)",
        )
    sep = "," if path.suffix.lower() == ".csv" else "\t"
    # ids such as 007 must keep their leading zeros
    table = pd.read_csv(path, sep=sep, dtype={id_column: str})
    other, mark = ("tab", "\t") if sep == "," else ("comma", ",")
    if id_column not in table.columns and len(table.columns) == 1 and mark in table.columns[0]:
        raise InputError(
            f"the table reads as one column: it looks {other}-separated",
            path=path,
            fix=f"name a {other}-separated table .{'tsv' if sep == ',' else 'csv'}, or save "
            f"it {'comma' if sep == ',' else 'tab'}-separated",
        )
    table = _keyed(
        table,
        id_column,
        path,
        id_fix="set clinical.id_column in config/config.yaml to the patient id column",
        duplicate_fix="keep one row per patient in the clinical table",
    )
    for column in table.columns:
        table[column] = _missing_to_nan(table[column])
    return table


def check_clinical(spec: dict, endpoints: dict | None = None) -> None:
    """Raise InputError for what the workflow's jobs would meet later in the clinical table
    of the config's ``clinical`` section: a wrong separator or id column, a repeated
    patient, a listed column that is absent, a non-numeric or infinite numeric value, and
    for each of the config's ``endpoints`` an absent column, a single class, no event."""
    path = spec["table"]
    table = read_clinical(path, spec["id_column"])
    encode_clinical(table, spec["numeric"], spec["categorical"], path)
    for name, endpoint in (endpoints or {}).items():
        endpoint_columns(table, name, endpoint, path)


def check_table(name: str, spec: dict) -> None:
    """Raise InputError for a feature table (the config's ``tables.<name>``) that no model
    could use: unreadable, not numeric, infinite, or without a column that varies."""
    table = read_table(spec["path"], spec.get("id_column", "patient_id"))
    if not (table.nunique(dropna=True) > 1).any():
        raise InputError(
            f"no column of feature table '{name}' varies between patients "
            f"({table.shape[1]} columns)",
            path=spec["path"],
            fix=f"check the export of the table, or remove '{name}' from the pipelines",
        )


def _keyed(table, id_column: str, path, *, id_fix: str, duplicate_fix: str) -> pd.DataFrame:
    """``table`` indexed by its patient id column (stripped text), which must exist and
    hold each patient once."""
    if id_column not in table.columns:
        raise InputError(
            f"no '{id_column}' column (columns: {list(table.columns)[:8]} ...)",
            path=path,
            fix=id_fix,
        )
    table[id_column] = table[id_column].astype(str).str.strip()
    dup = table[id_column][table[id_column].duplicated()]
    if len(dup):
        raise InputError(
            f"patient {dup.iloc[0]} appears more than once", path=path, fix=duplicate_fix
        )
    return table.set_index(id_column)


def read_table(path, id_column: str = "patient_id") -> pd.DataFrame:
    """A precomputed feature table (CSV, TSV or parquet; one row per patient, keyed by
    ``id_column``) as numeric features indexed by patient id.

    Missing markers become NaN (imputed later, inside the folds); a column with any other
    text is an error naming the column and a patient, since a feature table must be numbers.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(
            "feature table does not exist", path=path, fix="correct tables.<name>.path"
        )
    if path.suffix.lower() == ".parquet":
        table = pd.read_parquet(path)
        if id_column not in table.columns and table.index.name == id_column:
            table = table.reset_index()
    else:
        table = pd.read_csv(path, sep=separator(path), dtype={id_column: str})
    table = _keyed(
        table,
        id_column,
        path,
        id_fix="set tables.<name>.id_column to the patient id column",
        duplicate_fix="one row per patient",
    )
    for column in table.columns:
        values = _missing_to_nan(table[column])
        numbers = pd.to_numeric(values, errors="coerce")
        bad = values.index[numbers.isna() & values.notna()]
        if len(bad):
            raise InputError(
                f"column '{column}' has a non-numeric value {values[bad[0]]!r}",
                patient=bad[0],
                path=path,
                fix="give feature tables numbers only (encode categories, or use the "
                "clinical table's categorical columns)",
            )
        _check_finite(numbers, values, column, path)
        table[column] = numbers.astype("float64")
    table.index.name = None
    return table


def _check_finite(numbers: pd.Series, given: pd.Series, column: str, path) -> None:
    """An infinite value (``inf`` in a file) is named with its patient: scikit-learn would
    reject it inside every model job."""
    infinite = numbers.index[np.isinf(numbers.to_numpy(dtype="float64"))]
    if len(infinite):
        raise InputError(
            f"column '{column}' has an infinite value ({given[infinite[0]]})",
            patient=infinite[0],
            path=path,
            fix="give the measured value, or leave the cell empty (missing values are "
            "imputed inside the training folds)",
        )


def _missing_to_nan(values: pd.Series) -> pd.Series:
    """Missing markers become NaN; a text column left with only numbers becomes numeric."""
    if values.dtype != object:
        return values
    text = values.astype("string").str.strip()
    values = values.where(~text.str.lower().isin(MISSING_STRINGS).fillna(False))
    numbers = pd.to_numeric(values, errors="coerce")
    return numbers if numbers.notna().sum() == values.notna().sum() else values


def for_patients(
    table: pd.DataFrame,
    sheet: pd.DataFrame,
    path=None,
    consequence: str = "they have no clinical features and no endpoint",
) -> pd.DataFrame:
    """The rows of the patients in the sheet; the study is the sheet's patients."""
    absent = sheet.index.difference(table.index)
    if len(absent):
        logging.getLogger(__name__).warning(
            "%d patients of the sheet have no row in %s (first: %s); %s",
            len(absent), path, ", ".join(absent[:5]), consequence,
        )  # fmt: skip
    return table.loc[sheet.index[sheet.index.isin(table.index)]]


def encode_clinical(
    table: pd.DataFrame, numeric: list[str], categorical: list[str], path=None
) -> pd.DataFrame:
    """Numeric columns as floats and categorical columns as one indicator per level.

    The levels are the values present in the table: a vocabulary, not a statistic, so the
    encoding of one patient never depends on another patient's values or on any label.
    Missing stays missing (NaN in every indicator) and is imputed inside the training folds.
    """
    missing = [c for c in [*numeric, *categorical] if c not in table.columns]
    if missing:
        raise InputError(
            f"clinical columns {missing} are not in the table",
            path=path,
            fix="correct clinical.numeric / clinical.categorical in config/config.yaml",
        )
    parts = []
    for column in numeric:
        values = pd.to_numeric(table[column], errors="coerce")
        bad = table.index[values.isna() & table[column].notna()]
        if len(bad):
            raise InputError(
                f"column '{column}' has a non-numeric value {table.at[bad[0], column]!r}",
                patient=bad[0],
                path=path,
                fix=f"fix the value, or list '{column}' under clinical.categorical",
            )
        _check_finite(values, table[column], column, path)
        parts.append(values.rename(column).astype("float64"))
    for column in categorical:
        values = table[column].astype("string")
        for level in sorted(values.dropna().unique()):
            indicator = (values == level).astype("float64").where(values.notna())
            parts.append(indicator.rename(f"{column}={level}"))
    return pd.concat(parts, axis=1) if parts else pd.DataFrame(index=table.index)


def endpoint_labels(table: pd.DataFrame, column: str, positive, path=None, missing=()) -> pd.Series:
    """Binary labels (1 = positive class, 0 = other, NaN = missing) from an outcome column.

    Cells in ``missing`` (config ``endpoints.<name>.missing``, compared as stripped text)
    are missing too, besides the usual markers (``Not collected``, ``Unknown``, ...).
    """
    if column not in table.columns:
        raise InputError(
            f"endpoint column '{column}' is not in the clinical table",
            path=path,
            fix="correct endpoints.<name>.column in config/config.yaml",
        )
    values = table[column]
    if len(missing):
        text = values.astype("string").str.strip()
        values = values.where(~text.isin([str(m).strip() for m in missing]).fillna(False))
    numbers = pd.to_numeric(values, errors="coerce")
    if _is_number(positive) and numbers.notna().sum() == values.notna().sum():
        # a 0/1 column with a gap is read as float: compare 1.0 with 1, not "1.0" with "1"
        hits = numbers == float(positive)
    else:
        hits = values.astype("string").str.strip() == str(positive)
    labels = hits.astype("float64").where(values.notna())
    if labels.nunique(dropna=True) < 2:
        raise InputError(
            f"endpoint column '{column}' does not contain both the positive class "
            f"{positive!r} and another value",
            path=path,
            fix="check endpoints.<name>.positive in config/config.yaml",
        )
    return labels


def endpoint_columns(table: pd.DataFrame, name: str, spec: dict, path=None) -> dict:
    """The cohort obs columns of endpoint ``name`` (config ``endpoints.<name>``): its
    labels (1/0; for a survival endpoint the event) and, for survival, the follow-up time
    (:func:`radiotx.followup.time_column`)."""
    try:
        return _endpoint_columns(table, name, spec, path)
    except InputError as err:  # name the endpoint, not the placeholder
        raise InputError(
            f"endpoint '{name}': {err.problem}",
            patient=err.patient,
            path=err.path,
            fix=err.fix.replace("endpoints.<name>", f"endpoints.{name}"),
        ) from err


def _endpoint_columns(table: pd.DataFrame, name: str, spec: dict, path) -> dict:
    from radiotx import followup

    if "event" in spec:
        frame = followup.endpoint_labels(table, spec, path)
        if not frame["event"].fillna(False).any():
            raise InputError(
                f"no patient has the event (column '{spec['event']}' = {spec['positive']!r})",
                path=path,
                fix="check endpoints.<name>.event and positive in config/config.yaml",
            )
        return {
            name: frame["event"].astype("float64"),
            followup.time_column(name): frame["time"].astype("float64"),
        }
    if spec.get("positive") is None:  # multiclass: codes, and the class of each patient
        codes, classes = class_labels(table, spec["column"], path, spec.get("missing", ()))
        return {name: codes, f"{name}{CLASS_SUFFIX}": classes}
    missing = spec.get("missing", ())
    return {name: endpoint_labels(table, spec["column"], spec["positive"], path, missing)}


CLASS_SUFFIX = "__class"  # obs column with the class names of a multiclass endpoint


def class_labels(table: pd.DataFrame, column: str, path=None, missing=()):
    """Codes 0..K-1 (in sorted order of the class names; NaN = missing) and the class
    name of each patient, for a multiclass endpoint."""
    if column not in table.columns:
        raise InputError(
            f"endpoint column '{column}' is not in the clinical table",
            path=path,
            fix="correct endpoints.<name>.column in config/config.yaml",
        )
    text = table[column].astype("string").str.strip()
    unknown = text.str.lower().isin(MISSING_STRINGS) | text.isin([str(m).strip() for m in missing])
    text = text.where(~unknown.fillna(False))
    classes = sorted(text.dropna().unique())
    if len(classes) < 2:
        raise InputError(
            f"endpoint column '{column}' has fewer than two classes",
            path=path,
            fix="check endpoints.<name>.column in config/config.yaml",
        )
    codes = text.map({name: float(k) for k, name in enumerate(classes)}).astype("float64")
    return codes, text.astype(object)


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def modality(features: pd.DataFrame, name: str) -> ad.AnnData:
    """One modality as AnnData (patients x features)."""
    import anndata

    features = features.sort_index()
    return anndata.AnnData(
        X=features.to_numpy(dtype="float64"),
        # one index name for every modality: MuData cannot join differently named ones
        obs=pd.DataFrame(index=features.index.astype(str).rename(None)),
        var=pd.DataFrame({"modality": name}, index=features.columns.astype(str)),
    )


def batch_labels(table: pd.DataFrame, column: str, path=None) -> pd.Series:
    """Each patient's batch or site (text; missing stays missing) from a clinical column."""
    if column not in table.columns:
        raise InputError(
            f"batch column '{column}' is not in the clinical table",
            path=path,
            fix="correct rnaseq.preprocess.batch in config/config.yaml",
        )
    return table[column].astype("string").str.strip().astype("category")


def build(
    modalities: dict[str, pd.DataFrame],
    labels: dict[str, pd.Series],
    obs: dict[str, pd.Series] | None = None,
) -> md.MuData:
    """Assemble the MuData cohort with availability mask, endpoint labels and any other
    patient attributes (``obs``, e.g. the batch) in ``obs``.

    The cohort is the union of patients that have at least one modality; each modality's
    AnnData holds only the patients that have it.
    """
    mdata = _mudata().MuData({name: modality(table, name) for name, table in modalities.items()})
    patients = sorted(mdata.obs_names)
    mdata = mdata[patients].copy()
    for name in modalities:
        mdata.obs[f"has_{name}"] = mdata.obs_names.isin(mdata.mod[name].obs_names)
    for name, values in labels.items():
        mdata.obs[name] = values.reindex(mdata.obs_names).to_numpy(dtype="float64")
    for name, values in (obs or {}).items():  # other patient attributes, kept as they are
        mdata.obs[name] = values.reindex(mdata.obs_names).to_numpy()
    return mdata


def availability(mdata: md.MuData) -> pd.DataFrame:
    """Patient x modality availability mask (True when the patient has that modality)."""
    flags = [c for c in mdata.obs.columns if c.startswith("has_")]
    table = mdata.obs[flags].astype(bool)
    table.columns = [c.removeprefix("has_") for c in flags]
    return table.rename_axis("patient_id")  # a renamed copy: the index is shared with mdata


def modality_frame(mdata: md.MuData, name: str) -> pd.DataFrame:
    """A modality's features as a patients x features DataFrame."""
    adata = mdata.mod[name]
    return pd.DataFrame(np.asarray(adata.X), index=adata.obs_names, columns=adata.var_names)


def write(mdata: md.MuData, path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    mdata.write(str(path))


def read(path) -> md.MuData:
    return _mudata().read_h5mu(str(path))
