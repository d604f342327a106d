"""One outer fold of one (endpoint, pipeline): every classifier tuned by inner CV on the
fold's training patients (preprocessing shared between them) and scored on its test
patients; the models named in config explain.shap explained there by SHAP, and those of
config fairness.mitigate mitigated there (fitted on the same training patients)."""

import json

from radiotx import experiment, logs
from radiotx.explain import tabular
from radiotx.fairness import outer, subgroups

logs.to_file(snakemake.log[0])
w = snakemake.wildcards
job = experiment.from_job(snakemake.input, w, snakemake.params)
shap = tabular.Options.from_config(snakemake.params.explain)  # models to explain by SHAP
groups = subgroups.read(snakemake.input.subgroups) if snakemake.input.subgroups else None
mitigate = outer.Options.from_config(snakemake.params.mitigate, groups)
results = job.evaluate_fold(int(w.repeat), int(w.fold), shap=shap, mitigate=mitigate)
with open(snakemake.output[0], "w", encoding="utf-8") as handle:
    json.dump(
        {
            "meta": job.meta,
            "results": {name: part.to_dict() for name, part in results.items()},
        },
        handle,
        default=lambda value: value.item(),  # numpy scalars
    )
