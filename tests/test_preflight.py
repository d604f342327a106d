"""The checks before any job report every problem of the input files at once."""

import pytest

from radiotx import preflight
from radiotx.errors import InputError


def study(tmp_path, clinical: str, table: str, params: str) -> dict:
    for name, text in (("clinical.tsv", clinical), ("lab.tsv", table), ("p.yaml", params)):
        (tmp_path / name).write_text(text, encoding="utf-8")
    return {
        "clinical": {
            "table": str(tmp_path / "clinical.tsv"), "id_column": "patient_id",
            "numeric": ["age"], "categorical": [],
        },
        "tables": {"lab": {"path": str(tmp_path / "lab.tsv"), "id_column": "patient_id"}},
        "radiomics": {"params": str(tmp_path / "p.yaml")},
        "endpoints": {"response": {"column": "response", "positive": 1}},
    }  # fmt: skip


def test_every_problem_is_reported_at_once(tmp_path):
    config = study(
        tmp_path,
        clinical="patient_id\tage\tresponse\nP1\t60\t0\nP2\tinf\t1\n",
        table="patient_id\tx\nP1\t1\nP2\t1\n",
        params="setting:\n  binWidht: 25\n",
    )
    found = preflight.problems(config, radiomics=True)
    assert [err.path for err in found] == [
        config["clinical"]["table"],
        config["tables"]["lab"]["path"],
        config["radiomics"]["params"],
    ]
    with pytest.raises(InputError, match=r"3 problems in the study's input files") as info:
        preflight.check(config, radiomics=True)
    text = str(info.value)
    assert "infinite value" in text and "'lab' varies" in text and "binWidht" in text
    # without radiomics the parameter file is not read; one problem is raised as it is
    assert len(preflight.problems(config, radiomics=False)) == 2
    (tmp_path / "lab.tsv").write_text("patient_id\tx\nP1\t1\nP2\t2\n", encoding="utf-8")
    with pytest.raises(InputError, match="infinite value") as info:
        preflight.check(config, radiomics=False)
    assert info.value.patient == "P2"


def test_good_inputs_pass(tmp_path, repo_root):
    config = study(
        tmp_path,
        clinical="patient_id\tage\tresponse\nP1\t60\t0\nP2\t70\t1\n",
        table="patient_id\tx\nP1\t1\nP2\t2\n",
        params=(repo_root / "config" / "radiomics" / "ct_demo.yaml").read_text(encoding="utf-8"),
    )
    assert preflight.problems(config, radiomics=True) == []


def test_an_endpoint_that_cannot_be_modelled_is_named(tmp_path):
    config = study(tmp_path, clinical="", table="patient_id\tx\nP1\t1\nP2\t2\n", params="")
    table = tmp_path / "clinical.tsv"
    table.write_text("patient_id\tage\tresponse\nP1\t60\t0\nP2\t70\t0\n", encoding="utf-8")
    with pytest.raises(InputError, match="endpoint 'response': endpoint column 'response' does"):
        preflight.check(config, radiomics=False)
    config["endpoints"] = {"os": {"event": "dead", "positive": 1, "time": "months"}}
    table.write_text("patient_id\tage\tdead\tmonths\nP1\t60\t0\t5\nP2\t70\t0\t9\n")
    with pytest.raises(InputError, match="endpoint 'os': no patient has the event") as info:
        preflight.check(config, radiomics=False)
    assert "endpoints.os.event" in str(info.value)


def test_a_glance_at_every_patients_files_lists_the_bad_ones(tmp_path):
    """Absent files, files named .gz that are not gzip and unreadable headers are listed
    before any job; files that a job makes and patients whose files no job reads are not
    looked at."""
    import gzip

    import numpy as np
    import pandas as pd
    import SimpleITK as sitk

    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((4, 4, 4))), str(tmp_path / "P1.nii.gz"))
    (tmp_path / "P2.nii.gz").write_bytes(b"plain, named .gz")
    (tmp_path / "P5.nii.gz").write_bytes(gzip.compress(b"gzip, but no image inside"))
    sheet = pd.DataFrame(
        {
            "image": [str(tmp_path / f"P{i}.nii.gz") for i in (1, 2, 3, 4, 5)],
            "mask": [str(tmp_path / "P1.nii.gz")] * 5,
            "rnaseq": ["", "", "", "gone.tsv", ""],
        },
        index=["P1", "P2", "P3", "P4", "P5"],
    )
    images = ["P1", "P2", "P3", "P5"]
    readers = {"image": images, "mask": images, "rnaseq": ["P4"]}
    found = preflight.patient_files(sheet, readers, generated=[str(tmp_path / "P3.nii.gz")])
    assert [(err.patient, err.problem.split(" (")[0]) for err in found] == [
        ("P2", "image is not gzip-compressed as its name says"),
        ("P4", "rnaseq file does not exist"),
        ("P5", "image could not be read as an image"),
    ]
    text = preflight.warning(found)
    assert "the files of 3 patient(s) have problems" in text and "every other patient" in text
    assert "Fix: correct the 'rnaseq' path of this patient in the patient sheet" in text
