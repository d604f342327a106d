"""The cohort by subgroup (counts, prevalence, missing modalities) and the covariate-shift
tests between sites (or other groups) and between development and hold-out patients."""

from pathlib import Path

from radiotx import cohort, logs, splits
from radiotx.fairness import audit, subgroups

logs.to_file(snakemake.log[0])
p = snakemake.params
settings = audit.Settings.from_config(p.fairness, p.seed)
mdata = cohort.read(snakemake.input.cohort)
groups = subgroups.read(snakemake.input.subgroups).reindex(mdata.obs_names.astype(str))
groups = groups.fillna(subgroups.MISSING)
labels = {e: mdata.obs[e].set_axis(groups.index) for e in p.endpoints}
table = subgroups.cohort_table(groups, labels, cohort.availability(mdata))
folds = {Path(path).stem: splits.read(path) for path in snakemake.input.splits}
features, classifier = audit.shift_tables(mdata, groups, folds, settings)
table.to_csv(snakemake.output.table, sep="\t", index=False)
features.to_csv(snakemake.output.features, sep="\t", index=False)
classifier.to_csv(snakemake.output.classifier, sep="\t", index=False)
markdown = audit.cohort_markdown(table, features, classifier, settings)
if p.leave_out:
    markdown += "\n" + audit.left_out_markdown(folds, groups, p.leave_out)
Path(snakemake.output.markdown).write_text(markdown, encoding="utf-8")
