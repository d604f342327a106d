"""The crops of the external unlabelled images that SimCLR pretraining also sees."""

import numpy as np

from radiotx import cohort, logs
from radiotx.features import deep, qa

logs.to_file(snakemake.log[0])
sheet = cohort.read_sheet(snakemake.input.sheet)
study = cohort.read_sheet(snakemake.input.study)
crops = deep.unlabelled_crops(
    sheet,
    study.index,
    deep.CropSettings.from_config(snakemake.params.crop),
    qa.Settings(**snakemake.params.settings),
    snakemake.input.sheet,
)
np.save(snakemake.output[0], crops)
