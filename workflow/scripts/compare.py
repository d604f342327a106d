"""Fusion strategies against single-modality baselines on identical folds, for one endpoint."""

import json
from pathlib import Path

import pandas as pd

from radiotx import compare, logs

logs.to_file(snakemake.log[0])
fused = set(snakemake.params.fused)
metrics = [json.loads(Path(path).read_text(encoding="utf-8")) for path in snakemake.input.metrics]
predictions = {
    (m["pipeline"], m["classifier"]): pd.read_csv(path, sep="\t")
    for m, path in zip(metrics, snakemake.input.predictions, strict=True)
}
availability = pd.read_csv(snakemake.input.availability, sep="\t", index_col=0)
out = snakemake.output
compare.comparisons(predictions, fused).to_csv(out.tests, sep="\t", index=False)
compare.by_availability(predictions, availability).to_csv(out.patterns, sep="\t", index=False)
compare.contributions(metrics).to_csv(out.contributions, sep="\t", index=False)
compare.plot_strategies(
    compare.model_table(metrics, fused), out.figure, title=snakemake.wildcards.endpoint
)
