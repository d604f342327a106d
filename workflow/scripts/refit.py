"""The final models of one (endpoint, pipeline): the inner-CV tuning of every model on
every development patient, the preprocessing shared between them."""

import joblib

from radiotx import experiment, logs

logs.to_file(snakemake.log[0])
job = experiment.from_job(snakemake.input, snakemake.wildcards, snakemake.params)
joblib.dump(job.final_models(), snakemake.output[0])
