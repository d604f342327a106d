"""Runs that go wrong: a bad patient, an unreachable tracking server, a run killed or
failing halfway, a configuration or parameter file that is refused before any job. They
run small studies of their own (or a copy of the shared small study), apart from
test_workflow.py's 60-patient study, so that the test workers can run them beside it."""

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from test_workflow import (
    REPO,
    snakemake,
    snakemake_call,
    write_small_study,
    write_study,
)

from radiotx import reproduce

pytestmark = pytest.mark.workflow


def test_an_unreachable_tracking_server_stops_the_run_before_any_job(tmp_path):
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    write_study(tmp_path, n_patients=12, mlflow={"tracking_uri": f"http://127.0.0.1:{port}"})
    run = snakemake(tmp_path, "resources/demo/ground_truth.json", check=False)
    assert run.returncode != 0
    assert f"MLflow tracking server http://127.0.0.1:{port} is unreachable" in run.stderr
    assert "Fix:" in run.stderr
    assert not (tmp_path / "resources/demo/ground_truth.json").exists()


def test_a_bad_patient_is_named_and_the_others_finish(tmp_path):
    import SimpleITK as sitk

    write_study(tmp_path, n_patients=12)
    snakemake(tmp_path, "resources/demo/ground_truth.json")
    mask_path = tmp_path / "resources/demo/masks/P003_mask.nii.gz"
    mask = sitk.ReadImage(str(mask_path))
    empty = sitk.GetImageFromArray(np.zeros_like(sitk.GetArrayFromImage(mask)))
    empty.CopyInformation(mask)
    sitk.WriteImage(empty, str(mask_path))
    targets = [f"work/features/radiomics/P{i:03d}.parquet" for i in range(1, 13)]
    targets.append("work/qa/radiomics.tsv")
    run = snakemake(tmp_path, "--keep-going", *targets, check=False)
    assert run.returncode != 0
    for log in (run.stderr, (tmp_path / "logs/radiomics/P003.log").read_text(encoding="utf-8")):
        assert "patient P003" in log and "P003_mask.nii.gz" in log and "mask is empty" in log
        assert "Fix:" in log
    done = sorted(p.stem for p in (tmp_path / "work/features/radiomics").glob("*.parquet"))
    assert done == [f"P{i:03d}" for i in range(1, 13) if i != 3]
    qa_table = pd.read_csv(tmp_path / "work/qa/radiomics.tsv", sep="\t", index_col="patient_id")
    assert qa_table.loc["P003", "status"] == "error" and "empty" in qa_table.loc["P003", "problem"]
    assert (qa_table.drop(index="P003")["status"] == "ok").all()
    assert qa_table["mask_sha256"].str.len().eq(64).all()


def test_a_killed_run_resumes_with_the_same_command(small_study, tmp_path):
    """kill -9 of the whole run while the outer folds are fitted; the same command then
    resumes it (the dead run's lock is cleared) and gives the uninterrupted run's results."""
    write_small_study(tmp_path)
    command, env = snakemake_call(tmp_path)
    run = subprocess.Popen(
        command, cwd=tmp_path, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 900
    while not list((tmp_path / "logs" / "models").glob("*/*/outer/*.log")):
        assert run.poll() is None and time.monotonic() < deadline, "no outer fold started"
        time.sleep(0.2)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    assert list((tmp_path / ".snakemake" / "locks").iterdir())  # the lock outlived the run
    assert not (tmp_path / "results").exists()  # nothing published from an unfinished run
    resumed = snakemake(tmp_path)
    assert "cleared the lock left by a run that ended without releasing it" in resumed.stderr
    assert reproduce.result_differences(small_study / "results", tmp_path / "results") == []
    assert len(reproduce._model_files(tmp_path / "results")) == 24


def digests(folder: Path) -> dict[str, str]:
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_a_failed_run_leaves_the_complete_results_as_they_were(small_study, tmp_path):
    """A job that fails while a complete run's results are in place (here the fusion's model
    job, on a broken outer-fold record) publishes nothing: results/ stays byte-identical.
    Once the record is mended, the run completes and publishes."""
    study = tmp_path / "study"
    shutil.copytree(small_study, study, symlinks=True)
    before = digests(study / "results")
    broken = study / "work/models/response/fusion/outer/r0f0.json"
    broken.unlink()  # as Snakemake does before a job writes its output again
    broken.write_text("{not json", encoding="utf-8")
    run = snakemake(study, check=False)
    assert run.returncode != 0 and "Error in rule model" in run.stderr
    assert digests(study / "results") == before
    broken.unlink()
    shutil.copy(small_study / "work/models/response/fusion/outer/r0f0.json", broken)  # mended
    snakemake(study)
    assert reproduce.result_differences(small_study / "results", study / "results") == []
    assert (study / "results/summary.tsv").stat().st_mtime_ns > (
        small_study / "results/summary.tsv"
    ).stat().st_mtime_ns  # published anew


def test_a_parameter_file_pyradiomics_rejects_stops_the_run_before_any_job(tmp_path):
    params = tmp_path / "params.yaml"
    shipped = (REPO / "config" / "radiomics" / "ct_demo.yaml").read_text(encoding="utf-8")
    params.write_text(shipped.replace("binWidth", "binWidht"), encoding="utf-8")
    config = write_study(tmp_path, n_patients=12)
    config["radiomics"]["params"] = str(params)
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    run = snakemake(tmp_path, check=False)
    assert run.returncode != 0
    assert f"file {params}: pyradiomics rejects this parameter file" in run.stderr
    assert "unknown key 'binWidht' under 'setting' (did you mean 'binWidth'?)" in run.stderr
    assert not (tmp_path / "results").exists() and not (tmp_path / "resources").exists()


def test_a_config_typo_is_named_with_the_nearest_key_before_any_job(tmp_path):
    config = write_study(tmp_path, n_patients=12)
    config["cv"]["outer_fold"] = config["cv"].pop("outer_folds")
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    run = snakemake(tmp_path, check=False)
    assert run.returncode != 0
    assert "cv.outer_fold: not a setting here (did you mean cv.outer_folds?)" in run.stderr
    assert "description" not in run.stderr  # not the schema
    assert not (tmp_path / "resources").exists()


def test_lint_is_clean():
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--lint"],
        capture_output=True, encoding="utf-8", cwd=REPO, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations" in result.stdout + result.stderr
