"""The workflow's radiomics extraction against pyradiomics' own batch command line.

Both extract the five real cases of pyradiomics' test data (see ``tests/pyradiomics_cases.py``)
with one parameter file and two parallel jobs: (a) ``snakemake --cores 2`` on the per-patient
feature files of a fresh study folder, (b) ``pyradiomics cases.csv --param P --jobs 2``. The
script prints both wall times, their ratio (workflow / CLI) and the largest difference between
the two feature tables, which should be zero up to rounding since the settings are the same.
It also times the CLI with ``--jobs 1``: for a handful of cases pyradiomics' batch mode gives
them all to one worker of its pool, so ``--jobs 2`` runs them one after the other.

``--ct512`` also measures one extraction on a 512 x 512 x 100 CT (lung1 resampled along z,
written to a temporary folder): wall time and peak memory of the workflow's jobs (their
resident memory polled every 50 ms) and of the same extraction by the pyradiomics CLI
(``/usr/bin/time -v``), with
the parameter file as given and with its resampling removed, so that every filter runs on the
whole 512 x 512 x 100 grid instead of the region around the ROI (pyradiomics crops to the ROI
and ``padDistance`` when it resamples).

    .venv/bin/python tests/benchmarks/radiomics_cli.py [--repeats 3] [--ct512]
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyradiomics_cases import (  # noqa: E402
    BASELINE_PARAMS,
    CASES,
    case_files,
    cases_dir,
    feature_targets,
    read_features,
    snakemake,
    snakemake_command,
    write_study,
)

DEFAULT_PARAMS = BASELINE_PARAMS / "all_filters.yaml"
PYRADIOMICS = Path(sys.executable).parent / "pyradiomics"


def run_workflow(workdir: Path, data: Path, params: Path, cases, cores: int) -> float:
    """Wall seconds of a fresh study's feature extraction."""
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    write_study(workdir, data, params, cases)
    start = time.perf_counter()
    snakemake(workdir, *feature_targets(cases), cores=cores)
    return time.perf_counter() - start


def cli_command(cases_csv: Path, params: Path, out: Path, jobs: int) -> list[str]:
    return [
        str(PYRADIOMICS), str(cases_csv), "--param", str(params), "--jobs", str(jobs),
        "-o", str(out), "-f", "csv",
    ]  # fmt: skip


def write_cases_csv(path: Path, rows) -> Path:
    pd.DataFrame(rows, columns=["ID", "Image", "Mask"]).to_csv(path, index=False)
    return path


