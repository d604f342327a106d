"""Log this workflow invocation to MLflow: one parent run, a child run per model, a run
per outer fold nested in each."""

import json
from pathlib import Path

from radiotx import logs, manifest, pseudonyms, track, tracking

logs.to_file(snakemake.log[0])
p = snakemake.params
study = manifest.read(snakemake.input.manifest)
key = pseudonyms.study_key(pseudonyms.KEY_PATH) if p.pseudonymise else None
result = track.log_study(
    tracking.tracking_uri(p.tracking_uri, "results"),
    p.study,
    [Path(path).parent for path in snakemake.input.models],
    run_name=p.study,
    params=dict(p.config),
    tags={"mlflow.source.name": "radiotx workflow", **track.manifest_tags(study)},
    artifacts=[*snakemake.input.summary, *snakemake.input.config],
    manifest=study,
    pseudonym_key=key,
    register=p.register,
    image_explanations=[Path(path).parent for path in snakemake.input.images],
    fairness=Path(snakemake.input.fairness[0]).parent if snakemake.input.fairness else None,
)
Path(snakemake.output[0]).write_text(json.dumps(result, indent=2), encoding="utf-8")
