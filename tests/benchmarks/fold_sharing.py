"""Wall time of the modelling grid with and without the per-fold sharing of preprocessing.

The example study config/examples/nsclc_radiogenomics.yaml (3 classifiers plus the
"selected" model; ANOVA and mRMR; k 10 and 30; SMOTE and class weights) runs on the real
NSCLC data: every outer fold of each pipeline is tuned once with one cached grid search
shared by all classifiers (the workflow's outer-fold job), and once with a separate search
per classifier and for the selected model (no sharing). Both must give the same
predictions; the script prints both wall times and their ratio.

    .venv/bin/python tests/benchmarks/fold_sharing.py [--endpoint recurrence] [--folds 5]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import yaml
from sklearn.model_selection import ParameterGrid

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("RADIOTX_DATA", REPO.parent / "shared" / "data" / "nsclc-radiogenomics"))
EXAMPLE = REPO / "config" / "examples" / "nsclc_radiogenomics.yaml"


def build_cohort(workdir: Path, endpoint: str) -> dict:
    """The example study's cohort and splits, made by the workflow in ``workdir``."""
    text = EXAMPLE.read_text(encoding="utf-8").replace("resources/nsclc-radiogenomics", str(DATA))
    config = yaml.safe_load(text)
    config["radiomics"]["params"] = str(REPO / config["radiomics"]["params"])
    (workdir / "config").mkdir(parents=True)
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    subprocess.run(
        [sys.executable, "-m", "snakemake", "work/cohort.h5mu",
         f"work/splits/{endpoint}.tsv", "--snakefile", str(REPO / "Snakefile"),
         "--directory", str(workdir), "--cores", "2", "--quiet", "all"],
        check=True, cwd=workdir,
    )  # fmt: skip
    return config


def settings_of(config: dict):
    from radiotx import experiment

    model, cv = config["model"], config["cv"]
    return experiment.Settings(
        seed=config["seed"],
        inner_folds=cv["inner_folds"],
        k_features=tuple(model["k_features"]),
        smote_neighbors=model["smote_neighbors"],
        selectors=tuple(model["selectors"]),
        balancers=tuple(model["balancers"]),
        candidates=tuple(model["classifiers"]),
        select=model["select_classifier"],
        n_boot=cv["bootstrap"],
        rnaseq=config["rnaseq"]["preprocess"],
    )


def timed(job, folds: list[int]) -> tuple[float, dict]:
    start = time.perf_counter()
    results = {fold: job.evaluate_fold(0, fold) for fold in folds}
    return time.perf_counter() - start, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", default="recurrence")
    parser.add_argument("--folds", type=int, default=5, help="outer folds to time (of 5)")
    parser.add_argument("--pipelines", nargs="*", default=["ct_radiomics", "rnaseq", "clinical"])
    args = parser.parse_args()
    if not (DATA / "clinical.csv").exists():
        sys.exit(f"the NSCLC data is not at {DATA} (set RADIOTX_DATA)")
    sys.path.insert(0, str(REPO / "src"))
    from radiotx import cohort, experiment, splits

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        config = build_cohort(workdir, args.endpoint)
        mdata = cohort.read(workdir / "work/cohort.h5mu")
        table = splits.read(workdir / f"work/splits/{args.endpoint}.tsv")
    settings = settings_of(config)
    rows = []
    for pipeline in args.pipelines:
        job = {
            "endpoint": args.endpoint,
            "pipeline": pipeline,
            "modalities": config["pipelines"][pipeline],
        }
        folds = list(range(args.folds))
        shared = experiment.procedure(mdata, table, settings=settings, **job)
        alone = experiment.procedure(mdata, table, settings=replace(settings, share=False), **job)
        t_shared, r_shared = timed(shared, folds)
        t_alone, r_alone = timed(alone, folds)
        for fold in folds:
            for name, part in r_shared[fold].items():
                pd.testing.assert_frame_equal(part.predictions, r_alone[fold][name].predictions)
        rows.append(
            {
                "pipeline": pipeline,
                "patients": len(shared.y),
                "features": shared.X.shape[1],
                "candidates": sum(len(ParameterGrid(s)) for s in shared.spaces.values()),
                "shared (s)": round(t_shared, 1),
                "separate (s)": round(t_alone, 1),
                "ratio": round(t_alone / t_shared, 2),
            }
        )
        print(pd.DataFrame(rows[-1:]).to_string(index=False), flush=True)
    table = pd.DataFrame(rows)
    total = table[["shared (s)", "separate (s)"]].sum()
    print(f"\n{args.endpoint}, {args.folds} outer folds, identical predictions in both modes")
    print(table.to_string(index=False))
    print(
        f"total: shared {total['shared (s)']:.0f} s, separate {total['separate (s)']:.0f} s, "
        f"ratio {total['separate (s)'] / total['shared (s)']:.2f}"
    )


if __name__ == "__main__":
    main()
