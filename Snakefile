# The workflow lives in workflow/Snakefile; this shim lets `snakemake` run from the top level.
# Snakemake keeps the including file's default target, so hand it the workflow's `all`.


include: "workflow/Snakefile"


workflow.default_target = "all"
