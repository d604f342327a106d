"""Per-sample RNA-seq features: reading, gene-id cleaning, QC, normalisation (the numbers
of scanpy's, in numpy: a job per sample cannot afford to import scanpy).

Everything here uses only the sample's own counts (no cohort statistics), so it is safe to
run per patient before any split. Anything fitted across samples (HVG choice, scaling, PCA)
belongs inside the training folds.

Inputs are raw counts (the default) or expression that is already normalised and on a log
scale, declared as such in config (``rnaseq.values: normalised``): it is used as given, with
no CPM or log step. Per-patient files, or one matrix with every patient (:func:`read_matrix`,
split into per-patient files by the workflow).

Supported count files (detected from the content; gzip allowed, by name or by magic bytes):

* ``gene<TAB>count`` table (``.csv``: comma separated), see :func:`read_counts`;
* salmon ``quant.sf`` (``Name Length EffectiveLength TPM NumReads``): counts are ``NumReads``
  (estimated, may be fractional); the TPM column is read by :func:`read_salmon_tpm`;
* featureCounts output (optional ``#`` command line, then
  ``Geneid Chr Start End Strand Length <sample>``): counts are the single sample column;
* STAR ``ReadsPerGene.out.tab`` (no header; first rows ``N_unmapped``, ``N_multimapping``,
  ``N_noFeature``, ``N_ambiguous`` are dropped; columns unstranded / forward / reverse).
"""

from __future__ import annotations

import gzip
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from radiotx.errors import InputError
from radiotx.features import separator

FORMAT_FIX = "provide a TSV with columns 'gene' and 'count' (one row per gene, raw counts)"
EXPRESSION_FIX = (
    "provide a TSV with columns 'gene' and 'expression' (one row per gene, normalised "
    "log-scale values), or set rnaseq.values: counts for raw counts"
)
VALUES = ("counts", "normalised")


def read_counts(path, patient_id: str) -> pd.Series:
    """Read one sample's raw counts (TSV/CSV with columns gene, count; gzip allowed)."""
    path = Path(path)
    return _read_plain(_read_text(path, patient_id), path, patient_id)


def read_expression(path, patient_id: str) -> pd.Series:
    """Read one sample's normalised expression (columns gene, expression; gzip allowed).

    Values may be negative (e.g. z-scores) but must be finite; ids are returned as in the
    file (duplicates included: :func:`clean_gene_ids` collapses them).
    """
    path = Path(path)
    text = _read_text(path, patient_id)
    table = _plain_table(text)
    if not {"gene", "expression"} <= set(table.columns):
        raise InputError(
            f"columns {list(table.columns)} lack 'gene' and 'expression'",
            patient=patient_id,
            path=path,
            fix=EXPRESSION_FIX,
        )
    values = pd.to_numeric(table["expression"], errors="coerce")
    bad = table["gene"][~np.isfinite(values.to_numpy(dtype="float64"))]
    if len(bad):
        raise InputError(
            f"{len(bad)} genes have missing or non-finite expression (first: {bad.iloc[0]})",
            patient=patient_id,
            path=path,
            fix=EXPRESSION_FIX,
        )
    ids = pd.Index(table["gene"].astype(str), name="gene")
    return pd.Series(values.to_numpy(dtype="float64"), index=ids)


def _plain_table(text: str) -> pd.DataFrame:
    """A two-column table, tab or comma separated (as its header line shows)."""
    header = text.splitlines()[0] if text.strip() else ""
    return pd.read_csv(io.StringIO(text), sep="\t" if "\t" in header else ",")


def _read_plain(text: str, path: Path, patient_id: str) -> pd.Series:
    """A 'gene'/'count' table."""
    table = _plain_table(text)
    if not {"gene", "count"} <= set(table.columns):
        raise InputError(
            f"columns {list(table.columns)} lack 'gene' and 'count'",
            patient=patient_id,
            path=path,
            fix=FORMAT_FIX,
        )
    return _validated(table["gene"], table["count"], patient_id, path, FORMAT_FIX)


# ------------------------------------------------------------------------- formats

SALMON_COLUMNS = ["Name", "Length", "EffectiveLength", "TPM", "NumReads"]
FEATURECOUNTS_COLUMNS = ["Geneid", "Chr", "Start", "End", "Strand", "Length"]
STAR_SUMMARY_ROWS = ["N_unmapped", "N_multimapping", "N_noFeature", "N_ambiguous"]
STAR_STRANDS = ("unstranded", "forward", "reverse")
UNKNOWN_FIX = (
    "provide one of: a 'gene'/'count' TSV or CSV, a salmon quant.sf, a featureCounts "
    "output with one sample column, or a STAR ReadsPerGene.out.tab"
)


