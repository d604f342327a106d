"""One patient-keyed MuData with every modality, the endpoints and the availability mask."""

import logging

from radiotx import cohort, experiment, logs
from radiotx.features import deep, read_rows, rnaseq

logs.to_file(snakemake.log[0])
clinical_cfg = snakemake.params.clinical
path = snakemake.input.clinical
sheet = cohort.read_sheet(snakemake.input.sheet)
table = cohort.for_patients(cohort.read_clinical(path, clinical_cfg["id_column"]), sheet, path)
coverage = snakemake.params.gene_coverage
expression, dropped = rnaseq.common_genes(read_rows(snakemake.input.rnaseq), coverage)
if dropped:
    logging.warning(
        "%d genes are measured in fewer than %.0f%% of the RNA-seq samples and are left out "
        "(first: %s)", len(dropped), 100 * coverage, ", ".join(dropped[:5]),
    )  # fmt: skip
modalities = {
    "radiomics": read_rows(snakemake.input.radiomics),
    "rnaseq": expression,
    "deep": deep.read_crops(snakemake.input.deep),
    "clinical": cohort.encode_clinical(
        table, clinical_cfg["numeric"], clinical_cfg["categorical"], path
    ),
}
for name, spec in snakemake.params.tables.items():
    features = cohort.read_table(spec["path"], spec["id_column"])
    modalities[name] = cohort.for_patients(
        features, sheet, spec["path"], consequence=f"they have no '{name}' features"
    )
batch = snakemake.params.batch
obs = {experiment.BATCH: cohort.batch_labels(table, batch, path)} if batch else {}
labels = {}
for name, spec in snakemake.params.endpoints.items():
    for column, values in cohort.endpoint_columns(table, name, spec, path).items():
        # numeric labels, times and codes; class names of a multiclass endpoint as text
        (labels if values.dtype.kind == "f" else obs)[column] = values
mdata = cohort.build({k: v for k, v in modalities.items() if len(v)}, labels, obs)
cohort.write(mdata, snakemake.output.cohort)
cohort.availability(mdata).to_csv(snakemake.output.availability, sep="\t")
