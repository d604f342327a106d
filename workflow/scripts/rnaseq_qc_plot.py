"""The cohort's RNA-seq QC metrics against their thresholds, failing samples marked."""

import pandas as pd

from radiotx import logs, report

logs.to_file(snakemake.log[0])
table = pd.read_csv(snakemake.input[0], sep="\t", dtype={"patient_id": str})
report.plot_rnaseq_qc(table, snakemake.params.thresholds, snakemake.output[0])