def _read_text(path: Path, patient_id: str) -> str:
    """The whole file as text, gunzipped when it starts with the gzip magic bytes."""
    if not path.exists():
        raise InputError(
            "RNA-seq file does not exist",
            patient=patient_id,
            path=path,
            fix="correct the 'rnaseq' path in the patient sheet, or leave it empty",
        )
    raw = path.read_bytes()
    try:
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        return raw.decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise InputError(
            f"not a readable text or gzip file ({error})",
            patient=patient_id,
            path=path,
            fix=UNKNOWN_FIX,
        ) from error


def detect_format(text: str) -> str | None:
    """``'plain'``, ``'salmon'``, ``'featurecounts'``, ``'star'`` or None (unknown)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return None
    first = lines[0].split("\t")
    if first[:5] == SALMON_COLUMNS:
        return "salmon"
    data = [line for line in lines if not line.startswith("#")]
    if data and data[0].split("\t")[:6] == FEATURECOUNTS_COLUMNS:
        return "featurecounts"
    if first[0] in STAR_SUMMARY_ROWS and len(first) == 4:
        return "star"
    header = set(re.split(r"[\t,]", lines[0].strip()))
    if {"gene", "count"} <= header:
        return "plain"
    return None


def _validated(ids: pd.Series, values: pd.Series, patient_id: str, path: Path, fix: str):
    """Raw counts as a float Series indexed by gene; rejects bad or empty data. Duplicated
    ids are kept (:func:`clean_gene_ids` sums them)."""
    counts = pd.to_numeric(values, errors="coerce")
    bad = ids[counts.isna() | (counts < 0)]
    if len(bad):
        raise InputError(
            f"{len(bad)} genes have missing or negative counts (first: {bad.iloc[0]})",
            patient=patient_id,
            path=path,
            fix=fix,
        )
    if counts.sum() <= 0:
        raise InputError(
            "library is empty (all counts are zero)",
            patient=patient_id,
            path=path,
            fix="check the quantification of this sample",
        )
    return pd.Series(counts.to_numpy(dtype="float64"), index=pd.Index(ids.astype(str), name="gene"))


def read_sample(path, patient_id: str, *, strand: str = "unstranded") -> pd.Series:
    """Raw counts per gene of one sample, whatever the supported format (see module doc).

    ``strand`` picks the STAR ReadsPerGene column: ``'unstranded'`` (column 2),
    ``'forward'`` (column 3, reads on the gene's strand, htseq-count ``-s yes``) or
    ``'reverse'`` (column 4, ``-s reverse``, e.g. dUTP / TruSeq stranded libraries); it is
    ignored for the other formats. Salmon counts are ``NumReads``; use
    :func:`read_salmon_tpm` for TPM. Gene ids are returned as in the file; pass the result
    to :func:`clean_gene_ids` to strip Ensembl versions.
    """
    if strand not in STAR_STRANDS:
        raise ValueError(f"strand must be one of {STAR_STRANDS}, not {strand!r}")
    path = Path(path)
    text = _read_text(path, patient_id)
    kind = detect_format(text)
    if kind is None:
        first = text.splitlines()[0][:80] if text.strip() else "(empty file)"
        raise InputError(
            f"unknown RNA-seq count format (first line: {first!r})",
            patient=patient_id,
            path=path,
            fix=UNKNOWN_FIX,
        )
    if kind == "plain":
        return _read_plain(text, path, patient_id)
    if kind == "salmon":
        table = pd.read_csv(io.StringIO(text), sep="\t")
        fix = "provide salmon's quant.sf unchanged (column NumReads holds the counts)"
        return _validated(table["Name"], table["NumReads"], patient_id, path, fix)
    if kind == "featurecounts":
        table = pd.read_csv(io.StringIO(text), sep="\t", comment="#")
        samples = list(table.columns[len(FEATURECOUNTS_COLUMNS) :])
        if len(samples) != 1:
            raise InputError(
                f"featureCounts table has {len(samples)} sample columns {samples}, expected 1",
                patient=patient_id,
                path=path,
                fix="run featureCounts per sample, or cut out this patient's column",
            )
        fix = "provide the featureCounts output unchanged (one sample column after Length)"
        return _validated(table["Geneid"], table[samples[0]], patient_id, path, fix)
    table = pd.read_csv(io.StringIO(text), sep="\t", header=None, names=["gene", *STAR_STRANDS])
    head = table["gene"].head(len(STAR_SUMMARY_ROWS)).tolist()
    if head != STAR_SUMMARY_ROWS:
        raise InputError(
            f"STAR ReadsPerGene file starts with {head}, expected {STAR_SUMMARY_ROWS}",
            patient=patient_id,
            path=path,
            fix="provide STAR's ReadsPerGene.out.tab unchanged",
        )
    table = table.iloc[len(STAR_SUMMARY_ROWS) :]
    fix = "provide STAR's ReadsPerGene.out.tab unchanged (gene + 3 count columns)"
    return _validated(table["gene"], table[strand], patient_id, path, fix)


def read_salmon_tpm(path, patient_id: str) -> pd.Series:
    """TPM per transcript (or gene) from a salmon ``quant.sf``; ids as in the file."""
    path = Path(path)
    text = _read_text(path, patient_id)
    if detect_format(text) != "salmon":
        raise InputError(
            "not a salmon quant.sf (header is not Name Length EffectiveLength TPM NumReads)",
            patient=patient_id,
            path=path,
            fix="provide salmon's quant.sf unchanged",
        )
    table = pd.read_csv(io.StringIO(text), sep="\t")
    fix = "provide salmon's quant.sf unchanged (column TPM)"
    return _validated(table["Name"], table["TPM"], patient_id, path, fix)


# ------------------------------------------------------------------------ gene ids

_ENSEMBL_VERSIONED = re.compile(r"^(ENS[A-Z]*[0-9]{11})\.[0-9]+$")
_PAR_Y = re.compile(r"^ENS[A-Z]*[0-9]{11}(\.[0-9]+)?_PAR_Y$")


def clean_gene_ids(counts: pd.Series, collapse: str = "sum") -> pd.Series:
    """Strip Ensembl version suffixes and collapse the rows of ids that then coincide.

    * ``ENSG00000141510.17`` becomes ``ENSG00000141510`` (any ``ENS...`` gene/transcript id);
      other ids (gene symbols such as ``TP53`` or ``RP11-34P13.7``) are left untouched.
    * GENCODE ``..._PAR_Y`` rows (the copy of a pseudoautosomal gene on chromosome Y, e.g.
      ``ENSG00000002586.20_PAR_Y``) are dropped: they are not a distinct gene, and
      quantifiers assign the reads to the chromosome X copy, which is kept.
    * Rows with the same id after cleaning (several versions of one gene, or a symbol that
      several loci share) are collapsed: ``collapse="sum"`` for counts (reads counted under
      any of them belong to that gene), ``collapse="mean"`` for normalised log-scale values
      (a sum of logs has no meaning). Only the sample's own values are used, so the rule is
      safe before any split.

    Order is that of each id's first appearance; the input is not modified.
    """
    ids = counts.index.astype(str)
    keep = ~ids.str.match(_PAR_Y)
    cleaned = ids[keep].str.replace(_ENSEMBL_VERSIONED, r"\1", regex=True)
    kept = pd.Series(counts.to_numpy()[keep], index=cleaned, name=counts.name)
    if collapse not in ("sum", "mean"):
        raise ValueError(f"collapse must be 'sum' or 'mean', not {collapse!r}")
    result = kept if kept.index.is_unique else kept.groupby(level=0, sort=False).agg(collapse)
    result.index.name = counts.index.name
    return result.astype("float64")


# ---------------------------------------------------------------------------- QC

QC_FAILED = "RNA-seq QC failed: "
QC_THRESHOLDS = {
    "min_library_size": "library_size",
    "min_detected_genes": "detected_genes",
    "max_pct_mito": "pct_mito",
    "max_pct_ribo": "pct_ribo",
}


def qc_metrics(counts: pd.Series, mito_genes=None, ribo_genes=None) -> dict:
    """Per-sample QC: ``library_size``, ``detected_genes``, ``pct_mito``, ``pct_ribo``.

    Computed with plain numpy (the same numbers as scanpy's ``calculate_qc_metrics``
    ``total_counts``, ``n_genes_by_counts`` and ``pct_counts_<var>``, in percent 0-100).
    Mitochondrial genes are ``mito_genes`` when given (e.g. Ensembl ids), otherwise ids
    starting with ``MT-`` (any case); ribosomal genes are ``ribo_genes`` when given,
    otherwise ids starting with ``RPS`` or ``RPL`` (any case; the usual prefix rule, which
    also catches e.g. the RPS6K kinases). Percentages are NaN for an empty library.
    """
    values = counts.to_numpy(dtype="float64")
    ids = counts.index.astype(str)
    if mito_genes is None:
        mito = ids.str.upper().str.startswith("MT-")
    else:
        mito = ids.isin([str(g) for g in mito_genes])
    if ribo_genes is None:
        ribo = ids.str.upper().str.startswith(("RPS", "RPL"))
    else:
        ribo = ids.isin([str(g) for g in ribo_genes])
    total = float(values.sum())

    def pct(mask) -> float:
        return float(100.0 * values[np.asarray(mask)].sum() / total) if total > 0 else np.nan

    return {
        "library_size": total,
        "detected_genes": int((values > 0).sum()),
        "pct_mito": pct(mito),
        "pct_ribo": pct(ribo),
    }


def check_qc(metrics: dict, thresholds: dict | None, patient_id: str, path=None) -> None:
    """Raise InputError listing every violated QC threshold; a None threshold is not checked.

    ``thresholds`` keys: ``min_library_size``, ``min_detected_genes``, ``max_pct_mito``,
    ``max_pct_ribo`` (config ``rnaseq.qc.<name>``). A NaN metric fails its threshold.
    """
    thresholds = thresholds or {}
    unknown = sorted(set(thresholds) - set(QC_THRESHOLDS))
    if unknown:
        raise InputError(
            f"unknown RNA-seq QC threshold(s) {unknown}",
            fix=f"use only {sorted(QC_THRESHOLDS)} under rnaseq.qc in config",
        )
    failed = []
    for name, metric in QC_THRESHOLDS.items():
        limit = thresholds.get(name)
        if limit is None:
            continue
        value = metrics[metric]
        ok = value >= limit if name.startswith("min_") else value <= limit
        if not ok:
            relation = "below minimum" if name.startswith("min_") else "above maximum"
            failed.append((name, f"{metric} = {value:g} is {relation} {name} = {limit:g}"))
    if failed:
        names = ", ".join(f"rnaseq.qc.{name}" for name, _ in failed)
        raise InputError(
            QC_FAILED + "; ".join(text for _, text in failed),
            patient=patient_id,
            path=path,
            fix=f"relax {names}, or set rnaseq.qc.on_fail: exclude in config to leave the "
            "sample out",
        )


def normalise(counts: pd.Series, target_sum: float = 1e6) -> pd.Series:
    """Counts per ``target_sum`` (CPM by default), then log1p: the numbers of scanpy's
    ``normalize_total`` and ``log1p`` (tested). Plain numpy, because importing scanpy takes
    2-3 s, more than the rest of a sample's job, and there is one job per sample."""
    values = counts.to_numpy(dtype="float64")
    total = values.sum()
    # scanpy's order of operations, so that the values are identical to the bit
    scaled = values / (total / target_sum) if total > 0 else values.copy()
    return pd.Series(np.log1p(scaled), index=counts.index.astype(str), dtype="float64")


TPM_FIX = (
    "TPM needs feature lengths: give salmon's quant.sf, featureCounts output or a "
    "'gene'/'count'/'length' table, or set rnaseq.unit: cpm"
)


def read_lengths(path, patient_id: str) -> pd.Series:
    """Feature lengths of a sample, aligned with :func:`read_sample` (same rows and order):
    salmon's ``EffectiveLength`` (as salmon's own TPM), featureCounts' ``Length`` or the
    ``length`` column of a plain table. STAR counts carry no lengths: an error."""
    path = Path(path)
    text = _read_text(path, patient_id)
    kind = detect_format(text)
    if kind == "salmon":
        table = pd.read_csv(io.StringIO(text), sep="\t")
        ids, lengths = table["Name"], table["EffectiveLength"]
    elif kind == "featurecounts":
        table = pd.read_csv(io.StringIO(text), sep="\t", comment="#")
        ids, lengths = table["Geneid"], table["Length"]
    elif kind == "plain" and "length" in _plain_table(text).columns:
        table = _plain_table(text)
        ids, lengths = table["gene"], table["length"]
    else:
        raise InputError(
            "the file has no feature lengths", patient=patient_id, path=path, fix=TPM_FIX
        )
    lengths = pd.to_numeric(lengths, errors="coerce")
    bad = ids[~(lengths > 0)]
    if len(bad):
        raise InputError(
            f"{len(bad)} features have a missing or non-positive length (first: {bad.iloc[0]})",
            patient=patient_id,
            path=path,
            fix=TPM_FIX,
        )
    return pd.Series(
        lengths.to_numpy(dtype="float64"), index=pd.Index(ids.astype(str), name="gene")
    )


def tpm_rates(counts: pd.Series, lengths: pd.Series) -> pd.Series:
    """Reads per base (count / length) per raw row; scaled to a million they are TPM, and
    rows of one gene add up (gene TPM is the sum of its transcripts' TPM)."""
    return pd.Series(counts.to_numpy() / lengths.to_numpy(), index=counts.index)


def read(path, patient_id: str, *, values: str = "counts", strand: str = "unstranded"):
    """One patient's sample with clean gene ids: raw counts (any supported format, duplicate
    ids summed) or normalised expression (``gene``/``expression`` table, duplicates averaged).
    """
    if values not in VALUES:
        raise ValueError(f"values must be one of {VALUES}, not {values!r}")
    if values == "normalised":
        return clean_gene_ids(read_expression(path, patient_id), collapse="mean")
    return clean_gene_ids(read_sample(path, patient_id, strand=strand))


def extract(
    path,
    patient_id: str,
    target_sum: float = 1e6,
    *,
    strand: str = "unstranded",
    values: str = "counts",
    unit: str = "cpm",
) -> pd.Series:
    """One patient's expression features: log1p of CPM (``unit="cpm"``) or of TPM
    (``unit="tpm"``: counts per feature length, see :func:`read_lengths`), scaled to
    ``target_sum``; or the normalised values as given."""
    if values == "normalised":
        return read(path, patient_id, values=values)
    if unit == "tpm":
        counts = read_sample(path, patient_id, strand=strand)
        rates = tpm_rates(counts, read_lengths(path, patient_id))
        return normalise(clean_gene_ids(rates), target_sum=target_sum)
    if unit != "cpm":
        raise ValueError(f"unit must be 'cpm' or 'tpm', not {unit!r}")
    return normalise(read(path, patient_id, strand=strand), target_sum=target_sum)


def qc_record(
    path,
    patient_id: str,
    thresholds: dict | None,
    strand: str = "unstranded",
    *,
    values: str = "counts",
    on_fail: str = "error",
):
    """The QC record of one sample; never raises for bad input (the problem is recorded).

    ``status`` is ``ok``, ``error`` (unreadable or invalid file, or failed QC with
    ``on_fail="error"``) or ``excluded`` (failed QC with ``on_fail="exclude"``: the patient
    is then treated as having no RNA-seq). Normalised input has no counts, so its metrics
    are only ``detected_genes`` (finite values) and its QC thresholds must be unset.
    """
    entry = {"patient_id": patient_id, "rnaseq": str(path)}
    try:
        sample = read(path, patient_id, values=values, strand=strand)
        if values == "normalised":
            metrics = {"detected_genes": int(len(sample))}
        else:
            metrics = qc_metrics(sample)
        entry.update({k: float(v) for k, v in metrics.items()})
        check_qc(metrics, thresholds, patient_id, path)
        entry.update(status="ok", problem="", fix="")
    except InputError as err:
        failed_qc = err.problem.startswith(QC_FAILED)
        status = "excluded" if failed_qc and on_fail == "exclude" else "error"
        entry.update(status=status, problem=err.problem, fix=err.fix, file=err.path)
    return entry


# ------------------------------------------------------------------------ matrices


def read_matrix(path, *, layer: str = "") -> pd.DataFrame:
    """Every patient's expression from one file, as a patients x genes frame.

    * ``.h5ad``: an AnnData with patients as observations (``obs_names``) and genes as
      variables; values from ``X``, or from ``layers[layer]`` when ``layer`` is given.
    * otherwise a genes x patients table (TSV, or CSV by its ``.csv``/``.csv.gz`` name;
      gzip allowed): the first column holds the gene ids, the header the patient ids.

    Raises InputError for an unreadable file, duplicated patient ids or non-numeric values.
    """
    path = Path(path)
    fix = (
        "provide a genes x patients TSV/CSV (first column gene ids, header patient ids) "
        "or an .h5ad with patients as observations"
    )
    if not path.exists():
        raise InputError(
            "expression matrix does not exist", path=path, fix="correct rnaseq.matrix in config"
        )
    if path.name.lower().endswith(".h5ad"):
        import anndata as ad

        adata = ad.read_h5ad(path)
        if layer and layer not in adata.layers:
            raise InputError(
                f"layer '{layer}' is not in the AnnData (layers: {list(adata.layers)})",
                path=path,
                fix="correct rnaseq.layer in config, or leave it empty to use X",
            )
        data = adata.layers[layer] if layer else adata.X
        data = data.toarray() if hasattr(data, "toarray") else np.asarray(data)
        frame = pd.DataFrame(data, index=adata.obs_names.astype(str), columns=adata.var_names)
    else:
        table = pd.read_csv(path, sep=separator(path), index_col=0)
        frame = table.T
        frame.index = frame.index.astype(str).str.strip()
    frame.index.name = "patient_id"
    frame.columns = frame.columns.astype(str)
    dup = frame.index[frame.index.duplicated()]
    if len(dup):
        raise InputError(f"patient {dup[0]} appears more than once", path=path, fix=fix)
    numbers = frame.apply(pd.to_numeric, errors="coerce")
    bad = numbers.isna() & frame.notna()
    if bad.any().any():
        patient = bad.any(axis=1).idxmax()
        raise InputError(
            f"non-numeric value in gene {bad.loc[patient].idxmax()!r}",
            patient=patient,
            path=path,
            fix=fix,
        )
    return numbers.astype("float64")


def matrix_patients(path) -> list[str]:
    """Patient ids of a matrix, read without loading its values (for building the DAG)."""
    path = Path(path)
    if path.name.lower().endswith(".h5ad"):
        import anndata as ad

        adata = ad.read_h5ad(path, backed="r")
        try:
            return [str(p) for p in adata.obs_names]
        finally:
            adata.file.close()
    header = pd.read_csv(path, sep=separator(path), nrows=0, index_col=0)
    return [str(p).strip() for p in header.columns]


def write_sample(values: pd.Series, path, kind: str = "counts") -> None:
    """One patient's column of a matrix as a per-patient file that :func:`read` reads
    (``gene``/``count`` or ``gene``/``expression``). NaN cells (genes not measured for
    this patient) are left out."""
    column = "count" if kind == "counts" else "expression"
    table = values.dropna().rename(column).rename_axis("gene").reset_index()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, sep="\t", index=False)


