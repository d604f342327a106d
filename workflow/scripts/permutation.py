"""One draw of the permutation null: the whole procedure on shuffled labels."""

import json

import pandas as pd

from radiotx import cohort, experiment, logs, splits

logs.to_file(snakemake.log[0])
w = snakemake.wildcards
perturbed = snakemake.input.perturbed
auc = experiment.permuted(
    cohort.read(snakemake.input.cohort),
    splits.read(snakemake.input.folds),
    index=int(w.index),
    settings=experiment.Settings.from_params(snakemake.params.settings),
    endpoint=w.endpoint,
    pipeline=w.pipeline,
    modalities=list(snakemake.params.modalities),
    classifier=w.classifier,
    perturbed=pd.read_parquet(perturbed) if perturbed else None,
)
with open(snakemake.output[0], "w", encoding="utf-8") as handle:
    json.dump({"index": int(w.index), "roc_auc": auc}, handle)
