"""Splits of one endpoint, made once and reused by every model job: the locked hold-out
set and the repeated outer folds of the development patients."""

from radiotx import cohort, logs, splits
from radiotx.fairness import subgroups

logs.to_file(snakemake.log[0])
p = snakemake.params
sheet = cohort.read_sheet(snakemake.input.sheet)
table = cohort.read_clinical(snakemake.input.clinical, p.id_column)
name = snakemake.wildcards.endpoint
# stratified by label, or by event for a survival endpoint
labels = cohort.endpoint_columns(table, name, p.endpoint, snakemake.input.clinical)[name]
labels = labels.reindex(sheet.index).rename(name)
# leave-one-site-out: the outer folds are the groups of a fairness attribute
sites = subgroups.read(snakemake.input.sites)[p.leave_out] if p.leave_out else None
table = splits.make_splits(
    labels, n_splits=p.folds, repeats=p.repeats, holdout=p.holdout, seed=p.seed, sites=sites
)
splits.write(table, snakemake.output[0])
