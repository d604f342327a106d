"""Cohort ICC(3,1) of every radiomics feature under ROI perturbation."""

import pandas as pd

from radiotx import logs, stability

logs.to_file(snakemake.log[0])
perturbed = pd.concat(pd.read_parquet(path) for path in snakemake.input)
perturbed.to_parquet(snakemake.output.perturbed)
table = stability.stability_table(perturbed, snakemake.params.threshold)
table.to_csv(snakemake.output.table, sep="\t")
