"""The study's manifest: resolved config, input checksums, versions, git state, platform."""

from radiotx import logs, manifest

logs.to_file(snakemake.log[0])
inputs = [*snakemake.input.inputs, *snakemake.input.config]
manifest.write(
    manifest.build(dict(snakemake.params.config), inputs, snakemake.params.code),
    snakemake.output[0],
)
