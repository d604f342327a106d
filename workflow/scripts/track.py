"""Log this workflow invocation to MLflow: one parent run, a child run per model."""

import json
from pathlib import Path

import radiotx
from radiotx import logs, track

logs.to_file(snakemake.log[0])
p = snakemake.params
uri = p.tracking_uri or track.default_tracking_uri("results")
result = track.log_study(
    uri,
    p.study,
    [Path(path).parent for path in snakemake.input.models],
    run_name=p.study,
    params=dict(p.config),
    tags={"mlflow.source.name": "radiotx workflow", "radiotx.version": radiotx.__version__},
    artifacts=[*snakemake.input.summary, *snakemake.input.config],
)
Path(snakemake.output[0]).write_text(json.dumps(result, indent=2), encoding="utf-8")
