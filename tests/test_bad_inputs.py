"""Bad input, tried as a new user would on a complete study (radiomics + clinical + early
fusion): every case stops with a message that names the patient, file or column and gives
the fix, and leaves the complete results byte-identical. A patient's own broken file fails
that patient only: with keep-going, the other patients' features are still produced.

One tiny study is built once; each case runs on a copy of it (two at a time)."""

from __future__ import annotations

import gzip
import hashlib
import resource
import shutil
import socket
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import yaml
from test_workflow import REPO, snakemake, snakemake_call, write_study

from radiotx import reproduce

N = 12
OTHER = "P002"  # a good patient whose features a keep-going run must produce again
IMAGE, MASK = "resources/images/{}_ct.nii.gz", "resources/masks/{}_mask.nii.gz"


@dataclass
class Case:
    name: str
    change: Callable[[Path, dict], None]  # edits the study folder and its config in place
    named: tuple[str, ...]  # what the message must name
    patient: str = ""  # a per-patient case: this patient fails, the others are extracted
    replace: bool = False  # run with replace_results=true (past the guard)


def config_of(study: Path) -> dict:
    return yaml.safe_load((study / "config/config.yaml").read_text(encoding="utf-8"))


def sheet(study: Path) -> pd.DataFrame:
    return pd.read_csv(study / "config/patients.tsv", sep="\t", keep_default_na=False)


def save_sheet(study: Path, table: pd.DataFrame) -> None:
    table.to_csv(study / "config/patients.tsv", sep="\t", index=False)


def clinical(study: Path) -> pd.DataFrame:
    return pd.read_csv(study / "resources/clinical.tsv", sep="\t")


def save_clinical(study: Path, table: pd.DataFrame, sep="\t") -> None:
    table.to_csv(study / "resources/clinical.tsv", sep=sep, index=False)


def edit_sheet(func):
    def change(study, config):
        save_sheet(study, func(sheet(study)))

    return change


def edit_clinical(func):
    def change(study, config):
        save_clinical(study, func(clinical(study)))

    return change


def set_config(path: str, value):
    def change(study, config):
        *parents, key = path.split(".")
        node = config
        for parent in parents:
            node = node[parent]
        node[key] = value

    return change


def rename_key(path: str, new: str):
    def change(study, config):
        *parents, key = path.split(".")
        node = config
        for parent in parents:
            node = node[parent]
        node[new] = node.pop(key)

    return change


def params_file(text_change):
    def change(study, config):
        path = study / "config/params.yaml"
        shipped = (REPO / "config/radiomics/ct_demo.yaml").read_text(encoding="utf-8")
        path.write_text(text_change(shipped), encoding="utf-8")
        config["radiomics"]["params"] = "config/params.yaml"

    return change


def with_table(rows):
    """A feature table `lab` in the fusion, written from rows(patients)."""

    def change(study, config):
        patients = list(sheet(study)["patient_id"])
        rows(patients).to_csv(study / "resources/lab.tsv", sep="\t", index=False)
        config["tables"] = {"lab": {"path": "resources/lab.tsv", "id_column": "patient_id"}}
        config["pipelines"]["fusion"] = ["radiomics", "clinical", "lab"]

    return change


def image_change(patient: str, which: str, func):
    """Replace one patient's image or mask by func(image array, image) -> written file."""

    def change(study, config):
        path = study / (IMAGE if which == "image" else MASK).format(patient)
        func(path)

    return change


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def not_gzipped(path: Path) -> None:
    path.write_bytes(gzip.decompress(path.read_bytes()))


def rewrite(func):
    def change(path: Path) -> None:
        image = sitk.ReadImage(str(path))
        array = func(sitk.GetArrayFromImage(image))
        out = sitk.GetImageFromArray(array)
        if array.shape == sitk.GetArrayFromImage(image).shape:
            out.CopyInformation(image)
        sitk.WriteImage(out, str(path))

    return change


def one_voxel(mask):
    out = np.zeros_like(mask)
    z, y, x = (int(np.median(i)) for i in np.nonzero(mask))
    out[z, y, x] = 1
    return out


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def renamed_id(new: str):
    return edit_sheet(lambda s: s.replace({"patient_id": {"P004": new}}))