def run_cli(folder: Path, data: Path, params: Path, cases, jobs: int) -> float:
    """Wall seconds of pyradiomics' batch extraction of the same cases."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    rows = [(case, *map(str, case_files(data, case))) for case in cases]
    command = cli_command(
        write_cases_csv(folder / "cases.csv", rows), params, folder / "out.csv", jobs
    )
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"pyradiomics failed:\n{result.stderr[-4000:]}")
    return seconds


def largest_difference(workdir: Path, cli_out: Path, cases) -> tuple[int, float]:
    """Features compared per case and the largest relative difference workflow vs CLI."""
    table = pd.read_csv(cli_out).set_index("ID")
    largest, counts = 0.0, set()
    for case in cases:
        ours = read_features(workdir, case)
        theirs = table.loc[case, [c for c in table.columns if not c.startswith("diagnostics_")]]
        theirs = theirs.drop(["Image", "Mask"], errors="ignore").astype(float)
        if set(ours.index) != set(theirs.index):
            raise AssertionError(f"{case}: the two feature sets differ")
        a, b = ours[theirs.index].to_numpy(), theirs.to_numpy()
        scale = np.maximum(np.abs(b), 1e-300)
        largest = max(largest, float(np.max(np.where(a == b, 0.0, np.abs(a - b) / scale))))
        counts.add(len(theirs))
    return max(counts), largest


def compare_runs(data: Path, params: Path, root: Path, repeats: int, cores: int) -> None:
    # One untimed round on the smallest case: bytecode, file cache and imports warm up.
    run_workflow(root / "warmup_workflow", data, params, ["breast1"], cores)
    run_cli(root / "warmup_cli", data, params, ["breast1"], cores)
    sides = {
        "workflow": lambda: run_workflow(root / "workflow", data, params, CASES, cores),
        "cli": lambda: run_cli(root / "cli", data, params, CASES, cores),
        "cli_serial": lambda: run_cli(root / "cli_serial", data, params, CASES, 1),
    }
    times = {name: [] for name in sides}
    for i in range(repeats):
        # Rotate the order so that no side always runs first on a freshly idle machine.
        names = list(sides)[i % len(sides) :] + list(sides)[: i % len(sides)]
        for name in names:
            times[name].append(sides[name]())
            print(f"  round {i + 1} {name:<10} {times[name][-1]:7.1f} s", flush=True)
    n_features, diff = largest_difference(root / "workflow", root / "cli" / "out.csv", CASES)
    jobs = pd.concat(
        pd.read_csv(p, sep="\t") for p in (root / "workflow" / "benchmarks").rglob("*.tsv")
    )
    median = {name: statistics.median(values) for name, values in times.items()}
    best = {name: min(values) for name, values in times.items()}
    print(f"\nparams: {params}")
    print(f"cases: {', '.join(CASES)}; {n_features} features per case; {repeats} rounds")
    labels = {
        "workflow": f"workflow (snakemake --cores {cores})",
        "cli": f"pyradiomics CLI (--jobs {cores})",
        "cli_serial": "pyradiomics CLI (--jobs 1)",
    }
    for name, label in labels.items():
        print(f"{label:<36} median {median[name]:6.1f} s, best {best[name]:6.1f} s")
    print(
        f"ratio workflow / CLI --jobs {cores}: {median['workflow'] / median['cli']:.2f} "
        f"(medians), {best['workflow'] / best['cli']:.2f} (best)"
    )
    # pyradiomics' batch mode hands the cases to its pool in chunks of min(10, n_cases), so
    # five cases all go to one worker, and its main process waits in a busy loop: --jobs 2
    # is no faster than --jobs 1 on few cases.
    print(
        f"ratio workflow / CLI --jobs 1: {median['workflow'] / median['cli_serial']:.2f} "
        f"(medians), {best['workflow'] / best['cli_serial']:.2f} (best); target <= 1.00"
    )
    print(f"largest relative difference between the two feature tables: {diff:.1e}")
    print(
        f"radiomics jobs: {len(jobs)}, sum of job wall time {jobs['s'].sum():.1f} s, "
        f"largest Snakemake benchmark max_rss {jobs['max_rss'].max():.0f} MB"
    )


def make_ct512(data: Path, folder: Path, slices: int = 100) -> tuple[Path, Path]:
    """lung1 (512 x 512 x 48, 5 mm slices) resampled along z to ``slices`` slices."""
    image_path, mask_path = case_files(data, "lung1")
    image, mask = sitk.ReadImage(str(image_path)), sitk.ReadImage(str(mask_path))
    size, spacing = list(image.GetSize()), list(image.GetSpacing())
    new_spacing = [spacing[0], spacing[1], size[2] * spacing[2] / slices]
    direction = np.array(image.GetDirection()).reshape(3, 3)
    # Same extent: the first slice centre moves by half the change in slice spacing.
    shift = direction @ np.array([0.0, 0.0, (new_spacing[2] - spacing[2]) / 2])
    grid = sitk.Image([size[0], size[1], slices], image.GetPixelID())
    grid.SetSpacing(new_spacing)
    grid.SetDirection(image.GetDirection())
    grid.SetOrigin(tuple(np.array(image.GetOrigin()) + shift))
    identity = sitk.Transform()
    new_image = sitk.Resample(image, grid, identity, sitk.sitkLinear, -1024, image.GetPixelID())
    new_mask = sitk.Resample(mask, grid, identity, sitk.sitkNearestNeighbor, 0, mask.GetPixelID())
    folder.mkdir(parents=True, exist_ok=True)
    out_image, out_mask = folder / "ct512_image.nrrd", folder / "ct512_label.nrrd"
    sitk.WriteImage(new_image, str(out_image), True)
    sitk.WriteImage(new_mask, str(out_mask), True)
    return out_image, out_mask


def peak_job_rss(
    command: list[str], env: dict, cwd: Path, every: float = 0.05
) -> tuple[float, float]:
    """Run Snakemake; return its wall seconds and the largest RSS (MB) that any of its job
    processes reached, polled every ``every`` seconds. (Snakemake's own benchmark samples
    every 0.5 s for 15 s and every 30 s after that, so it misses short peaks of long jobs.)"""
    import psutil

    start = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    top = psutil.Process(process.pid)
    peak = 0
    while process.poll() is None:
        try:
            children = top.children(recursive=True)
        except psutil.Error:
            children = []
        for child in children:
            with contextlib.suppress(psutil.Error):  # the process has just ended
                peak = max(peak, child.memory_info().rss)
        time.sleep(every)
    seconds = time.perf_counter() - start
    stderr = process.stderr.read()
    if process.returncode != 0:
        raise RuntimeError(f"snakemake failed:\n{stderr[-4000:]}")
    return seconds, peak / 2**20


def measure_ct512(data: Path, params: Path, root: Path) -> None:
    folder = root / "ct512"
    image, mask = make_ct512(data, folder / "data")
    size = sitk.ReadImage(str(image)).GetSize()
    without = yaml.safe_load(params.read_text())
    without["setting"].pop("resampledPixelSpacing", None)
    no_resampling = folder / f"{params.stem}_no_resampling.yaml"
    no_resampling.write_text(yaml.safe_dump(without))
    print(f"\none extraction on a {size[0]} x {size[1]} x {size[2]} CT (lung1 resampled along z)")
    for label, p in [(params.name, params), ("same without resampling", no_resampling)]:
        workdir = folder / f"study_{p.stem}"
        workdir.mkdir(parents=True)
        write_study(workdir, folder / "data", p, cases=())
        sheet = pd.DataFrame([("ct512", str(image), str(mask), "")])
        sheet.columns = ["patient_id", "image", "mask", "rnaseq"]
        sheet.to_csv(workdir / "config" / "patients.tsv", sep="\t", index=False)
        command, env = snakemake_command(workdir, *feature_targets(["ct512"]), cores=1)
        total, job_rss = peak_job_rss(command, env, workdir)
        bench = pd.read_csv(workdir / "benchmarks" / "radiomics" / "ct512.tsv", sep="\t").iloc[0]
        cases_csv = write_cases_csv(folder / "cases.csv", [("ct512", str(image), str(mask))])
        command = cli_command(cases_csv, p, folder / f"cli_{p.stem}.csv", 1)
        start = time.perf_counter()
        timed = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True)
        cli_seconds = time.perf_counter() - start
        rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", timed.stderr)
        cli_rss = f"{int(rss[1]) / 1024:.0f} MB" if rss else "n/a"
        print(f"  {label}:")
        print(
            f"    workflow: radiomics job {bench['s']:.1f} s, peak RSS of any job {job_rss:.0f} MB "
            f"(Snakemake benchmark max_rss {bench['max_rss']:.0f} MB); "
            f"whole run incl. QA job {total:.1f} s"
        )
        print(f"    pyradiomics CLI: {cli_seconds:.1f} s, max RSS {cli_rss} (/usr/bin/time -v)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", type=Path, default=DEFAULT_PARAMS)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--ct512", action="store_true", help="also time one 512x512x100 CT")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    data = cases_dir()
    if data is None:
        sys.exit("pyradiomics' test cases are not cached and could not be downloaded")
    root = Path(tempfile.mkdtemp(prefix="radiotx_bench_"))
    try:
        compare_runs(data, args.params.resolve(), root, args.repeats, args.cores)
        if args.ct512:
            measure_ct512(data, args.params.resolve(), root)
    finally:
        if args.keep:
            print(f"\nkept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
