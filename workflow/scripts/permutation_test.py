"""Permutation p-value of one model: its AUC against the AUCs on shuffled labels."""

import json

from radiotx import logs, permutation

logs.to_file(snakemake.log[0])
with open(snakemake.input.metrics, encoding="utf-8") as handle:
    observed = json.load(handle)["pooled"]["roc_auc"]
null = []
for path in snakemake.input.null:
    with open(path, encoding="utf-8") as handle:
        null.append(json.load(handle)["roc_auc"][snakemake.wildcards.classifier])
with open(snakemake.output[0], "w", encoding="utf-8") as handle:
    json.dump(permutation.summary(observed, null), handle, indent=2)
