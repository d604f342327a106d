"""pyradiomics features of one patient's ROI."""

from radiotx import logs
from radiotx.features import radiomics, write_row

logs.to_file(snakemake.log[0])
patient = snakemake.wildcards.patient
features = radiomics.extract(
    snakemake.input.image,
    snakemake.input.mask,
    snakemake.input.params,
    patient,
    label=snakemake.params.label,
)
write_row(features, patient, snakemake.output[0])
