"""Learning curve of one (endpoint, pipeline): every model's nested-CV score with each
outer training set cut to a share of its patients, next to the full-size result."""

import json
from pathlib import Path

import pandas as pd

from radiotx import evaluate, experiment, logs, report

logs.to_file(snakemake.log[0])
job = experiment.from_job(snakemake.input, snakemake.wildcards, snakemake.params)
full = {}
for path in snakemake.input.outer:
    fold = json.loads(Path(path).read_text(encoding="utf-8"))
    for name, part in fold["results"].items():
        full.setdefault(name, []).append(evaluate.FoldResult.from_dict(part))
table = pd.concat(
    [
        job.learning_curve(snakemake.params.fractions),
        job.curve_points(
            {name: evaluate.NestedCVResult.combine(parts) for name, parts in full.items()}, 1.0
        ),
    ],
    ignore_index=True,
)
table.to_csv(snakemake.output.table, sep="\t", index=False)
report.plot_learning_curve(table, snakemake.output.plot, title=snakemake.wildcards.pipeline)
