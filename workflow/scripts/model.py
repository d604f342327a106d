"""Nested CV of one (endpoint, pipeline, classifier) on the stored outer folds."""

from pathlib import Path

import pandas as pd

from radiotx import cohort, experiment, logs, splits

logs.to_file(snakemake.log[0])
w = snakemake.wildcards
perturbed = snakemake.input.perturbed
experiment.run(
    cohort.read(snakemake.input.cohort),
    splits.read(snakemake.input.folds),
    endpoint=w.endpoint,
    pipeline=w.pipeline,
    modalities=list(snakemake.params.modalities),
    classifier=w.classifier,
    settings=experiment.Settings.from_params(snakemake.params.settings),
    outdir=Path(snakemake.output.metrics).parent,
    perturbed=pd.read_parquet(perturbed) if perturbed else None,
)