def fifth_age(value):
    """The clinical table with P005's age replaced by ``value``."""

    def change(table):
        table["age"] = table["age"].astype(object)
        table.loc[4, "age"] = value
        return table

    return edit_clinical(change)


def lab(ps, **columns):
    return pd.DataFrame({"patient_id": ps, **columns})


def first_then_counting(first, n):
    return [first, *np.arange(1.0, n)]


PORT = closed_port()

CASES = [
    # the config
    Case("config: unknown top-level key", rename_key("pipelines", "pipeline"),
         ("pipeline", "did you mean pipelines")),
    Case("config: misspelt nested key", rename_key("cv.outer_folds", "outer_fold"),
         ("cv.outer_fold", "did you mean cv.outer_folds")),
    Case("config: wrong type", set_config("cv.outer_folds", "five"), ("cv.outer_folds", "five")),
    Case("config: unknown modality in a pipeline",
         set_config("pipelines.fusion", ["radiomics", "clinicl"]), ("clinicl",)),
    Case("config: changed after a complete run", set_config("cv.bootstrap", 300),
         ("cv.bootstrap", "replace_results=true")),
    Case("config: unreachable MLflow server",
         set_config("mlflow.tracking_uri", f"http://127.0.0.1:{PORT}"), (f"127.0.0.1:{PORT}",),
         replace=True),
    # the pyradiomics parameter file
    Case("params: misspelt setting", params_file(lambda t: t.replace("binWidth", "binWidht")),
         ("config/params.yaml", "binWidht", "did you mean 'binWidth'")),
    Case("params: invalid YAML", params_file(lambda t: t + "\nsetting: [unclosed\n"),
         ("config/params.yaml", "YAML")),
    Case("params: file missing", set_config("radiomics.params", "config/nowhere.yaml"),
         ("config/nowhere.yaml",)),
    # the patient sheet
    Case("sheet: file missing", set_config("patients", "config/patiens.tsv"),
         ("config/patiens.tsv",)),
    Case("sheet: extra column", edit_sheet(lambda s: s.assign(site="A")), ("site",)),
    Case("sheet: id with a space", renamed_id("P 004"), ("P 004", "line 5")),
    Case("sheet: id with a slash", renamed_id("P/004"), ("P/004", "line 5")),
    Case("sheet: patient twice", edit_sheet(lambda s: pd.concat([s, s.iloc[[3]]])), ("P004",)),
    Case("sheet: mask column missing", edit_sheet(lambda s: s.drop(columns="mask")),
         ("config/patients.tsv", "image and mask")),
    Case("sheet: cut to 6 patients", edit_sheet(lambda s: s.iloc[:6]),
         ("config/patients.tsv", "replace_results=true")),
    Case("sheet: a patient added",
         edit_sheet(lambda s: pd.concat([s, s.iloc[[0]].assign(patient_id="P099")])),
         ("config/patients.tsv", "replace_results=true")),
    # the clinical table
    Case("clinical: file missing", set_config("clinical.table", "resources/clinicl.tsv"),
         ("resources/clinicl.tsv", "clinical.table")),
    Case("clinical: commas in a .tsv",
         lambda study, config: save_clinical(study, clinical(study), sep=","),
         ("resources/clinical.tsv", "comma-separated")),
    Case("clinical: id column misnamed", set_config("clinical.id_column", "pid"),
         ("resources/clinical.tsv", "pid")),
    Case("clinical: infinite value", fifth_age(np.inf), ("resources/clinical.tsv", "age", "P005")),
    Case("clinical: text in a numeric column", fifth_age("old"),
         ("resources/clinical.tsv", "age", "P005")),
    Case("clinical: listed column absent", set_config("clinical.numeric", ["age", "weight"]),
         ("resources/clinical.tsv", "weight")),
    Case("clinical: endpoint column absent", edit_clinical(lambda c: c.drop(columns="response")),
         ("resources/clinical.tsv", "endpoint 'response'")),
    Case("clinical: endpoint with one class", edit_clinical(lambda c: c.assign(response=0)),
         ("resources/clinical.tsv", "endpoint 'response'")),
    Case("clinical: patient removed", edit_clinical(lambda c: c.drop(index=4)),
         ("resources/clinical.tsv", "replace_results=true")),
    # feature tables
    Case("table: every column constant", with_table(lambda ps: lab(ps, crp=1.0, ldh=2.0)),
         ("resources/lab.tsv", "lab")),
    Case("table: text in a column",
         with_table(lambda ps: lab(ps, crp=first_then_counting("high", len(ps)))),
         ("resources/lab.tsv", "crp")),
    Case("table: id column absent",
         with_table(lambda ps: lab(ps, crp=np.arange(len(ps), dtype=float)).rename(
             columns={"patient_id": "pid"})),
         ("resources/lab.tsv", "patient_id")),
    Case("table: infinite value",
         with_table(lambda ps: lab(ps, crp=first_then_counting(np.inf, len(ps)))),
         ("resources/lab.tsv", "crp")),
    # one patient's image or mask (past the guard, as after replace_results=true)
    Case("image: replaced after a complete run",
         image_change("P003", "image", lambda p: shutil.copy(str(p).replace("P003", "P005"), p)),
         ("P003_ct.nii.gz", "replace_results=true")),
    Case("image: file missing", lambda study, config: (study / IMAGE.format("P003")).unlink(),
         ("P003", "P003_ct.nii.gz", "every other patient goes on"), patient="P003",
         replace=True),
    Case("image: truncated .nii.gz", image_change("P003", "image", truncate),
         ("P003", "P003_ct.nii.gz", "truncated"), patient="P003", replace=True),
    Case("mask: not gzip-compressed", image_change("P003", "mask", not_gzipped),
         ("P003", "P003_mask.nii.gz", "gzip", "every other patient goes on"), patient="P003",
         replace=True),
    Case("mask: empty", image_change("P003", "mask", rewrite(np.zeros_like)),
         ("P003", "P003_mask.nii.gz", "empty"), patient="P003", replace=True),
    Case("mask: another grid", image_change("P003", "mask", rewrite(lambda m: m[:, ::2, ::2])),
         ("P003", "P003_mask.nii.gz"), patient="P003", replace=True),
    Case("mask: another label", image_change("P003", "mask", rewrite(lambda m: m * 2)),
         ("P003", "P003_mask.nii.gz", "label"), patient="P003", replace=True),
    Case("mask: one voxel", image_change("P003", "mask", rewrite(one_voxel)),
         ("P003", "P003_mask.nii.gz"), patient="P003", replace=True),
    Case("image: not an image",
         image_change("P003", "image", lambda p: p.write_bytes(gzip.compress(b"not an image"))),
         ("P003", "P003_ct.nii.gz", "every other patient goes on"), patient="P003",
         replace=True),
]  # fmt: skip


