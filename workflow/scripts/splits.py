"""Splits of one endpoint, made once and reused by every model job: the locked hold-out
set and the repeated outer folds of the development patients."""

from radiotx import cohort, logs, splits

logs.to_file(snakemake.log[0])
p = snakemake.params
sheet = cohort.read_sheet(snakemake.input.sheet)
table = cohort.read_clinical(snakemake.input.clinical, p.id_column)
labels = cohort.endpoint_labels(
    table,
    p.endpoint["column"],
    p.endpoint["positive"],
    snakemake.input.clinical,
    p.endpoint["missing"],
)
labels = labels.reindex(sheet.index).rename(snakemake.wildcards.endpoint)
table = splits.make_splits(
    labels, n_splits=p.folds, repeats=p.repeats, holdout=p.holdout, seed=p.seed
)
splits.write(table, snakemake.output[0])
