"""Generate the synthetic demo cohort and check it matches the patient sheet in use."""

import pandas as pd

from radiotx import demo, logs

logs.to_file(snakemake.log[0])
p = snakemake.params
written = demo.generate(
    p.outdir,
    n_patients=p.n_patients,
    seed=p.seed,
    rnaseq_missing=p.rnaseq_missing,
    site_bias_mm=p.site_bias_mm,
)
expected = pd.read_csv(p.sheet, sep="\t", dtype=str, keep_default_na=False)
if not written.astype(str).reset_index(drop=True).equals(expected.reset_index(drop=True)):
    raise SystemExit(
        f"{p.sheet} does not match the demo settings in the config. Fix: regenerate it with "
        f"`python -m radiotx.demo --outdir {p.outdir} --n-patients {p.n_patients} "
        f"--seed {p.seed} --rnaseq-missing {p.rnaseq_missing} --sheet-only {p.sheet}`"
    )
