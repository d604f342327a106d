"""Reproducing a study: the same config gives the same numbers, `radiotx reproduce` re-runs a
study from its manifest and reports differences, and a changed config does not silently
replace results."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from test_workflow import REPO, snakemake

from radiotx import manifest, reproduce, track, tracking

# ------------------------------------------------------------------ without the workflow


def test_changed_keys_name_every_differing_entry():
    old = {"cv": {"outer_folds": 5, "bootstrap": 1000}, "seed": 42, "model": {"k": [5]}}
    new = {"cv": {"outer_folds": 3, "bootstrap": 1000}, "seed": 42, "model": {"k": [5, 20]}}
    new["study"] = "other"
    assert manifest.changed_keys(old, new) == ["cv.outer_folds", "model.k", "study"]
    assert manifest.changed_keys(old, json.loads(json.dumps(old))) == []


def test_results_of_another_config_are_not_replaced(tmp_path):
    config = {"study": "a", "seed": 42, "cv": {"outer_folds": 5}}
    path = tmp_path / "results" / "manifest.json"
    manifest.check_same_config(config, path)  # no results yet
    manifest.write(manifest.build(config, [], tmp_path), path)
    manifest.check_same_config(json.loads(json.dumps(config)), path)  # the same config
    with pytest.raises(ValueError, match=r"differs in: cv\.outer_folds.*replace_results=true"):
        manifest.check_same_config({**config, "cv": {"outer_folds": 3}}, path)


def test_input_differences_name_changed_and_missing_files(tmp_path):
    names = ("a.tsv", "b.tsv", "c.tsv")
    for name in names:
        (tmp_path / name).write_text(name, encoding="utf-8")
    recorded = {"inputs": {name: manifest.file_sha256(tmp_path / name) for name in names}}
    assert reproduce.input_differences(recorded, tmp_path) == []
    (tmp_path / "b.tsv").write_text("changed", encoding="utf-8")
    (tmp_path / "c.tsv").unlink()
    found = reproduce.input_differences(recorded, tmp_path)
    assert [(d.name, d.now) for d in found] == [
        ("b.tsv", manifest.file_sha256(tmp_path / "b.tsv")[:12]),
        ("c.tsv", "missing"),
    ]


def test_stage_links_the_study_files_and_regenerates_the_demo(tmp_path):
    source, workdir = tmp_path / "study", tmp_path / "again"
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))
    (source / "config").mkdir(parents=True)
    (source / "config" / "radiomics").mkdir()
    (source / "config" / "radiomics" / "ct_demo.yaml").write_text("setting: {}\n")
    (source / "resources" / "demo").mkdir(parents=True)
    (source / "resources" / "demo" / "clinical.tsv").write_text("patient_id\n")
    recorded = {"config": config, "inputs": {"resources/demo/clinical.tsv": "0" * 64}}
    path = reproduce.stage(recorded, source, workdir)
    assert yaml.safe_load(path.read_text(encoding="utf-8")) == config
    params = workdir / "config" / "radiomics" / "ct_demo.yaml"
    assert params.is_symlink() and params.resolve() == (source / params.relative_to(workdir))
    assert not (workdir / "resources").exists()  # the demo generator makes it again


def test_a_relative_workdir_is_used_once_and_a_failed_rerun_can_be_retried(tmp_path, monkeypatch):
    snakefile = tmp_path / "Snakefile"  # a workflow that fails where it runs
    snakefile.write_text('rule fail:\n    shell:\n        "touch ran-here && exit 1"\n')
    recorded = {"config": {"study": "s"}, "config_sha256": "c0ffee", "inputs": {}}
    monkeypatch.chdir(tmp_path)
    for _ in range(2):  # the retry goes on in the folder the first attempt left
        with pytest.raises(RuntimeError, match="the re-run failed"):
            reproduce.reproduce(recorded, tmp_path, "rerun", snakefile)
        assert (tmp_path / "rerun" / "ran-here").exists()
        assert not (tmp_path / "rerun" / "rerun").exists()
    # a folder of anything else is not touched
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty. Fix: give a new working directory"):
        reproduce.reproduce(recorded, tmp_path, "other", snakefile)
    with pytest.raises(FileExistsError):  # nor one left by a re-run of another config
        reproduce.reproduce({**recorded, "config_sha256": "other"}, tmp_path, "rerun", snakefile)
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]


# ------------------------------------------------------------------- with the workflow


@pytest.fixture(scope="module")
def original(small_study):
    """A small study run with 2 cores, as a collaborator receives it."""
    return small_study


@pytest.fixture(scope="module")
def reproduced(original, tmp_path_factory):
    """`radiotx reproduce` of the original's manifest as the README shows it: relative
    paths, a new directory `rerun`, 4 cores (the original ran with 2, so the jobs interleave
    differently)."""
    here = tmp_path_factory.mktemp("reproduced")
    command = [
        str(Path(sys.executable).parent / "radiotx"), "reproduce",
        os.path.relpath(original / "results" / "manifest.json", here), "--workdir", "rerun",
        "--cores", "4",
    ]  # fmt: skip
    run = subprocess.run(command, capture_output=True, text=True, cwd=here)
    return {"dir": here / "rerun", "run": run}


def test_a_second_run_with_other_parallelism_gives_identical_results(original, reproduced):
    run = reproduced["run"]
    assert run.returncode == 0, run.stdout + run.stderr
    # metrics, out-of-fold predictions, selected features and every outer fold's record
    files = reproduce._model_files(original / "results")
    assert len(files) == 24  # 5 models x 3 files, 9 outer folds
    assert reproduce.result_differences(original / "results", reproduced["dir"] / "results") == []
    for line in ("Config: as recorded", "Inputs: as recorded", "Results: identical"):
        assert line in run.stdout
    # the manifest names the code's commit
    recorded = manifest.read(original / "results" / "manifest.json")
    assert recorded["git"] == manifest.git_state(REPO)
    # the demo cohort itself was regenerated from the seed, file for file
    assert not (reproduced["dir"] / "resources" / "demo" / "clinical.tsv").is_symlink()


def test_the_rerun_matches_the_metrics_logged_to_mlflow(original, reproduced):
    last = json.loads((original / "results" / "mlflow" / "last_run.json").read_text())
    recorded, logged = track.study_record(
        last["parent_run_id"], tracking.default_tracking_uri(original / "results")
    )
    # the logged manifest names its inputs by pseudonyms; the study's key names them again
    sheet = pd.read_csv(original / "config" / "patients.tsv", sep="\t", dtype=str)
    assert recorded["inputs_pseudonymised"]
    assert not any(patient in json.dumps(recorded) for patient in sheet["patient_id"])
    local = manifest.read(original / "results" / "manifest.json")
    assert reproduce.named_inputs(recorded, original) == local
    assert len(logged) >= 5 and all("roc_auc" in m for m in logged.values())
    assert reproduce.metric_differences(logged, reproduced["dir"] / "results") == []
    # a difference is named with both values
    name = sorted(logged)[0]
    logged[name] = {**logged[name], "roc_auc": logged[name]["roc_auc"] + 0.01}
    [found] = reproduce.metric_differences(logged, reproduced["dir"] / "results")
    assert found.name == f"{name} roc_auc" and found.recorded != found.now


def test_reproduce_reports_changed_inputs_and_results(original, reproduced, tmp_path):
    """A collaborator whose copy of an input differs is told which file, and that the
    results moved."""
    study = tmp_path / "copy"
    shutil.copytree(original, study, symlinks=True, ignore=shutil.ignore_patterns("mlflow*"))
    recorded = manifest.read(study / "results" / "manifest.json")
    clinical = study / recorded["config"]["clinical"]["table"]
    assert clinical.exists()
    differences = reproduce.input_differences(recorded, study)
    assert differences == []
    clinical.write_text(clinical.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    [changed] = reproduce.input_differences(recorded, study)
    assert changed.name == recorded["config"]["clinical"]["table"]
    metrics = next((study / "results" / "models").rglob("metrics.json"))
    edited = json.loads(metrics.read_text(encoding="utf-8"))
    edited["pooled"]["roc_auc"] = 0.5
    metrics.write_text(json.dumps(edited), encoding="utf-8")
    [moved] = reproduce.result_differences(study / "results", reproduced["dir"] / "results")
    assert moved.recorded == "roc_auc 0.5"
    assert "Results: 1 differ" in reproduce.report([changed, moved], "x")


def test_a_changed_config_stops_before_replacing_results(original, tmp_path):
    study = tmp_path / "study"
    shutil.copytree(original, study, symlinks=True)
    config_path = study / "config" / "config.yaml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    config["cv"]["bootstrap"] = 300
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    before = (study / "results" / "summary.tsv").stat().st_mtime_ns
    refused = snakemake(study, check=False)
    assert refused.returncode != 0
    assert "differs in: cv.bootstrap" in refused.stderr and "replace_results=true" in refused.stderr
    assert (study / "results" / "summary.tsv").stat().st_mtime_ns == before
    # asked for, the new config runs; the results it replaces stay until it is complete
    snakemake(study, "work/manifest.json", "--config", "replace_results=true")
    assert manifest.read(study / "work" / "manifest.json")["config"]["cv"]["bootstrap"] == 300
    assert manifest.read(study / "results" / "manifest.json")["config"]["cv"]["bootstrap"] != 300
