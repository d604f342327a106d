"""Every binary endpoint's models by subgroup, and the accuracy/fairness trade-off of the
mitigations fitted inside the outer folds."""

import json
from pathlib import Path

import pandas as pd

from radiotx import logs
from radiotx.fairness import audit, outer, subgroups

logs.to_file(snakemake.log[0])
p = snakemake.params
settings = audit.Settings.from_config(p.fairness, p.seed)
groups = subgroups.read(snakemake.input.subgroups)


def key(path):  # results/models/{endpoint}/{pipeline}/{model}/predictions.tsv
    return tuple(Path(path).parts[-4:-1])


predictions = {
    key(path): pd.read_csv(path, sep="\t", dtype={"patient_id": str})
    for path in snakemake.input.predictions
}
metrics, gaps = audit.model_tables(predictions, groups, settings)
folds: dict[tuple, list] = {}  # (endpoint, pipeline) -> every outer fold's results
for path in snakemake.input.folds:
    parts = Path(path).parts  # results/models/{endpoint}/{pipeline}/outer/r0f0.json
    folds.setdefault(parts[-4:-2], []).append(json.loads(Path(path).read_text())["results"])
mitigated = {
    (*pipeline, model): outer.collect(results, model)
    for pipeline, results in folds.items()
    for model in outer.mitigated_models(results)
}
mitigation = audit.mitigation_table(predictions, mitigated, groups, settings)
metrics.to_csv(snakemake.output.subgroups, sep="\t", index=False)
gaps.to_csv(snakemake.output.disparities, sep="\t", index=False)
mitigation.to_csv(snakemake.output.mitigation, sep="\t", index=False)
audit.plot_tradeoff(mitigation, snakemake.output.plot, settings.mitigate)
Path(snakemake.output.markdown).write_text(
    audit.models_markdown(gaps, mitigation, settings, metrics), encoding="utf-8"
)
