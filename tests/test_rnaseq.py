"""RNA-seq sample reading in the formats of common quantifiers, gene-id cleaning and QC."""

import gzip

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy as sc

from radiotx.errors import InputError
from radiotx.features import rnaseq

# gene id, length, raw count (the same sample quantified by each tool)
GENES = [
    ("ENSG00000141510.17", 2579, 812),  # TP53
    ("ENSG00000111640.15", 1875, 15320),  # GAPDH
    ("ENSG00000198804.2", 1542, 4410),  # MT-CO1
    ("ENSG00000223972.5", 1735, 0),  # DDX11L1
    ("ENSG00000075624.17", 1922, 20117),  # ACTB
]
EXPECTED = pd.Series(
    [float(c) for _, _, c in GENES], index=pd.Index([g for g, _, _ in GENES], name="gene")
)


def plain_text(sep="\t"):
    rows = [f"{g}{sep}{c}" for g, _, c in GENES]
    return "\n".join([f"gene{sep}count", *rows]) + "\n"


def salmon_text():
    rows = ["Name\tLength\tEffectiveLength\tTPM\tNumReads"]
    eff = [length - 150.0 for _, length, _ in GENES]
    rate = [c / e for (_, _, c), e in zip(GENES, eff, strict=True)]
    tpm = [r / sum(rate) * 1e6 for r in rate]
    for (g, length, c), e, t in zip(GENES, eff, tpm, strict=True):
        rows.append(f"{g}\t{length}\t{e:.3f}\t{t:.6f}\t{c:.3f}")
    return "\n".join(rows) + "\n", pd.Series(tpm, index=EXPECTED.index)


def featurecounts_text(samples=("/data/bam/P001.Aligned.sortedByCoord.out.bam",)):
    rows = [
        '# Program:featureCounts v2.0.6; Command:"featureCounts" "-T" "8" "-p" "--countReadPairs" '
        '"-a" "gencode.v44.annotation.gtf" "-o" "P001.featureCounts.txt" ' + " ".join(samples),
        "\t".join(["Geneid", "Chr", "Start", "End", "Strand", "Length", *samples]),
    ]
    for g, length, c in GENES:
        chrom = "chr17;chr17;chr17" if g.startswith("ENSG00000141510") else "chr1;chr1"
        start = "7661779;7668402;7669609" if chrom.count(";") == 2 else "11869;12613"
        end = "7662014;7669690;7676594" if chrom.count(";") == 2 else "12227;12721"
        strand = ";".join("-" * (chrom.count(";") + 1))
        rows.append(
            "\t".join([g, chrom, start, end, strand, str(length)] + [str(c)] * len(samples))
        )
    return "\n".join(rows) + "\n"


def star_text():
    rows = [
        "N_unmapped\t1523004\t1523004\t1523004",
        "N_multimapping\t2210873\t2210873\t2210873",
        "N_noFeature\t1004221\t15622031\t1830112",
        "N_ambiguous\t604120\t20551\t351214",
    ]
    for g, _, c in GENES:
        # unstranded, forward (read 1 on the gene's strand), reverse (dUTP libraries)
        rows.append(f"{g}\t{c}\t{c // 40}\t{c - c // 50}")
    return "\n".join(rows) + "\n"


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------- reading


@pytest.mark.parametrize(
    "name, make",
    [
        ("P001.tsv", plain_text),
        ("P001.csv", lambda: plain_text(",")),
        ("quant.sf", lambda: salmon_text()[0]),
        ("P001.featureCounts.txt", featurecounts_text),
        ("P001.ReadsPerGene.out.tab", star_text),
    ],
)
def test_each_format_gives_the_same_counts(tmp_path, name, make):
    counts = rnaseq.read_sample(write(tmp_path / name, make()), "P001")
    pd.testing.assert_series_equal(counts, EXPECTED)


