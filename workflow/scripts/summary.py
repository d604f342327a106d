"""Ranked results table of every model job."""

from pathlib import Path

from radiotx import logs, report

logs.to_file(snakemake.log[0])
table = report.summary_table(report.load_metrics(Path(p).parent for p in snakemake.input.metrics))
report.write_summary(table, snakemake.output.tsv, snakemake.output.md)
