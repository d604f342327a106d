"""Ranked results table of every model job, with the fusion comparison of each endpoint."""

from pathlib import Path

import pandas as pd

from radiotx import logs, report

logs.to_file(snakemake.log[0])
table = report.summary_table(report.load_metrics(Path(p).parent for p in snakemake.input.metrics))
comparisons = {
    Path(tests).parent.name: report.comparison_markdown(
        pd.read_csv(tests, sep="\t"), pd.read_csv(contributions, sep="\t")
    )
    for tests, contributions in zip(
        snakemake.input.tests, snakemake.input.contributions, strict=True
    )
}
report.write_summary(table, snakemake.output.tsv, snakemake.output.md, comparisons)
