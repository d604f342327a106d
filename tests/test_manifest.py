"""The study manifest: config hash, input checksums, git state, versions."""

import hashlib
import os
import subprocess

import numpy as np
import pytest

from radiotx import manifest


def test_config_hash_ignores_key_order_and_sees_values():
    a = {"study": "s", "cv": {"outer_folds": 5, "inner_folds": 3}}
    b = {"cv": {"inner_folds": 3, "outer_folds": 5}, "study": "s"}
    assert manifest.config_hash(a) == manifest.config_hash(b)
    assert manifest.config_hash(a) != manifest.config_hash({**a, "seed": 1})


def test_checksums_of_files_and_series_folders(tmp_path):
    (tmp_path / "a.tsv").write_text("x\t1\n", encoding="utf-8")
    series = tmp_path / "series"
    series.mkdir()
    (series / "1.dcm").write_bytes(b"slice one")
    (series / "2.dcm").write_bytes(b"slice two")
    sums = manifest.checksums([tmp_path / "a.tsv", series, tmp_path / "a.tsv"])
    assert list(sums) == [str(tmp_path / "a.tsv"), str(series)]
    assert sums[str(tmp_path / "a.tsv")] == hashlib.sha256(b"x\t1\n").hexdigest()
    before = manifest.digest(sums)
    (series / "2.dcm").write_bytes(b"slice 2")  # one changed slice changes the series
    after = manifest.checksums([tmp_path / "a.tsv", series])
    assert after[str(series)] != sums[str(series)] and manifest.digest(after) != before


def test_git_state_reports_the_commit_and_uncommitted_changes(tmp_path):
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "f.py").write_text("a = 1\n", encoding="utf-8")
    git("add", "f.py")
    git("-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "one")
    state = manifest.git_state(tmp_path)
    assert len(state["commit"]) == 40 and state["dirty"] is False
    (tmp_path / "f.py").write_text("a = 2\n", encoding="utf-8")
    assert manifest.git_state(tmp_path)["dirty"] is True
    assert manifest.git_state(tmp_path / "f.py") == {}  # not a checkout: nothing claimed


def test_build_and_round_trip(tmp_path):
    data = tmp_path / "clinical.tsv"
    data.write_text("patient_id\tage\nP1\t60\n", encoding="utf-8")
    built = manifest.build({"study": "s", "seed": 42}, [data], tmp_path)
    assert built["packages"]["numpy"] == np.__version__
    assert built["config"] == {"study": "s", "seed": 42} and built["git"] == {}
    assert built["inputs"] == {str(data): manifest.file_sha256(data)}
    manifest.write(built, tmp_path / "results" / "manifest.json")
    assert manifest.read(tmp_path / "results" / "manifest.json") == built


def test_results_made_from_other_input_files_are_not_replaced(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("clinical.tsv", "P1.nii.gz", "P2.nii.gz"):
        (tmp_path / name).write_text(name, encoding="utf-8")
    inputs = ["P1.nii.gz", "P2.nii.gz", "clinical.tsv"]
    config = {"study": "s", "seed": 1}
    manifest.write(manifest.build(config, inputs, tmp_path), "results/manifest.json")
    manifest.check_same_study(config, inputs, "results/manifest.json")  # nothing changed
    # results not yet complete (no summary): a changed file is how a bad patient is fixed
    (tmp_path / "P1.nii.gz").write_text("P1, exported again", encoding="utf-8")
    manifest.check_same_study(config, inputs, "results/manifest.json")
    manifest.write(manifest.build(config, inputs, tmp_path), "results/manifest.json")
    (tmp_path / "results" / "summary.tsv").write_text("complete", encoding="utf-8")
    # the same content saved again (a new modification time) is no change
    os.utime("clinical.tsv", ns=(1, 1))
    manifest.check_same_study(config, inputs, "results/manifest.json")
    # a patient dropped from the clinical table, another's image gone, a third added
    (tmp_path / "clinical.tsv").write_text("clinical without P2", encoding="utf-8")
    (tmp_path / "P2.nii.gz").unlink()
    (tmp_path / "P3.nii.gz").write_text("P3", encoding="utf-8")
    now = ["P1.nii.gz", "P3.nii.gz", "clinical.tsv"]
    recorded = manifest.read("results/manifest.json")
    assert manifest.input_changes(recorded, now) == {
        "changed": ["clinical.tsv"], "removed": ["P2.nii.gz"], "added": ["P3.nii.gz"],
    }  # fmt: skip
    with pytest.raises(ValueError, match="made from other input files") as info:
        manifest.check_same_study(config, now, "results/manifest.json")
    message = str(info.value)
    assert "changed: clinical.tsv; removed: P2.nii.gz; added: P3.nii.gz" in message
    assert "replace_results=true" in message
    # a file that the demo generator makes again may be absent
    (tmp_path / "P3.nii.gz").unlink()
    (tmp_path / "clinical.tsv").write_text("clinical.tsv", encoding="utf-8")  # as recorded
    manifest.check_same_study(
        config, ["P1.nii.gz", "clinical.tsv"], "results/manifest.json", generated=["P2.nii.gz"]
    )
