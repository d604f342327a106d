"""What a study's results came from: the resolved config, checksums of every input file,
package versions, the code's git commit and the platform. Written with the results and
attached to the MLflow runs, so a collaborator can tell whether a re-run used the same
inputs, code and environment."""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path

# The packages whose versions can change a result.
PACKAGES = (
    "radiotx", "numpy", "pandas", "scipy", "scikit-learn", "imbalanced-learn", "xgboost-cpu",
    "xgboost", "pyradiomics-bhklab", "SimpleITK", "scanpy", "anndata", "mudata", "combatlearn",
    "decoupler", "scikit-survival", "statsmodels", "mlflow", "snakemake",
)  # fmt: skip
_CHUNK = 1 << 20


def canonical(config) -> str:
    """The config as sorted, compact JSON: equal configs give equal text."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)


def config_hash(config) -> str:
    """SHA-256 of the canonical config."""
    return hashlib.sha256(canonical(config).encode()).hexdigest()


def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def checksums(paths) -> dict[str, str]:
    """path (as given) -> SHA-256 of its content, sorted by path; a folder (a DICOM series)
    gets one digest over its files' names and digests."""
    out = {}
    for path in sorted({str(p) for p in paths}):
        if Path(path).is_dir():
            files = sorted(p for p in Path(path).rglob("*") if p.is_file())
            text = "".join(f"{f.relative_to(path).as_posix()}:{file_sha256(f)}\n" for f in files)
            out[path] = hashlib.sha256(text.encode()).hexdigest()
        else:
            out[path] = file_sha256(path)
    return out


def digest(sums: dict[str, str]) -> str:
    """One SHA-256 over a checksums mapping (names and contents)."""
    return hashlib.sha256(canonical(sums).encode()).hexdigest()


def package_versions(names=PACKAGES) -> dict[str, str]:
    """Installed version of each named package (those not installed are left out)."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def git_state(directory) -> dict:
    """The commit checked out in ``directory`` and whether tracked files differ from it;
    empty when it is not a git checkout (an unpacked release) or git is missing."""

    def git(*args):
        return subprocess.run(
            ["git", "-C", str(directory), *args], capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.CalledProcessError):
        return {}
    return {"commit": commit, "dirty": dirty}


def platform_info() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "system": platform.system(),
        "release": platform.release(),
        "machine": platform.machine(),
    }


def build(config: dict, inputs, code_dir, config_files=()) -> dict:
    """The manifest of a study: ``config`` (resolved, defaults filled in), checksums of the
    ``inputs`` (files or folders) and of the ``config_files`` it was read from, package
    versions, the git state of ``code_dir``, the platform, and the digests that summarise
    them."""
    sums = checksums(inputs)
    return {
        "input_stats": {path: _stat(path) for path in sums},
        "config_files": checksums(config_files),
        "study": config.get("study"),
        "config_sha256": config_hash(config),
        "inputs_sha256": digest(sums),
        "git": git_state(code_dir),
        "packages": package_versions(),
        "platform": platform_info(),
        "config": json.loads(canonical(config)),
        "inputs": sums,
    }


def write(manifest: dict, path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def changed_keys(old, new, prefix: str = "") -> list[str]:
    """Dotted names of the config entries that differ between ``old`` and ``new``."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            name
            for key in sorted(old.keys() | new.keys(), key=str)
            for name in changed_keys(old.get(key), new.get(key), f"{prefix}{key}.")
        ]
    return [] if old == new else [prefix.rstrip(".")]


def check_same_config(config: dict, path) -> None:
    """Stop a run whose config differs from the one that made the results at ``path`` (a
    manifest), so that they are not replaced by a different study without notice."""
    if not Path(path).is_file():
        return
    recorded = read(path)
    if recorded.get("config_sha256") == config_hash(config):
        return
    changed = changed_keys(recorded.get("config") or {}, json.loads(canonical(config)))
    results = Path(path).parent
    raise ValueError(
        f"{results}/ holds the results of study '{recorded.get('study')}' made with another "
        f"config (config_sha256 {str(recorded.get('config_sha256'))[:12]}); this config "
        f"differs in: {', '.join(changed[:10]) or 'its serialisation'}"
        f"{' ...' if len(changed) > 10 else ''}. This run would replace those results. Fix: "
        f"keep them by moving {results}/ aside (or running in another directory), or "
        "replace them with `snakemake ... --config replace_results=true`"
    )


def _stat(path) -> list[int]:
    """Size and modification time: an input with the same two is taken as unchanged."""
    info = Path(path).stat()
    return [info.st_size, info.st_mtime_ns]


def input_changes(recorded: dict, inputs) -> dict[str, list[str]]:
    """The input files that differ from the manifest ``recorded``: ``changed`` (another
    checksum), ``removed`` (recorded, now gone) and ``added`` (not recorded). A file whose
    size and modification time are as recorded is not read again."""
    sums, stats = recorded.get("inputs") or {}, recorded.get("input_stats") or {}
    now = {str(p) for p in inputs if Path(p).exists()}
    changed = [
        path
        for path in sorted(now & set(sums))
        if stats.get(path) != _stat(path) and checksums([path])[path] != sums[path]
    ]
    return {
        "changed": changed,
        "removed": sorted(set(sums) - now),
        "added": sorted(now - set(sums)),
    }


def check_same_study(config: dict, inputs, path, generated=()) -> None:
    """Stop a run whose config or input files differ from those that made the results at
    ``path`` (a manifest), so that they are not replaced by a different study without
    notice. The input files count once those results are complete (a summary newer than
    the manifest): until then, fixing a bad patient's file and running again is the way to
    complete them. ``generated`` inputs (the demo's) may be absent: a job makes them again."""
    check_same_config(config, path)
    summary = Path(path).parent / "summary.tsv"
    if not summary.is_file() or summary.stat().st_mtime_ns < Path(path).stat().st_mtime_ns:
        return
    recorded = read(path)
    changes = input_changes(recorded, inputs)
    changes["removed"] = [p for p in changes["removed"] if p not in set(map(str, generated))]
    if not any(changes.values()):
        return
    listed = "; ".join(
        f"{kind}: {', '.join(paths[:5])}{f' and {len(paths) - 5} more' if len(paths) > 5 else ''}"
        for kind, paths in changes.items()
        if paths
    )
    results = Path(path).parent
    raise ValueError(
        f"{results}/ holds the results of study '{recorded.get('study')}' made from other "
        f"input files ({listed}). This run would replace those results. Fix: keep them by "
        f"moving {results}/ aside (or running in another directory), or replace them with "
        "`snakemake ... --config replace_results=true`"
    )


def read(path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))
