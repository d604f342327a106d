"""Every patient's group under each fairness attribute, from the clinical table."""

from radiotx import cohort, logs
from radiotx.fairness import subgroups

logs.to_file(snakemake.log[0])
p = snakemake.params
table = cohort.read_clinical(snakemake.input.clinical, p.id_column)
patients = cohort.read_sheet(snakemake.input.sheet).index
attributes = subgroups.attributes_from_config({"attributes": p.attributes})
groups = subgroups.subgroups(table, attributes, patients, path=snakemake.input.clinical)
subgroups.write(groups, snakemake.output[0])