@pytest.mark.parametrize(
    "text, kind",
    [
        (plain_text(), "plain"),
        (plain_text(","), "plain"),
        (salmon_text()[0], "salmon"),
        (featurecounts_text(), "featurecounts"),
        (featurecounts_text().split("\n", 1)[1], "featurecounts"),  # without the # line
        (star_text(), "star"),
        ("symbol\treads\nA\t1\n", None),
        ("", None),
    ],
)
def test_detect_format(text, kind):
    assert rnaseq.detect_format(text) == kind


@pytest.mark.parametrize(
    "name, make",
    [
        ("P001.tsv.gz", plain_text),
        ("quant.sf.gz", lambda: salmon_text()[0]),
        ("P001.featureCounts.txt.gz", featurecounts_text),
        ("ReadsPerGene.out.tab.gz", star_text),
        ("gzipped_without_suffix.tab", star_text),
    ],
)
def test_gzip(tmp_path, name, make):
    path = tmp_path / name
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write(make())
    pd.testing.assert_series_equal(rnaseq.read_sample(path, "P001"), EXPECTED)


def test_star_strand_columns(tmp_path):
    path = write(tmp_path / "ReadsPerGene.out.tab", star_text())
    raw = np.array([c for _, _, c in GENES])
    forward = rnaseq.read_sample(path, "P001", strand="forward")
    reverse = rnaseq.read_sample(path, "P001", strand="reverse")
    np.testing.assert_array_equal(forward.to_numpy(), raw // 40)
    np.testing.assert_array_equal(reverse.to_numpy(), raw - raw // 50)
    assert not forward.index.str.startswith("N_").any()
    with pytest.raises(ValueError, match="strand must be one of"):
        rnaseq.read_sample(path, "P001", strand="yes")


def test_salmon_tpm(tmp_path):
    text, tpm = salmon_text()
    path = write(tmp_path / "quant.sf", text)
    result = rnaseq.read_salmon_tpm(path, "P001")
    np.testing.assert_allclose(result.to_numpy(), tpm.to_numpy(), atol=1e-6)
    assert list(result.index) == list(EXPECTED.index)
    with pytest.raises(InputError, match="not a salmon quant.sf"):
        rnaseq.read_salmon_tpm(write(tmp_path / "P001.tsv", plain_text()), "P001")


def test_salmon_fractional_reads(tmp_path):
    text = "Name\tLength\tEffectiveLength\tTPM\tNumReads\nENST01\t900\t751.2\t1e6\t12.537\n"
    counts = rnaseq.read_sample(write(tmp_path / "quant.sf", text), "P001")
    assert counts.to_dict() == {"ENST01": 12.537}


def test_featurecounts_with_several_samples_is_rejected(tmp_path):
    text = featurecounts_text(samples=("P001.bam", "P002.bam"))
    path = write(tmp_path / "all.featureCounts.txt", text)
    with pytest.raises(InputError, match="2 sample columns") as info:
        rnaseq.read_sample(path, "P001")
    assert "patient P001" in str(info.value) and "Fix:" in str(info.value)


@pytest.mark.parametrize(
    "name, text",
    [
        ("P042.txt", "symbol\treads\nTP53\t10\n"),
        ("P042.tsv", ""),
        ("P042.bam", None),
    ],
)
def test_unknown_format_names_patient_file_and_fix(tmp_path, name, text):
    path = tmp_path / name
    if text is None:
        path.write_bytes(b"BAM\x01\xff\xfe\x00\x9c")
    else:
        write(path, text)
    with pytest.raises(InputError) as info:
        rnaseq.read_sample(path, "P042")
    message = str(info.value)
    assert "patient P042" in message
    assert str(path) in message
    assert "Fix:" in message and "quant.sf" in message


def test_read_sample_missing_file(tmp_path):
    path = tmp_path / "absent.sf"
    with pytest.raises(InputError, match="does not exist") as info:
        rnaseq.read_sample(path, "P042")
    assert "patient P042" in str(info.value) and str(path) in str(info.value)


@pytest.mark.parametrize(
    "name, text, problem",
    [
        ("neg.sf", "Name\tLength\tEffectiveLength\tTPM\tNumReads\nT1\t9\t8\t1\t-2\n", "first: T1"),
        ("noheads.tab", star_text().replace("N_ambiguous", "ENSG00000000003.15"), "expected"),
        ("summary.tab", "\n".join(star_text().splitlines()[:4]) + "\n", "empty"),
        ("empty.tab", "\n".join(star_text().splitlines()[:4]) + "\nG1\t0\t0\t0\n", "empty"),
    ],
)
def test_read_sample_bad_values(tmp_path, name, text, problem):
    path = write(tmp_path / name, text)
    with pytest.raises(InputError, match=problem) as info:
        rnaseq.read_sample(path, "P042")
    assert "patient P042" in str(info.value) and "Fix:" in str(info.value)


def test_extract_reads_any_format_and_cleans_ids(tmp_path):
    path = write(tmp_path / "ReadsPerGene.out.tab", star_text())
    result = rnaseq.extract(path, "P001")
    expected = EXPECTED.rename(lambda g: g.split(".")[0])
    np.testing.assert_allclose(result.to_numpy(), np.log1p(expected / expected.sum() * 1e6))
    assert list(result.index) == list(expected.index)


# ------------------------------------------------------------------------------- gene ids


def test_clean_gene_ids_strips_versions_and_sums_duplicates():
    counts = pd.Series(
        [5.0, 7.0, 3.0, 11.0, 2.0, 1.0],
        index=[
            "ENSG00000141510.17",
            "ENSG00000111640.15",
            "ENSG00000141510.16",  # an older version of the same gene
            "TP53",
            "RP11-34P13.7",  # a symbol with a dot stays as it is
            "ENSMUSG00000059552.14",
        ],
        name="P001",
    )
    before = counts.copy()
    result = rnaseq.clean_gene_ids(counts)
    assert result.to_dict() == {
        "ENSG00000141510": 8.0,
        "ENSG00000111640": 7.0,
        "TP53": 11.0,
        "RP11-34P13.7": 2.0,
        "ENSMUSG00000059552": 1.0,
    }
    assert list(result.index)[0] == "ENSG00000141510"  # order of first appearance
    assert result.name == "P001" and result.dtype == np.float64
    pd.testing.assert_series_equal(counts, before)
    assert result.sum() == counts.sum()


def test_clean_gene_ids_drops_par_y_rows():
    counts = pd.Series(
        [40.0, 0.0, 9.0, 3.0],
        index=[
            "ENSG00000002586.20",  # CD99 on chrX
            "ENSG00000002586.20_PAR_Y",  # its chrY copy in GENCODE
            "ENSG00000182378.14_PAR_Y",
            "ENSG00000182378.14",
        ],
    )
    result = rnaseq.clean_gene_ids(counts)
    assert result.to_dict() == {"ENSG00000002586": 40.0, "ENSG00000182378": 3.0}


def test_clean_gene_ids_keeps_unversioned_and_symbols():
    counts = pd.Series([1.0, 2.0], index=pd.Index(["ENSG00000141510", "GAPDH"], name="gene"))
    pd.testing.assert_series_equal(rnaseq.clean_gene_ids(counts), counts)


# ------------------------------------------------------------------------------------- QC

QC_COUNTS = pd.Series(
    [100.0, 50.0, 30.0, 20.0, 700.0, 0.0, 100.0],
    index=["MT-CO1", "mt-nd1", "RPS6", "rpl13", "GAPDH", "ZERO", "MTOR"],
)


def test_qc_metrics_by_hand():
    metrics = rnaseq.qc_metrics(QC_COUNTS)
    assert metrics == {
        "library_size": 1000.0,
        "detected_genes": 6,
        "pct_mito": pytest.approx(15.0),  # MT-CO1 + mt-nd1, not MTOR
        "pct_ribo": pytest.approx(5.0),  # RPS6 + rpl13
    }


def test_qc_metrics_with_gene_lists():
    counts = QC_COUNTS.rename(index={"MT-CO1": "ENSG00000198804", "RPS6": "ENSG00000137154"})
    metrics = rnaseq.qc_metrics(
        counts, mito_genes=["ENSG00000198804"], ribo_genes=["ENSG00000137154", "absent"]
    )
    assert metrics["pct_mito"] == pytest.approx(10.0)
    assert metrics["pct_ribo"] == pytest.approx(3.0)


def test_qc_metrics_agree_with_scanpy():
    adata = ad.AnnData(
        X=QC_COUNTS.to_numpy()[np.newaxis, :], var=pd.DataFrame(index=QC_COUNTS.index)
    )
    adata.var["mt"] = adata.var_names.str.upper().str.startswith("MT-")
    adata.var["ribo"] = adata.var_names.str.upper().str.startswith(("RPS", "RPL"))
    obs, _ = sc.pp.calculate_qc_metrics(adata, qc_vars=["mt", "ribo"], percent_top=None)
    metrics = rnaseq.qc_metrics(QC_COUNTS)
    assert metrics["library_size"] == pytest.approx(obs["total_counts"].iloc[0])
    assert metrics["detected_genes"] == obs["n_genes_by_counts"].iloc[0]
    assert metrics["pct_mito"] == pytest.approx(obs["pct_counts_mt"].iloc[0])
    assert metrics["pct_ribo"] == pytest.approx(obs["pct_counts_ribo"].iloc[0])


def test_qc_metrics_empty_library():
    metrics = rnaseq.qc_metrics(pd.Series([0.0, 0.0], index=["MT-CO1", "A"]))
    assert metrics["library_size"] == 0 and metrics["detected_genes"] == 0
    assert np.isnan(metrics["pct_mito"]) and np.isnan(metrics["pct_ribo"])


GOOD = {"library_size": 1000.0, "detected_genes": 6, "pct_mito": 15.0, "pct_ribo": 5.0}


@pytest.mark.parametrize(
    "thresholds",
    [
        None,
        {},
        {"min_library_size": None, "max_pct_mito": None},
        {
            "min_library_size": 1000,
            "min_detected_genes": 6,
            "max_pct_mito": 15.0,
            "max_pct_ribo": 5.0,
        },
    ],
)
def test_check_qc_passes(thresholds):
    assert rnaseq.check_qc(GOOD, thresholds, "P001", "P001.tsv") is None


@pytest.mark.parametrize(
    "name, limit, metric, shown",
    [
        ("min_library_size", 1001, "library_size", "library_size = 1000"),
        ("min_detected_genes", 7, "detected_genes", "detected_genes = 6"),
        ("max_pct_mito", 14.9, "pct_mito", "pct_mito = 15"),
        ("max_pct_ribo", 4.5, "pct_ribo", "pct_ribo = 5"),
    ],
)
def test_check_qc_violations(tmp_path, name, limit, metric, shown):
    path = tmp_path / "P042.tsv"
    with pytest.raises(InputError) as info:
        rnaseq.check_qc(GOOD, {name: limit}, "P042", path)
    message = str(info.value)
    assert "patient P042" in message and str(path) in message
    assert shown in message and f"{name} = {limit:g}" in message
    assert f"Fix: relax rnaseq.qc.{name}, or set rnaseq.qc.on_fail: exclude" in message
    assert info.value.patient == "P042"


def test_check_qc_reports_every_violation():
    thresholds = {"min_library_size": 5000, "max_pct_mito": 10, "max_pct_ribo": 20}
    with pytest.raises(InputError) as info:
        rnaseq.check_qc(GOOD, thresholds, "P042", "P042.tsv")
    message = str(info.value)
    assert "library_size" in message and "pct_mito" in message and "pct_ribo =" not in message
    assert "rnaseq.qc.min_library_size, rnaseq.qc.max_pct_mito" in message


def test_check_qc_nan_fails_and_unknown_threshold_is_rejected():
    empty = {**GOOD, "pct_mito": float("nan")}
    with pytest.raises(InputError, match="pct_mito = nan"):
        rnaseq.check_qc(empty, {"max_pct_mito": 20}, "P042", "P042.tsv")
    with pytest.raises(InputError, match="unknown RNA-seq QC threshold"):
        rnaseq.check_qc(GOOD, {"max_mito": 20}, "P042", "P042.tsv")


def test_qc_on_a_read_sample(tmp_path):
    path = write(tmp_path / "ReadsPerGene.out.tab", star_text())
    counts = rnaseq.clean_gene_ids(rnaseq.read_sample(path, "P001"))
    metrics = rnaseq.qc_metrics(counts, mito_genes=["ENSG00000198804"])
    assert metrics["library_size"] == sum(c for _, _, c in GENES)
    assert metrics["detected_genes"] == 4
    assert metrics["pct_mito"] == pytest.approx(100 * 4410 / metrics["library_size"])
    with pytest.raises(InputError, match="max_pct_mito"):
        rnaseq.check_qc(metrics, {"max_pct_mito": 5}, "P001", path)


def test_qc_record_keeps_metrics_and_records_failures(tmp_path):
    path = tmp_path / "s.tsv"
    path.write_text("gene\tcount\nMT-CO1\t900\nACTB\t100\n", encoding="utf-8")
    good = rnaseq.qc_record(path, "P1", {"max_pct_mito": 95})
    assert good["status"] == "ok" and good["pct_mito"] == pytest.approx(90.0)
    bad = rnaseq.qc_record(path, "P1", {"max_pct_mito": 50})
    assert bad["status"] == "error" and "pct_mito" in bad["problem"]
    assert bad["library_size"] == 1000 and "rnaseq.qc.max_pct_mito" in bad["fix"]
    missing = rnaseq.qc_record(tmp_path / "none.tsv", "P2", None)
    assert missing["status"] == "error" and "does not exist" in missing["problem"]


# ------------------------------------------------------------------- normalised input


def test_normalised_expression_is_used_as_given(tmp_path):
    path = tmp_path / "P7.tsv.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("gene\texpression\nENSG00000141510.17\t-1.25\nTP53\t0.5\nGAPDH\t3\n")
    result = rnaseq.extract(path, "P7", values="normalised")
    assert result.to_dict() == {"ENSG00000141510": -1.25, "TP53": 0.5, "GAPDH": 3.0}
    record = rnaseq.qc_record(path, "P7", None, values="normalised")
    assert record["status"] == "ok" and record["detected_genes"] == 3


@pytest.mark.parametrize(
    "text, problem",
    [
        ("gene\tcount\nA\t1\n", "lack 'gene' and 'expression'"),
        ("gene\texpression\nA\t1\nB\tinf\n", "first: B"),
        ("gene\texpression\nA\t1\nB\t\n", "first: B"),
    ],
)
def test_normalised_expression_errors(tmp_path, text, problem):
    path = write(tmp_path / "e.tsv", text)
    with pytest.raises(InputError, match=problem) as info:
        rnaseq.read(path, "P9", values="normalised")
    assert "patient P9" in str(info.value) and "rnaseq.values" in str(info.value)


# --------------------------------------------------------------------------- QC exclusion


def test_qc_failure_is_an_exclusion_when_configured(tmp_path):
    path = tmp_path / "s.tsv"
    path.write_text("gene\tcount\nMT-CO1\t900\nACTB\t100\n", encoding="utf-8")
    excluded = rnaseq.qc_record(path, "P1", {"max_pct_mito": 50}, on_fail="exclude")
    assert excluded["status"] == "excluded" and "pct_mito = 90" in excluded["problem"]
    assert "on_fail: exclude" in rnaseq.qc_record(path, "P1", {"max_pct_mito": 50})["fix"]
    # an unreadable file is never excluded silently: it stays an error to fix
    broken = rnaseq.qc_record(tmp_path / "none.tsv", "P2", {"max_pct_mito": 50}, on_fail="exclude")
    assert broken["status"] == "error"


# ----------------------------------------------------------------------------- matrices

MATRIX = pd.DataFrame(
    {"P1": [10.0, 0.0, 5.0], "P2": [3.0, 8.0, 1.0], "007": [0.0, 2.0, 9.0]},
    index=pd.Index(["ENSG00000141510.17", "ENSG00000111640.15", "TP53"], name="gene"),
)


@pytest.mark.parametrize("name", ["m.tsv", "m.tsv.gz", "m.csv", "m.csv.gz"])
def test_read_matrix_tables(tmp_path, name):
    path = tmp_path / name
    MATRIX.to_csv(path, sep="," if ".csv" in name else "\t")
    frame = rnaseq.read_matrix(path)
    assert list(frame.index) == ["P1", "P2", "007"]  # ids keep leading zeros
    assert list(frame.columns) == list(MATRIX.index)
    np.testing.assert_array_equal(frame.to_numpy(), MATRIX.T.to_numpy())
    assert rnaseq.matrix_patients(path) == ["P1", "P2", "007"]


def test_read_matrix_h5ad_with_layer(tmp_path):
    adata = ad.AnnData(
        X=MATRIX.T.to_numpy() / 2,
        obs=pd.DataFrame(index=list(MATRIX.columns)),
        var=pd.DataFrame(index=list(MATRIX.index)),
        layers={"counts": MATRIX.T.to_numpy()},
    )
    path = tmp_path / "m.h5ad"
    adata.write_h5ad(path)
    assert rnaseq.matrix_patients(path) == ["P1", "P2", "007"]
    np.testing.assert_array_equal(rnaseq.read_matrix(path).to_numpy(), MATRIX.T.to_numpy() / 2)
    counts = rnaseq.read_matrix(path, layer="counts")
    np.testing.assert_array_equal(counts.to_numpy(), MATRIX.T.to_numpy())
    with pytest.raises(InputError, match="layer 'raw'") as info:
        rnaseq.read_matrix(path, layer="raw")
    assert "rnaseq.layer" in str(info.value)


def test_read_matrix_errors(tmp_path):
    bad = MATRIX.astype(object)
    bad.loc["TP53", "P2"] = "n/a?"
    path = tmp_path / "bad.tsv"
    bad.to_csv(path, sep="\t")
    with pytest.raises(InputError, match="non-numeric value in gene 'TP53'") as info:
        rnaseq.read_matrix(path)
    assert "patient P2" in str(info.value)
    with pytest.raises(InputError, match="does not exist"):
        rnaseq.read_matrix(tmp_path / "absent.tsv")


def test_split_matrix_gives_the_same_features_as_per_patient_files(tmp_path):
    path = tmp_path / "m.tsv"
    MATRIX.to_csv(path, sep="\t")
    frame = rnaseq.read_matrix(path)
    for patient in frame.index:
        sample = tmp_path / f"{patient}.tsv"
        rnaseq.write_sample(frame.loc[patient], sample)
        direct = rnaseq.normalise(rnaseq.clean_gene_ids(MATRIX[patient]))
        pd.testing.assert_series_equal(rnaseq.extract(sample, patient), direct, check_names=False)


def test_common_genes():
    features = pd.DataFrame(
        {"A": [1.0, 2.0, 3.0], "B": [1.0, np.nan, 2.0], "C": [0.0, 1.0, 1.0]},
        index=["P1", "P2", "P3"],
    )
    kept, dropped = rnaseq.common_genes(features)
    assert list(kept.columns) == ["A", "C"] and dropped == ["B"]
    kept, dropped = rnaseq.common_genes(features, min_coverage=0.6)
    assert list(kept.columns) == ["A", "B", "C"] and dropped == []
    mixed = pd.DataFrame(
        {"ENSG00000141510": [1.0, np.nan], "TP53": [np.nan, 2.0]}, index=["P1", "P2"]
    )
    with pytest.raises(InputError, match="no gene is measured in 100% of") as info:
        rnaseq.common_genes(mixed)
    assert "one id type" in str(info.value)


def test_the_sample_with_other_gene_ids_is_the_one_named():
    symbols = [f"GENE{i}" for i in range(40)]
    ensembl = [f"ENSG{i:011d}" for i in range(40)]
    rng = np.random.default_rng(0)
    features = pd.DataFrame(np.nan, index=[f"P{i}" for i in range(1, 7)], columns=symbols + ensembl)
    features.loc[:, symbols] = rng.gamma(2.0, size=(6, 40))
    features.loc["P4", symbols] = np.nan  # this patient's file has Ensembl ids
    features.loc["P4", ensembl] = rng.gamma(2.0, size=40)
    for coverage in (1.0, 0.5):
        with pytest.raises(InputError, match=r"1 RNA-seq sample\(s\) share less than half") as info:
            rnaseq.common_genes(features, min_coverage=coverage)
        assert info.value.patient == "P4" and "ENSG00000000000" in info.value.problem
    # a sample measuring fewer genes (a panel) is not an odd one
    features.loc["P4"] = features.loc["P1"].where(features.columns.isin(symbols[:10]))
    kept, _ = rnaseq.common_genes(features, min_coverage=0.5)
    assert list(kept.columns) == symbols


# ------------------------------------------------------------------------------------ TPM


def test_tpm_equals_salmons_own(tmp_path):
    text, tpm = salmon_text()
    path = write(tmp_path / "quant.sf", text)
    result = rnaseq.extract(path, "P001", unit="tpm")
    expected = np.log1p(tpm.rename(lambda g: g.split(".")[0]))
    np.testing.assert_allclose(result.to_numpy(), expected.to_numpy(), rtol=1e-5)


def test_tpm_from_featurecounts_lengths(tmp_path):
    path = write(tmp_path / "fc.txt", featurecounts_text())
    result = rnaseq.extract(path, "P001", unit="tpm")
    rate = np.array([c / length for _, length, c in GENES])
    np.testing.assert_allclose(np.expm1(result.to_numpy()), rate / rate.sum() * 1e6, rtol=1e-9)
    assert list(result.index) == [g.split(".")[0] for g, _, _ in GENES]


def test_tpm_sums_the_versions_of_one_gene(tmp_path):
    text = (
        "gene\tcount\tlength\n"
        "ENSG00000000001.1\t100\t1000\nENSG00000000001.2\t100\t500\nENSG00000000002.4\t300\t1500\n"
    )
    result = rnaseq.extract(write(tmp_path / "s.tsv", text), "P1", unit="tpm")
    # reads per base 0.1 + 0.2 for the first gene, 0.2 for the second: TPM 600,000 / 400,000
    assert list(result.index) == ["ENSG00000000001", "ENSG00000000002"]
    np.testing.assert_allclose(np.expm1(result.to_numpy()), [6e5, 4e5], rtol=1e-9)


def test_tpm_needs_lengths(tmp_path):
    path = write(tmp_path / "ReadsPerGene.out.tab", star_text())
    with pytest.raises(InputError, match="no feature lengths") as info:
        rnaseq.extract(path, "P3", unit="tpm")
    assert "patient P3" in str(info.value) and "rnaseq.unit: cpm" in str(info.value)
    bad = write(tmp_path / "s.tsv", "gene\tcount\tlength\nA\t5\t0\n")
    with pytest.raises(InputError, match="non-positive length"):
        rnaseq.extract(bad, "P3", unit="tpm")
