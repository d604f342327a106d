"""Per-sample RNA-seq features with scanpy: library-size normalisation and log1p.

Both steps use only the sample's own counts (no cohort statistics), so they are safe to run
per patient before any split. Anything fitted across samples (HVG choice, scaling, PCA)
belongs inside the training folds.
"""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc

from radiotx.errors import InputError

FORMAT_FIX = "provide a TSV with columns 'gene' and 'count' (one row per gene, raw counts)"


def read_counts(path, patient_id: str) -> pd.Series:
    """Read one sample's raw counts (TSV/CSV with columns gene, count; gzip allowed)."""
    path = Path(path)
    if not path.exists():
        raise InputError(
            "RNA-seq file does not exist",
            patient=patient_id,
            path=path,
            fix="correct the 'rnaseq' path in the patient sheet, or leave it empty",
        )
    sep = "," if ".csv" in path.suffixes else "\t"
    table = pd.read_csv(path, sep=sep)
    if not {"gene", "count"} <= set(table.columns):
        raise InputError(
            f"columns {list(table.columns)} lack 'gene' and 'count'",
            patient=patient_id,
            path=path,
            fix=FORMAT_FIX,
        )
    counts = pd.to_numeric(table["count"], errors="coerce")
    bad = table["gene"][counts.isna() | (counts < 0)]
    if len(bad):
        raise InputError(
            f"{len(bad)} genes have missing or negative counts (first: {bad.iloc[0]})",
            patient=patient_id,
            path=path,
            fix=FORMAT_FIX,
        )
    dup = table["gene"][table["gene"].duplicated()]
    if len(dup):
        raise InputError(
            f"gene {dup.iloc[0]} appears more than once",
            patient=patient_id,
            path=path,
            fix="give each gene one row (sum or drop duplicated identifiers first)",
        )
    if counts.sum() <= 0:
        raise InputError(
            "library is empty (all counts are zero)",
            patient=patient_id,
            path=path,
            fix="check the quantification of this sample",
        )
    return pd.Series(counts.to_numpy(dtype="float64"), index=table["gene"].astype(str))


def normalise(counts: pd.Series, target_sum: float = 1e6) -> pd.Series:
    """Counts per ``target_sum`` (CPM by default), then log1p, with scanpy."""
    adata = ad.AnnData(
        X=counts.to_numpy(dtype="float64", copy=True)[np.newaxis, :],  # scanpy works in place
        var=pd.DataFrame(index=counts.index.astype(str)),
    )
    sc.pp.normalize_total(adata, target_sum=target_sum)
    sc.pp.log1p(adata)
    return pd.Series(np.asarray(adata.X).ravel(), index=adata.var_names, dtype="float64")


def extract(path, patient_id: str, target_sum: float = 1e6) -> pd.Series:
    """Read and normalise one patient's counts: log1p(CPM) per gene."""
    return normalise(read_counts(path, patient_id), target_sum=target_sum)
