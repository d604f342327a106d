"""Wall time of the demo workflow and of the NSCLC example's permutation test: this
checkout against an earlier commit (a git worktree), measured in the same run.

For each version the demo cohort (``make demo``'s workflow) and the NSCLC study's cohort
and splits are made first, untimed (the set-up); then the whole demo workflow
(``snakemake --profile profiles/default``, every job) and the permutation draws of one
endpoint and pipeline of ``config/examples/nsclc_radiogenomics.yaml`` (each draw re-runs
every model's whole nested CV), then that pipeline's refit job (the final models), are
timed, one version after the other. Both versions use this checkout's virtual environment; each
runs its own library (``PYTHONPATH``). The script prints both times, their ratio and
the per-rule job-seconds of the demo (from the rules' ``benchmark:`` files).

    .venv/bin/python tests/benchmarks/speed.py --base 7c371c8
    .venv/bin/python tests/benchmarks/speed.py --base 7c371c8 --only permutation \
        --permutations 20 --endpoint recurrence --pipeline rnaseq
    .venv/bin/python tests/benchmarks/speed.py --base 7c371c8 --only permutation \
        --permutations 2 --endpoint egfr --pipeline fusion --modalities rnaseq,clinical

The NSCLC data is read from ``RADIOTX_DATA`` (default ``../shared/data/nsclc-radiogenomics``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("RADIOTX_DATA", REPO.parent / "shared" / "data" / "nsclc-radiogenomics"))
EXAMPLE = Path("config/examples/nsclc_radiogenomics.yaml")
sys.path.insert(0, str(Path(__file__).parent))
from rules import summarise  # noqa: E402


def checkout(rev: str | None, where: Path) -> Path:
    """This working tree (``rev`` None) or a worktree of ``rev``, as a fresh copy of its
    tracked files (no results, no earlier benchmark files)."""
    target = where / (rev or "current")
    if rev is None:
        files = subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, check=True,
            capture_output=True, text=True,
        ).stdout.split()  # fmt: skip
        for name in files:
            if (REPO / name).is_file():
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / name, target / name)
    else:
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(target), rev], cwd=REPO, check=True,
            capture_output=True,
        )  # fmt: skip
    return target


def run(tree: Path, *args: str) -> float:
    """Seconds of ``snakemake *args`` in ``tree`` with that tree's library."""
    env = dict(os.environ, PYTHONPATH=str(tree / "src"))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    started = time.perf_counter()
    done = subprocess.run(["snakemake", *args], cwd=tree, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode:
        sys.exit(f"snakemake {' '.join(args)} failed in {tree}:\n{done.stderr[-4000:]}")
    return seconds


def demo(tree: Path) -> tuple[float, pd.DataFrame]:
    run(tree, "--profile", "profiles/default", "resources/demo/ground_truth.json")  # set-up
    seconds = run(tree, "--profile", "profiles/default")
    return seconds, summarise(tree / "benchmarks")


def permutation(
    tree: Path, endpoint: str, pipeline: str, n: int, modalities: list[str] | None = None
) -> tuple[float, float]:
    """Seconds of ``n`` permutation draws, then of the refit job (the final models), of
    one endpoint and pipeline of the NSCLC example (``modalities``: a pipeline of its own,
    such as a fusion)."""
    config = yaml.safe_load((tree / EXAMPLE).read_text(encoding="utf-8"))
    config["cv"]["permutations"] = n
    config["pipelines"] = {pipeline: modalities or config["pipelines"][pipeline]}
    config["endpoints"] = {endpoint: config["endpoints"][endpoint]}
    # a study folder of its own (a copy of the tree), the example as its whole config
    study = tree.parent / f"{tree.name}-nsclc"
    shutil.copytree(
        tree, study, ignore=shutil.ignore_patterns("results", "work", "resources", ".git")
    )
    (study / "config" / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    (study / "resources").mkdir()
    (study / "resources" / "nsclc-radiogenomics").symlink_to(DATA)
    # jobs write under work/ since results are published at the end; earlier, in results/
    prefix = "work" if "pathvars" in (tree / "workflow/rules/common.smk").read_text() else "results"
    run(study, f"{prefix}/cohort.h5mu", f"{prefix}/splits/{endpoint}.tsv", "--cores", "2")
    draws = [f"{prefix}/permutations/{endpoint}/{pipeline}/{i}.json" for i in range(n)]
    seconds = run(study, *draws, "--profile", "profiles/default")
    refit = f"{prefix}/models/{endpoint}/{pipeline}/refit.joblib"
    return seconds, run(study, refit, "--profile", "profiles/default")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the earlier commit to compare with")
    parser.add_argument("--only", choices=["demo", "permutation"], help="time one of the two")
    parser.add_argument("--endpoint", default="recurrence")
    parser.add_argument("--pipeline", default="rnaseq")
    parser.add_argument("--permutations", type=int, default=20)
    parser.add_argument(
        "--modalities", type=lambda text: text.split(","), help="comma-separated modalities "
        "of --pipeline when the example has no such pipeline (a fusion: rnaseq,clinical)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.only != "demo" and not (DATA / "clinical.csv").exists():
        sys.exit(f"the NSCLC data is not at {DATA} (set RADIOTX_DATA, or --only demo)")
    rows, rules = [], {}
    with tempfile.TemporaryDirectory(prefix="radiotx-speed-") as tmp:
        trees = {"before": checkout(args.base, Path(tmp)), "now": checkout(None, Path(tmp))}
        try:
            for label, tree in trees.items():
                row = {"code": label}
                if args.only != "permutation":
                    row["demo (s)"], rules[label] = demo(tree)
                if args.only != "demo":
                    row[f"{args.permutations} permutations (s)"], row["refit (s)"] = permutation(
                        tree, args.endpoint, args.pipeline, args.permutations, args.modalities
                    )
                rows.append(row)
                print(pd.DataFrame([row]).to_string(index=False), flush=True)
        finally:
            subprocess.run(["git", "worktree", "prune"], cwd=REPO, check=False)
    table = pd.DataFrame(rows).set_index("code")
    print(f"\nbefore: {args.base}; now: this checkout ({os.cpu_count()} cores)")
    print(table.to_string())
    print("ratio (before / now):")
    print((table.loc["before"] / table.loc["now"]).round(2).to_string())
    if rules:
        seconds = pd.DataFrame({label: frame["wall_s"] for label, frame in rules.items()})
        seconds["ratio"] = (seconds["before"] / seconds["now"]).round(2)
        print("\ndemo job-seconds per rule:")
        print(seconds.sort_values("before", ascending=False).round(1).to_string())


if __name__ == "__main__":
    main()
