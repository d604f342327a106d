"""One model's results, from the outer-fold jobs of its (endpoint, pipeline), and its
final model, from their refit job."""

import json
from pathlib import Path

import joblib

from radiotx import evaluate, experiment, logs

logs.to_file(snakemake.log[0])
classifier = snakemake.wildcards.classifier
parts = []
for path in snakemake.input.folds:
    fold = json.loads(Path(path).read_text(encoding="utf-8"))
    parts.append(evaluate.FoldResult.from_dict(fold["results"][classifier]))
experiment.write_model(
    evaluate.NestedCVResult.combine(parts),
    fold["meta"],
    classifier,
    experiment.Settings.from_params(snakemake.params.settings),
    Path(snakemake.output.metrics).parent,
    tuned=joblib.load(snakemake.input.refit)[classifier],
)
