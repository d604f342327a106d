"""log1p(CPM) expression of one patient's RNA-seq sample, after its QC passed."""

import json

from radiotx import logs
from radiotx.features import qa, rnaseq, write_row

logs.to_file(snakemake.log[0])
patient = snakemake.wildcards.patient
with open(snakemake.input.qc, encoding="utf-8") as handle:
    entry = json.load(handle)
qa.raise_if_failed(entry)
p = snakemake.params
features = rnaseq.extract(entry["rnaseq"], patient, target_sum=p.target_sum, strand=p.strand)
write_row(features, patient, snakemake.output[0])
