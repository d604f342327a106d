"""The locked hold-out set, scored once by one final model."""

import json
from pathlib import Path

import joblib

from radiotx import cohort, experiment, logs, splits

logs.to_file(snakemake.log[0])
summary, predictions = experiment.score_holdout(
    joblib.load(snakemake.input.model),
    cohort.read(snakemake.input.cohort),
    splits.read(snakemake.input.folds),
    endpoint=snakemake.wildcards.endpoint,
    modalities=list(snakemake.params.modalities),
    settings=experiment.Settings.from_params(snakemake.params.settings),
)
predictions.to_csv(snakemake.output.predictions, sep="\t", index=False)
Path(snakemake.output.metrics).write_text(json.dumps(summary, indent=2), encoding="utf-8")
