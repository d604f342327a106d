"""One draw of the permutation null: every classifier's whole procedure on shuffled labels."""

import json

from radiotx import experiment, logs

logs.to_file(snakemake.log[0])
w = snakemake.wildcards
job = experiment.from_job(snakemake.input, w, snakemake.params)
with open(snakemake.output[0], "w", encoding="utf-8") as handle:
    json.dump({"index": int(w.index), "roc_auc": experiment.permuted(job, int(w.index))}, handle)
