"""The five real test cases of pyradiomics and their reference feature values.

pyradiomics' source archive ships two brain MRIs, a breast MRI and two lung CTs (NRRD image and
label map each) together with ``baseline/baseline_<featureclass>.csv``: feature values that its
own test-suite checks every release against. The wheel leaves them out, so :func:`cases_dir`
fetches the source archive once with pip and keeps only its ``data/`` folder in a cache:
``$RADIOTX_CACHE/pyradiomics-3.1.4/data`` (``RADIOTX_CACHE`` defaults to ``~/.cache/radiotx``).

Reading a baseline: each column is one test (``lung1``, ``lung1_resampling``, ...), its
``diagnostics_Configuration_*`` rows hold the case and the extraction settings, every other row
is one feature (``original_glcm_Contrast``).
"""

from __future__ import annotations

import ast
import contextlib
import csv
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pandas as pd
import yaml

from radiotx.features import read_rows

REPO = Path(__file__).resolve().parents[1]
BASELINE_PARAMS = REPO / "config" / "radiomics" / "baseline"
PACKAGE = "pyradiomics-bhklab"
VERSION = "3.1.4"
CASES = ("brain1", "brain2", "breast1", "lung1", "lung2")
MODALITY = {"brain1": "MR", "brain2": "MR", "breast1": "MR", "lung1": "CT", "lung2": "CT"}
FEATURE_CLASSES = ("firstorder", "shape", "glcm", "glrlm", "glszm", "gldm", "ngtdm")
# The baseline columns of a case are named <case> or <case>_<suffix>; every suffix stands for
# one set of extraction settings, written out as a parameter file in config/radiomics/baseline.
# (baseline_shape2D.csv is left out: its columns need single-slice label maps that pyradiomics
# downloads from GitHub on demand and that its source archive does not contain.)
GROUPS = {
    "": "base.yaml",
    "normalization": "normalization.yaml",
    "resampling": "resampling.yaml",
    "resegmentation": "resegmentation.yaml",
    "2d": "force2d.yaml",
    "FBN": "bincount64.yaml",
    "combined": "no_weighting.yaml",
    "flatRegion": "flat_region.yaml",
}
# pyradiomics' tests/testUtils.py passes a feature when abs(1 - value / baseline) < 3 %
# (and, for a baseline of exactly 0, when the value is exactly 0).
RELATIVE_TOLERANCE = 0.03


def cache_root() -> Path:
    return Path(os.environ.get("RADIOTX_CACHE") or Path.home() / ".cache" / "radiotx")


def _complete(data: Path) -> bool:
    files = [data / f"{case}_{kind}.nrrd" for case in CASES for kind in ("image", "label")]
    files += [data / "baseline" / f"baseline_{cls}.csv" for cls in FEATURE_CLASSES]
    return all(f.is_file() for f in files)


def _download(folder: Path) -> Path | None:
    """The sdist of pyradiomics, fetched into ``folder``; None when pip cannot get it."""
    # Only this package from source: ':all:' would also force numpy, setuptools and the other
    # build requirements to be built from source just to read the archive's metadata.
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", PACKAGE,
        "--disable-pip-version-check", "--retries", "1", "--timeout", "20",
        f"{PACKAGE}=={VERSION}", "-d", str(folder),
    ]  # fmt: skip
    try:
        subprocess.run(command, capture_output=True, check=True, timeout=600)
    except (OSError, subprocess.SubprocessError):
        return None
    archives = sorted(folder.glob("*.tar.gz"))
    return archives[0] if archives else None


def _unpack_data(archive: Path, target: Path) -> None:
    """Extract ``<top>/data/**`` of the archive to ``target`` (without the top folder)."""
    with tarfile.open(archive, encoding="utf-8") as tar:
        members = []
        for member in tar.getmembers():
            parts = Path(member.name).parts
            if len(parts) > 2 and parts[1] == "data" and (member.isfile() or member.isdir()):
                member.name = str(Path(*parts[1:]))
                members.append(member)
        options = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(target, members=members, **options)


def cases_dir() -> Path | None:
    """The ``data`` folder with the five cases and ``baseline/``, or None when unavailable.

    Reuses the cache when it is complete; otherwise downloads the source archive (about 35 MB),
    unpacks its ``data/`` folder next to the cache and moves it in place in one step.
    """
    folder = cache_root() / f"pyradiomics-{VERSION}"
    data = folder / "data"
    if _complete(data):
        return data
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            archive = _download(Path(tmp))
            if archive is None:
                return None
            _unpack_data(archive, Path(tmp) / "unpacked")
            unpacked = Path(tmp) / "unpacked" / "data"
            if not _complete(unpacked):
                return None
            if data.exists() and not _complete(data):
                shutil.rmtree(data)
            # OSError: another process has just put a complete copy in place.
            with contextlib.suppress(OSError):
                unpacked.rename(data)
    except (OSError, tarfile.TarError):
        return None
    return data if _complete(data) else None


def case_files(data: Path, case: str) -> tuple[Path, Path]:
    """Image and label map of one case."""
    return data / f"{case}_image.nrrd", data / f"{case}_label.nrrd"


