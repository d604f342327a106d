"""A cohort QA table (radiomics or RNA-seq): one row per patient, failures included."""

from radiotx import logs
from radiotx.features import qa

logs.to_file(snakemake.log[0])
qa.table(snakemake.input).to_csv(snakemake.output[0], sep="\t", index=False)
