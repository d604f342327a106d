"""SHAP explanations of one model over its outer folds (computed by the outer-fold jobs on
their test patients): global importance, per-patient values, stability of the top features
across folds and the summary figure."""

from radiotx import logs
from radiotx.explain import tabular

logs.to_file(snakemake.log[0])
w = snakemake.wildcards
tabular.write(
    tabular.fold_explanations(snakemake.input.folds, w.classifier),
    snakemake.output,
    top_k=snakemake.params.top_k,
    title=f"{w.pipeline} / {w.classifier}: SHAP, out of fold",
)
