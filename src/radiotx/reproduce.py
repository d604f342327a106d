"""Re-running a study from its manifest and saying what differs: inputs, code, package
versions and results.

The re-run happens in a fresh working directory, so the original results stay as they are.
There the manifest's resolved config becomes ``config/config.yaml``, and every file the
config or the manifest names by a relative path is linked to the original study's copy,
except what the demo generator makes: a demo study is regenerated from its seed, so its
inputs' checksums test the generator too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from radiotx import manifest as manifests
from radiotx import pseudonyms

# the files of a model that must come out the same
RESULT_FILES = ("metrics.json", "predictions.tsv", "selected_features.tsv")
# in a re-run's working directory: the config digest it re-runs (a retry may use the folder)
MARKER = ".radiotx-reproduce"


@dataclass(frozen=True)
class Difference:
    """One thing that is not as the manifest recorded: ``kind`` is config, input, package,
    code or result; ``recorded`` and ``now`` are short descriptions ("" when absent)."""

    kind: str
    name: str
    recorded: str
    now: str


def package_differences(manifest: dict) -> list[Difference]:
    recorded = manifest.get("packages") or {}
    now = manifests.package_versions(sorted(set(recorded) | set(manifests.PACKAGES)))
    return [
        Difference("package", name, recorded.get(name, ""), now.get(name, ""))
        for name in sorted(set(recorded) | set(now))
        if recorded.get(name, "") != now.get(name, "")
    ]


def code_differences(manifest: dict, code_dir) -> list[Difference]:
    recorded, now = manifest.get("git") or {}, manifests.git_state(code_dir)
    out = []
    if recorded.get("commit") != now.get("commit"):
        out.append(Difference("code", "commit", recorded.get("commit", ""), now.get("commit", "")))
    if recorded.get("dirty") or now.get("dirty"):
        flags = ["yes" if state.get("dirty") else "no" for state in (recorded, now)]
        out.append(Difference("code", "uncommitted changes", *flags))
    return out


def input_differences(manifest: dict, directory) -> list[Difference]:
    """Each input whose content is not the recorded one, resolved against ``directory``."""
    out = []
    for path, recorded in sorted((manifest.get("inputs") or {}).items()):
        where = Path(path) if Path(path).is_absolute() else Path(directory) / path
        if not where.exists():
            out.append(Difference("input", path, recorded[:12], "missing"))
            continue
        now = manifests.checksums([where])[str(where)]
        if now != recorded:
            out.append(Difference("input", path, recorded[:12], now[:12]))
    return out


def _relative_paths(value) -> list[str]:
    """Every string in a config that could be a relative path."""
    if isinstance(value, dict):
        return [p for v in value.values() for p in _relative_paths(v)]
    if isinstance(value, list):
        return [p for v in value for p in _relative_paths(v)]
    if isinstance(value, str) and value and not os.path.isabs(value) and ":" not in value:
        return [value]
    return []


def stage(manifest: dict, source, workdir) -> Path:
    """Prepare ``workdir`` for the re-run: the recorded config, and links to the files of
    the study in ``source`` that it names (relative paths). Returns the config path."""
    source, workdir = Path(source).resolve(), Path(workdir).resolve()
    config = manifest["config"]
    demo_dir = Path(config["demo"]["outdir"]) if config.get("demo") else None
    # the demo generator writes these: a link would let it write into the original study
    generated = {config["clinical"]["table"]} if demo_dir else set()
    for path in {*_relative_paths(config), *(manifest.get("inputs") or {})}:
        original = source / path
        if os.path.isabs(path) or not original.exists() or path in generated:
            continue
        if demo_dir is not None and demo_dir in (Path(path), *Path(path).parents):
            continue
        target = workdir / path
        if target.exists() or target.is_symlink():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(original)
    config_path = workdir / "config" / "config.yaml"
    config_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return config_path


def result_differences(recorded_results, results) -> list[Difference]:
    """Each model output file that is missing from, added to or different in ``results``
    (compared byte for byte), with the pooled primary metric when metrics differ."""
    recorded_files = _model_files(recorded_results)
    files = _model_files(results)
    out = []
    for name in sorted(recorded_files.keys() | files.keys()):
        old, new = recorded_files.get(name), files.get(name)
        if old is None or new is None:
            out.append(Difference("result", name, "" if old is None else "present",
                                  "" if new is None else "present"))  # fmt: skip
        elif old.read_bytes() != new.read_bytes():
            out.append(Difference("result", name, *_describe(old, new)))
    return out


def metric_differences(recorded: dict[str, dict[str, float]], results) -> list[Difference]:
    """Each pooled metric logged to MLflow (``recorded``: model run name -> metrics) that the
    re-run's metrics.json files do not reproduce exactly."""
    found = [
        json.loads(path.read_text(encoding="utf-8"))
        for path in sorted((Path(results) / "models").glob("*/*/*/metrics.json"))
    ]
    several = len({m["endpoint"] for m in found}) > 1
    now = {
        (f"{m['endpoint']}/" if several else "") + f"{m['pipeline']}/{m['classifier']}": m
        for m in found
    }
    out = []
    for name in sorted(recorded.keys() | now.keys()):
        if name not in recorded or name not in now:
            out.append(Difference("result", name, "logged" if name in recorded else "",
                                  "present" if name in now else ""))  # fmt: skip
            continue
        for metric, value in sorted(recorded[name].items()):
            again = now[name]["pooled"].get(metric)
            if again is None or float(again) != float(value):
                out.append(Difference("result", f"{name} {metric}", str(value), str(again)))
    return out


