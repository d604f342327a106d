"""QC record of one patient's RNA-seq sample (a failing sample is recorded, not raised)."""

import json

from radiotx import logs
from radiotx.features import rnaseq

logs.to_file(snakemake.log[0])
p = snakemake.params
entry = rnaseq.qc_record(
    p.path,
    snakemake.wildcards.patient,
    p.thresholds,
    strand=p.strand,
    values=p.values,
    on_fail=p.on_fail,
)
with open(snakemake.output[0], "w", encoding="utf-8") as handle:
    json.dump(entry, handle, indent=2)
