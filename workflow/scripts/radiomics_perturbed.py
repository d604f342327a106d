"""pyradiomics features of one patient's ROI under each configured perturbation."""

import json

from radiotx import logs, stability
from radiotx.features import qa

logs.to_file(snakemake.log[0])
patient = snakemake.wildcards.patient
with open(snakemake.input.qa, encoding="utf-8") as handle:
    entry = json.load(handle)
qa.raise_if_failed(entry)
image, mask, _ = qa.load(
    entry["image"], entry["mask"], patient, qa.Settings(**snakemake.params.settings)
)
table = stability.perturbed_features(
    image, mask, snakemake.input.params, kinds=tuple(snakemake.params.kinds)
)
stability.for_patient(table, patient).to_parquet(snakemake.output[0])
