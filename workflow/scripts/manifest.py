"""The study's manifest: resolved config, input checksums, versions, git state, platform."""

from radiotx import logs, manifest

logs.to_file(snakemake.log[0])
study = manifest.build(
    dict(snakemake.params.config), snakemake.input.inputs, snakemake.params.code,
    config_files=snakemake.input.config,
)  # fmt: skip
manifest.write(study, snakemake.output[0])
