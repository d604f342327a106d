"""Per-rule totals of Snakemake benchmark files: jobs, wall and CPU seconds, peak memory."""

import sys
from pathlib import Path

import pandas as pd


def summarise(folder: Path) -> pd.DataFrame:
    rows = []
    for path in sorted(folder.rglob("*.tsv")):
        table = pd.read_csv(path, sep="\t")
        rule = path.relative_to(folder).parts[0]
        rows.append({"rule": rule, "s": table["s"].mean(), "cpu_time": table["cpu_time"].mean(),
                     "max_rss": table["max_rss"].max()})  # fmt: skip
    if not rows:
        raise SystemExit(f"no benchmark files under {folder}: run the workflow first")
    jobs = pd.DataFrame(rows)
    return jobs.groupby("rule").agg(
        jobs=("s", "size"),
        wall_s=("s", "sum"),
        cpu_s=("cpu_time", "sum"),
        mean_wall_s=("s", "mean"),
        peak_rss_mb=("max_rss", "max"),
    )


if __name__ == "__main__":
    print(summarise(Path(sys.argv[1] if len(sys.argv) > 1 else "benchmarks")).round(1))
