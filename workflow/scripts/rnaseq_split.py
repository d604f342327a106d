"""One expression matrix split into per-patient files, so that QC and features run per
patient (and one bad sample fails alone)."""

import logging

from radiotx import logs
from radiotx.features import rnaseq

logs.to_file(snakemake.log[0])
p = snakemake.params
matrix = rnaseq.read_matrix(snakemake.input[0], layer=p.layer)
for path in snakemake.output:
    patient = path.rsplit("/", 1)[-1].removesuffix(".tsv")
    rnaseq.write_sample(matrix.loc[patient], path, kind=p.values)
logging.info("%d patients x %d genes split", len(snakemake.output), matrix.shape[1])
