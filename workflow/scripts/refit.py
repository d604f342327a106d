"""The final models of one (endpoint, pipeline): the inner-CV tuning of each classifier
on every development patient."""

from pathlib import Path

import joblib

from radiotx import experiment, logs

logs.to_file(snakemake.log[0])
w = snakemake.wildcards
job = experiment.from_job(snakemake.input, w, snakemake.params)
fitted = job.refit()
for path in snakemake.output:
    joblib.dump(fitted[Path(path).parent.name], path)
