"""Ranked results table of every model job, with the fusion comparison, the cost of model
selection and the SHAP explanations of each endpoint, the fairness audit and the
reporting checklist."""

from pathlib import Path

import pandas as pd

from radiotx import checklist, compare, logs, manifest, report

logs.to_file(snakemake.log[0])
metrics = report.load_metrics(Path(p).parent for p in snakemake.input.metrics)
table = report.summary_table(metrics)
comparisons = {
    Path(tests).parent.name: report.comparison_markdown(
        pd.read_csv(tests, sep="\t"), pd.read_csv(contributions, sep="\t")
    )
    for tests, contributions in zip(
        snakemake.input.tests, snakemake.input.contributions, strict=True
    )
}
cost = compare.selection_cost(metrics)
cost.to_csv(snakemake.output.selection, sep="\t", index=False)
for endpoint, part in cost.groupby("endpoint", sort=False):
    sections = [comparisons.get(endpoint), compare.selection_cost_markdown(part)]
    comparisons[endpoint] = "\n\n".join(filter(None, sections))
rows = checklist.items(
    snakemake.params.config,
    metrics,
    pd.read_csv(snakemake.input.availability, sep="\t", index_col=0),
    manifest.read(snakemake.input.manifest),
)
explanations = report.shap_sections(snakemake.input.shap)
for endpoint, section in report.image_sections(snakemake.input.images).items():
    explanations[endpoint] = "\n\n".join(filter(None, [explanations.get(endpoint), section]))
out = snakemake.output
# the fairness audit (cohort by subgroup, shift, subgroup performance) before the checklist
fairness = [Path(path).read_text(encoding="utf-8") for path in snakemake.input.fairness]
appendix = "\n\n".join([*fairness, checklist.markdown(rows)])
report.write_summary(table, out.tsv, out.md, comparisons, appendix, explanations)
markdown = Path(snakemake.output.md).read_text(encoding="utf-8")
Path(snakemake.output.html).write_text(report.html_page(markdown, "Summary"), encoding="utf-8")
