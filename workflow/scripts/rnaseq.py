"""Expression features of one patient's RNA-seq sample, after its QC passed: log1p of CPM
or TPM, or normalised values as given. A sample excluded by QC gets an empty table."""

import json
import logging

from radiotx import logs
from radiotx.features import qa, rnaseq, write_none, write_row

logs.to_file(snakemake.log[0])
patient = snakemake.wildcards.patient
with open(snakemake.input.qc, encoding="utf-8") as handle:
    entry = json.load(handle)
if entry["status"] == "excluded":
    logging.warning("%s excluded by RNA-seq QC: %s", patient, entry["problem"])
    write_none(snakemake.output[0])
else:
    qa.raise_if_failed(entry)
    p = snakemake.params
    features = rnaseq.extract(
        entry["rnaseq"],
        patient,
        target_sum=p.target_sum,
        strand=p.strand,
        values=p.values,
        unit=p.unit,
    )
    write_row(features, patient, snakemake.output[0])