def _model_files(results) -> dict[str, Path]:
    models = Path(results) / "models"
    return {
        str(path.relative_to(models)): path
        for path in sorted(models.rglob("*"))
        if path.name in RESULT_FILES or path.parent.name == "outer"
    }


def _describe(old: Path, new: Path) -> tuple[str, str]:
    if old.name != "metrics.json":
        return "differs", "differs"
    a, b = (json.loads(p.read_text(encoding="utf-8")) for p in (old, new))
    metric = a.get("primary_metric", "roc_auc")
    return (f"{metric} {a['pooled'].get(metric)}", f"{metric} {b['pooled'].get(metric)}")


def run_workflow(workdir, snakefile, cores: int, extra=()) -> subprocess.CompletedProcess:
    command = [
        sys.executable, "-m", "snakemake", "--snakefile", str(snakefile),
        "--directory", str(workdir), "--cores", str(cores), *extra,
    ]  # fmt: skip
    env = dict(os.environ)
    env.pop("MLFLOW_TRACKING_URI", None)  # the re-run logs to its own store
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True)


def report(differences: list[Difference], compared: str) -> str:
    """The differences as a plain-text report, by kind."""
    lines = []
    for kind, title in (
        ("config", "Config"), ("input", "Inputs"), ("package", "Package versions"),
        ("code", "Code"), ("result", "Results"),
    ):  # fmt: skip
        found = [d for d in differences if d.kind == kind]
        if not found:
            what = f"identical ({compared})" if kind == "result" else "as recorded"
            lines.append(f"{title}: {what}")
            continue
        lines.append(f"{title}: {len(found)} differ")
        lines += [f"  {d.name}: recorded {d.recorded or '-'}, now {d.now or '-'}" for d in found]
    return "\n".join(lines)


def named_inputs(recorded: dict, study_dir) -> dict:
    """``recorded`` with its input files named by their paths. A manifest logged to MLflow
    names them by pseudonyms: the study's own results/manifest.json lists the paths and its
    key (:data:`radiotx.pseudonyms.KEY_PATH`) gives their pseudonyms."""
    if not recorded.get("inputs_pseudonymised"):
        return recorded
    study_dir = Path(study_dir)
    key, local = study_dir / pseudonyms.KEY_PATH, study_dir / "results" / "manifest.json"
    missing = [str(path) for path in (key, local) if not path.is_file()]
    if missing:
        raise FileNotFoundError(
            f"the logged manifest names its input files by pseudonyms, and {' and '.join(missing)} "
            "to name them again is missing. Fix: give the study's directory with --study-dir, "
            "or reproduce from the study's results/manifest.json"
        )
    paths = manifests.read(local).get("inputs") or {}
    return pseudonyms.named_inputs(recorded, paths, key.read_text(encoding="utf-8").strip())


def reproduce(
    manifest: dict, source, workdir, snakefile, cores: int = 1, logged: dict | None = None
) -> tuple[list[Difference], str]:
    """Re-run the study recorded in ``manifest``, whose input files are in ``source``, in
    the empty directory ``workdir``, and compare it with what the study recorded: its model
    files in ``source``/results (byte for byte), or, given ``logged`` (MLflow model run
    name -> pooled metrics), those metrics.

    Returns the differences and what was compared. Raises RuntimeError when the re-run fails.
    """
    workdir = Path(workdir).resolve()  # the workflow runs inside it
    marker = workdir / MARKER
    retry = marker.is_file() and marker.read_text(encoding="utf-8") == manifest["config_sha256"]
    if workdir.exists() and any(workdir.iterdir()) and not retry:
        raise FileExistsError(
            f"{workdir} is not empty. Fix: give a new working directory (or the one of an "
            "earlier `radiotx reproduce` of this study, to retry it)"
        )
    workdir.mkdir(parents=True, exist_ok=True)
    marker.write_text(manifest["config_sha256"], encoding="utf-8")
    stage(manifest, source, workdir)
    differences = package_differences(manifest)
    differences += code_differences(manifest, Path(snakefile).resolve().parent)
    run = run_workflow(workdir, snakefile, cores)
    if run.returncode != 0:
        raise RuntimeError(f"the re-run failed (logs in {workdir}/logs):\n{run.stderr[-3000:]}")
    differences += input_differences(manifest, workdir)
    again = manifests.read(workdir / "results" / "manifest.json")["config_sha256"]
    if again != manifest["config_sha256"]:
        differences.append(Difference("config", "config_sha256", manifest["config_sha256"], again))
    if logged is not None:
        differences += metric_differences(logged, workdir / "results")
        compared = f"{sum(map(len, logged.values()))} logged metrics of {len(logged)} models"
    else:
        recorded = Path(source) / "results"
        differences += result_differences(recorded, workdir / "results")
        compared = f"{len(_model_files(recorded))} model files"
    return differences, compared
