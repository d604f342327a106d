"""The patient sheet of a study without one: the patients of the expression matrix or of
the clinical table, with no per-patient files."""

from radiotx import cohort, logs

logs.to_file(snakemake.log[0])
sheet = cohort.sheet_of(snakemake.params.patients)
sheet.to_csv(snakemake.output[0], sep="\t", index=False)
