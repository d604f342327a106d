"""Time and peak memory of building the workflow's job graph (`snakemake -n`) for a large
synthetic cohort, against the same dry run for a small one measured in the same session.

    .venv/bin/python tests/benchmarks/dag.py [--patients 1000] [--peer 100] [--repeats 3]

Each study is the default config with the demo's patient sheet (every modality, both
endpoints, all pipelines); only the number of patients differs. The dry run resolves every
per-patient job, so its cost grows with the sheet; the target is under 20 s for 1,000 patients.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from radiotx import demo

REPO = Path(__file__).resolve().parents[2]


def write_study(workdir: Path, n_patients: int) -> None:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))
    config["demo"]["n_patients"] = n_patients
    config["radiomics"]["params"] = str(REPO / "config" / "radiomics" / "ct_demo.yaml")
    (workdir / "config").mkdir(parents=True)
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    sheet = demo.patient_sheet(config["demo"]["outdir"], n_patients, seed=config["seed"])
    sheet.to_csv(workdir / config["patients"], sep="\t", index=False)


def dry_run(workdir: Path) -> tuple[float, float, int]:
    """Wall seconds, peak resident memory (MiB) and job count of one `snakemake -n`."""
    command = [
        sys.executable, "-c",
        "import resource, sys; from snakemake.cli import main; "
        "code = 0\ntry: main(sys.argv[1:])\nexcept SystemExit as stop: code = stop.code\n"
        "print('maxrss_kib', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(code)",
        "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), "-n", "--cores", "2",
        "--quiet", "rules",
    ]  # fmt: skip
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, cwd=workdir, check=True)
    seconds = time.perf_counter() - start
    maxrss = int(re.search(r"maxrss_kib (\d+)", result.stdout)[1]) / 1024
    total = int(re.search(r"^total\s+(\d+)", result.stdout, re.MULTILINE)[1])
    return seconds, maxrss, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--peer", type=int, default=100, help="patients of the peer study")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory(prefix="radiotx-dag-") as tmp:
        for n in (args.peer, args.patients):
            workdir = Path(tmp) / f"n{n}"
            workdir.mkdir()
            write_study(workdir, n)
            runs = [dry_run(workdir) for _ in range(args.repeats)]
            rows[n] = (min(r[0] for r in runs), max(r[1] for r in runs), runs[0][2])
    print(f"{'patients':>8} {'jobs':>6} {'dry run s (best)':>17} {'peak MiB':>9}")
    for n, (seconds, mib, jobs) in rows.items():
        print(f"{n:>8} {jobs:>6} {seconds:>17.1f} {mib:>9.0f}")
    big, small = rows[args.patients], rows[args.peer]
    print(
        f"{args.patients} vs {args.peer} patients: x{big[0] / small[0]:.2f} time, "
        f"x{big[1] / small[1]:.2f} memory, x{big[2] / small[2]:.2f} jobs"
    )
    verdict = "meets" if big[0] < 20 else "misses"
    print(f"{args.patients} patients: {big[0]:.1f} s, {verdict} the 20 s target")


if __name__ == "__main__":
    main()