def digests(folder: Path) -> dict[str, str]:
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A complete study of the user's own kind (no demo section): radiomics, clinical and
    their early fusion, 12 patients."""
    study = tmp_path_factory.mktemp("bad-inputs-base")
    config = write_study(
        study,
        n_patients=N,
        few_rnaseq=True,
        cv={"outer_folds": 3, "inner_folds": 3, "bootstrap": 100, "permutations": 0},
        pipelines={"radiomics": ["radiomics"], "clinical": ["clinical"],
                   "fusion": ["radiomics", "clinical"]},
        fusion={"strategies": ["early"]},
        explain={"shap": []},
    )  # fmt: skip
    config["model"].update(k_features=[5], balancers=["class_weight"], select_classifier=False)
    (study / "config/config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    snakemake(study, "resources/demo/ground_truth.json")
    # the demo's files as a user's own: no generator behind them
    shutil.move(study / "resources/demo", study / "resources.tmp")
    shutil.rmtree(study / "resources")
    shutil.move(study / "resources.tmp", study / "resources")
    table = sheet(study)
    for column in ("image", "mask", "rnaseq"):
        table[column] = table[column].str.replace("resources/demo/", "resources/", regex=False)
    table["rnaseq"] = ""
    save_sheet(study, table)
    config.pop("demo")
    config["clinical"]["table"] = "resources/clinical.tsv"
    config["rnaseq"]["preprocess"]["gene_sets"] = ""
    (study / "config/config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    snakemake(study)
    return study


def run_case(case: Case, base: Path, root: Path) -> dict:
    study = root / case.name.replace(":", "").replace(" ", "-")
    shutil.copytree(base, study, symlinks=True)
    config = config_of(study)
    case.change(study, config)
    (study / "config/config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    before = digests(base / "results")
    args = ["--cores", "1", "--keep-going"]
    if case.patient:
        (study / f"work/features/radiomics/{OTHER}.parquet").unlink()
    if case.replace:
        args += ["--config", "replace_results=true"]
    run = snakemake(study, *args, check=False)
    return {
        "exit": run.returncode,
        "message": run.stderr,
        "unchanged": digests(study / "results") == before,
        "other_extracted": (study / f"work/features/radiomics/{OTHER}.parquet").is_file(),
    }


@pytest.fixture(scope="module")
def outcomes(base, tmp_path_factory, request) -> dict[str, dict]:
    """Every selected case, run two at a time (most spend their time starting Snakemake)."""
    root = tmp_path_factory.mktemp("bad-inputs")
    selected = [
        item.callspec.params["case"]
        for item in request.session.items
        if hasattr(item, "callspec") and "case" in item.callspec.params
    ]
    with ThreadPoolExecutor(max_workers=2) as pool:
        ran = pool.map(lambda case: run_case(case, base, root), selected)
        done = {case.name: outcome for case, outcome in zip(selected, ran, strict=True)}
    artifacts = REPO / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    rows = [
        {
            "case": case.name,
            "exit": done[case.name]["exit"],
            "message": first_message(done[case.name]["message"]),
            "named": all(n in done[case.name]["message"] for n in case.named),
            "results unchanged": done[case.name]["unchanged"],
        }
        for case in selected
    ]
    pd.DataFrame(rows).to_csv(artifacts / "bad_inputs.tsv", sep="\t", index=False)
    return done


def first_message(stderr: str) -> str:
    """The line of Snakemake's output that carries radiotx's message."""
    lines = [line.strip() for line in stderr.splitlines() if "Fix:" in line or "fix:" in line]
    return lines[0][:300] if lines else stderr.strip().splitlines()[-1][:300]


def test_there_are_at_least_36_cases():
    assert len(CASES) >= 36 and len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_named_with_its_fix_and_loses_nothing(case, outcomes):
    outcome = outcomes[case.name]
    message = outcome["message"]
    assert outcome["exit"] != 0, message[-3000:]
    for name in case.named:
        assert name in message, f"{name!r} not named:\n{message[-3000:]}"
    assert "Fix:" in message or "fix" in message.lower(), message[-3000:]
    assert "Traceback" not in first_message(message)
    assert outcome["unchanged"], "the complete results changed"
    if case.patient:
        assert outcome["other_extracted"], f"{OTHER}'s features were not extracted again"


def test_a_run_whose_writes_fail_as_on_a_full_disk_loses_nothing(base, tmp_path):
    """A file-size limit on the run (every write past 64 kB fails, as on a full disk) while
    it redoes the cohort and everything after it: the run fails, results/ stays
    byte-identical, and with space again the same command completes the same results."""
    study = tmp_path / "study"
    shutil.copytree(base, study, symlinks=True)
    before = digests(study / "results")
    command, env = snakemake_call(study, "--forcerun", "gather")

    def full_disk():
        resource.setrlimit(resource.RLIMIT_FSIZE, (64_000, 64_000))

    run = subprocess.run(
        command, env=env, cwd=study, capture_output=True, text=True, preexec_fn=full_disk
    )
    assert run.returncode != 0 and "File too large" in run.stderr
    assert digests(study / "results") == before
    snakemake(study)
    assert reproduce.result_differences(base / "results", study / "results") == []
