"""log1p(CPM) expression of one patient's RNA-seq sample."""

from radiotx import logs
from radiotx.features import rnaseq, write_row

logs.to_file(snakemake.log[0])
patient = snakemake.wildcards.patient
features = rnaseq.extract(snakemake.input[0], patient, target_sum=snakemake.params.target_sum)
write_row(features, patient, snakemake.output[0])
