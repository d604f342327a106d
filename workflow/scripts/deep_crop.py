"""One patient's ROI crop for the deep modality, after its QA passed."""

import json

from radiotx import logs
from radiotx.features import deep, qa

logs.to_file(snakemake.log[0])
with open(snakemake.input.qa, encoding="utf-8") as handle:
    entry = json.load(handle)
qa.raise_if_failed(entry)
settings = deep.CropSettings.from_config(snakemake.params.crop)
image, mask, _ = qa.load(
    entry["image"],
    entry["mask"],
    snakemake.wildcards.patient,
    qa.Settings(**snakemake.params.settings),
)
deep.write_crop(snakemake.output[0], *deep.crop(image, mask, settings), settings)