def read_baseline(data: Path, feature_class: str) -> dict[str, dict]:
    """One baseline file as ``{test: {"case", "settings", "image_types", "hashes", "features"}}``.

    ``features`` maps the full pyradiomics name (``original_glcm_Contrast``) to the value.
    """
    path = data / "baseline" / f"baseline_{feature_class}.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    tests = rows[0][1:]
    table = {row[0]: row[1:] for row in rows[1:]}
    result = {}
    for i, test in enumerate(tests):
        result[test] = {
            "case": table["diagnostics_Configuration_TestCase"][i],
            "settings": ast.literal_eval(table["diagnostics_Configuration_Settings"][i]),
            "image_types": ast.literal_eval(
                table["diagnostics_Configuration_EnabledImageTypes"][i]
            ),
            "hashes": {
                "image": table.get("diagnostics_Image-original_Hash", [""] * len(tests))[i],
                "mask": table.get("diagnostics_Mask-original_Hash", [""] * len(tests))[i],
            },
            "features": {
                name: float(values[i])
                for name, values in table.items()
                if "diagnostics" not in name and values[i] != ""
            },
        }
    return result


def test_name(case: str, group: str) -> str:
    return f"{case}_{group}" if group else case


def group_baseline(data: Path, group: str) -> dict:
    """One settings group across the feature classes: ``{"settings", "classes", "values"}``.

    ``values`` is ``{case: {feature: reference value}}``; ``settings`` the recorded settings,
    which pyradiomics recorded identically in every class file of the group.
    """
    result = {"settings": None, "classes": [], "values": {case: {} for case in CASES}}
    for feature_class in FEATURE_CLASSES:
        baseline = read_baseline(data, feature_class)
        for case in CASES:
            test = baseline.get(test_name(case, group))
            if test is None:
                continue
            if result["settings"] not in (None, test["settings"]):
                raise ValueError(f"{test_name(case, group)}: settings differ between classes")
            result["settings"] = test["settings"]
            if feature_class not in result["classes"]:
                result["classes"].append(feature_class)
            result["values"][case].update(test["features"])
    return result


def relative_difference(value: float, baseline: float) -> float:
    """The difference measure of pyradiomics' tests: ``abs(1 - value / baseline)``."""
    if baseline == 0.0:
        return 0.0 if value == 0.0 else 1.0
    return abs(1.0 - value / baseline)


def compare(features: pd.Series, reference: dict[str, float]) -> dict:
    """How one extraction agrees with its reference values, feature by feature."""
    shared = [name for name in reference if name in features.index]
    diffs = pd.Series(
        {name: relative_difference(float(features[name]), reference[name]) for name in shared},
        dtype="float64",
    )
    return {
        "compared": len(diffs),
        "max_diff": float(diffs.max()) if len(diffs) else float("nan"),
        "worst": str(diffs.idxmax()) if len(diffs) else "",
        "failing": {
            name: (float(features[name]), reference[name], float(diffs[name]))
            for name in diffs.index[~(diffs < RELATIVE_TOLERANCE)]
        },
        "missing": sorted(set(reference) - set(features.index)),
        "extra": sorted(set(features.index) - set(reference)),
    }


def write_study(workdir: Path, data: Path, params, cases=CASES) -> dict:
    """A study folder whose patient sheet lists the pyradiomics cases, extracted with ``params``.

    The config is the repository's with the demo cohort dropped; a two-column clinical table
    (patient id and a dummy endpoint, with a patient without images so that it has two
    classes) satisfies the modelling part, which is never run here.
    """
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))
    config.pop("demo", None)
    config["study"] = "pyradiomics-cases"
    config["patients"] = "config/patients.tsv"
    config["clinical"] = {"table": "resources/clinical.tsv", "numeric": [], "categorical": []}
    config["endpoints"] = {"response": {"column": "response", "positive": 1}}
    config["pipelines"] = {"radiomics": ["radiomics"]}
    config["radiomics"]["params"] = str(params)
    config["radiomics"]["label"] = 1
    (workdir / "config").mkdir(parents=True, exist_ok=True)
    (workdir / "resources").mkdir(parents=True, exist_ok=True)
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    rows = [(case, *map(str, case_files(data, case)), "") for case in cases]
    sheet = pd.DataFrame(rows, columns=["patient_id", "image", "mask", "rnaseq"])
    sheet.to_csv(workdir / config["patients"], sep="\t", index=False)
    # both classes even for one case (the endpoint is checked before any job)
    patients = [*cases, "no-image"]
    clinical = pd.DataFrame(
        {"patient_id": patients, "response": [i % 2 for i in range(len(patients))]}
    )
    clinical.to_csv(workdir / config["clinical"]["table"], sep="\t", index=False)
    return config


def feature_targets(cases=CASES) -> list[str]:
    return [f"work/features/radiomics/{case}.parquet" for case in cases]


def snakemake_command(workdir: Path, *args: str, cores: int = 2) -> tuple[list[str], dict]:
    """Command line and environment that run the repository's workflow on a study folder."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    command = [
        sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(workdir), "--cores", str(cores), *args,
    ]  # fmt: skip
    return command, env


def snakemake(workdir: Path, *args: str, cores: int = 2) -> subprocess.CompletedProcess:
    """Run the repository's workflow on a study folder; AssertionError with its log on failure."""
    command, env = snakemake_command(workdir, *args, cores=cores)
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=workdir)
    if result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stderr[-6000:]}")
    return result


def read_features(workdir: Path, case: str) -> pd.Series:
    """The one-row feature table the workflow wrote for ``case``, as a Series."""
    return read_rows([workdir / "work" / "features" / "radiomics" / f"{case}.parquet"]).loc[case]
