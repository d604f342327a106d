"""Image attributions of a supervised encoder per outer fold (first repeat), with their
sanity checks, deletion curves and overlays on the slice through the lesion."""

from pathlib import Path

from radiotx import cohort, logs, splits
from radiotx.explain import images, overlays
from radiotx.features import deep

logs.to_file(snakemake.log[0])
endpoint, out = snakemake.wildcards.endpoint, snakemake.output
mdata = cohort.read(snakemake.input.cohort)
folds = splits.read(snakemake.input.folds)
outer = splits.outer(folds, splits.repeat_ids(folds)[0])
X = cohort.modality_frame(mdata, "deep")
masks = deep.read_masks(snakemake.input.crops)
rows, sanity, maps, curves = images.explain_outer_folds(
    X,
    masks,
    mdata.obs[endpoint],
    outer.loc[outer.index.intersection(X.index)],
    snakemake.params.encoder,
    steps=snakemake.params.explain["steps"],
    seed=snakemake.params.seed,
)
rows.to_csv(out.attributions, sep="\t", index=False)
summary = images.summarise_sanity(sanity)
summary.to_csv(out.sanity, sep="\t", index=False)
sanity.to_csv(Path(out.sanity).with_name("sanity_folds.tsv"), sep="\t", index=False)
overlays.deletion_plot(curves, out.deletion, f"{endpoint}: deletion curves")
size = deep.side(X.shape[1])
for patient in images.overlay_patients(rows, snakemake.params.explain["overlays"]):
    overlays.overlay(
        X.loc[patient].to_numpy().reshape(size, size, size),
        masks[patient],
        maps[patient],
        Path(out.overlays) / f"{patient}.png",
        images.overlay_title(rows, patient, endpoint),
    )
