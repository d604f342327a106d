"""The cohort and quality-control page of the HTML report."""

from pathlib import Path

import pandas as pd

from radiotx import logs, report

logs.to_file(snakemake.log[0])
qa = {
    # a study without that modality has an empty QA file
    name: pd.read_csv(snakemake.input[name], sep="\t", index_col=0, keep_default_na=False)
    for name in ("radiomics", "rnaseq")
    if Path(snakemake.input[name]).stat().st_size > 1
}
qa = {name: table for name, table in qa.items() if len(table)}
text = report.cohort_markdown(pd.read_csv(snakemake.input.availability, sep="\t", index_col=0), qa)
Path(snakemake.output[0]).write_text(report.html_page(text, "Cohort"), encoding="utf-8")
