"""pyradiomics features of one patient's ROI, after its QA passed."""

import json

from radiotx import logs
from radiotx.features import qa, radiomics, write_row

logs.to_file(snakemake.log[0])
patient = snakemake.wildcards.patient
with open(snakemake.input.qa, encoding="utf-8") as handle:
    entry = json.load(handle)
qa.raise_if_failed(entry)
features = radiomics.extract_values(
    entry["image"],
    entry["mask"],
    snakemake.input.params,
    patient,
    settings=qa.Settings(**snakemake.params.settings),
)
write_row(features, patient, snakemake.output[0])
