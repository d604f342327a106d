"""QA record and provenance of one patient's image and mask (bad input is recorded)."""

import json

from radiotx import logs
from radiotx.features import qa

logs.to_file(snakemake.log[0])
p = snakemake.params
entry = qa.record(
    p.image, p.mask, snakemake.input.params, snakemake.wildcards.patient, qa.Settings(**p.settings)
)
with open(snakemake.output[0], "w", encoding="utf-8") as handle:
    json.dump(entry, handle, indent=2)