def common_genes(
    features: pd.DataFrame, min_coverage: float = 1.0
) -> tuple[pd.DataFrame, list[str]]:
    """Keep the genes measured in at least ``min_coverage`` of the samples; also return the
    dropped ones.

    A gene absent from a sample (not in its file, or an empty cell of a matrix) is unknown,
    not zero, for that patient. With ``min_coverage`` 1 only genes measured in every sample
    are kept; below 1, the remaining gaps are imputed inside the training folds. When
    patients share no gene at all, their files use different identifier types (e.g.
    Ensembl ids and symbols), which is an error.
    """
    measured = features.notna()
    _check_identifiers(measured)
    keep = measured.mean(axis=0) >= min_coverage - 1e-12
    if len(features) and not keep.any():
        first, other = features.index[0], features.index[-1]
        raise InputError(
            f"no gene is measured in {min_coverage:.0%} of the RNA-seq samples (e.g. {first} "
            f"has {features.loc[first].dropna().index[:2].tolist()}, {other} has "
            f"{features.loc[other].dropna().index[:2].tolist()})",
            patient=first,
            fix="quantify every sample against one annotation with one id type "
            "(Ensembl ids or gene symbols), or lower rnaseq.gene_coverage",
        )
    return features.loc[:, keep], [str(g) for g in features.columns[~keep]]


def _check_identifiers(measured: pd.DataFrame) -> None:
    """Name the samples whose genes are mostly not those of the majority of samples: their
    files use another identifier type (or another organism's annotation)."""
    usual = measured.mean(axis=0) >= 0.5
    shared = (measured & usual).sum(axis=1) / measured.sum(axis=1).clip(lower=1)
    odd = shared.index[shared < 0.5]
    if 0 < len(odd) < len(measured) / 2:
        example = measured.columns[measured.loc[odd[0]]][:2].tolist()
        others = measured.columns[usual][:2].tolist()
        raise InputError(
            f"{len(odd)} RNA-seq sample(s) share less than half of their gene ids with the "
            f"other samples: {', '.join(map(str, odd[:10]))} (e.g. {odd[0]} has {example}, "
            f"most samples have {others})",
            patient=odd[0],
            fix="quantify these samples against the same annotation with the same id type "
            "(Ensembl ids or gene symbols) as the others",
        )
