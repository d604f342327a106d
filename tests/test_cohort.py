"""Tests for the patient sheet, the clinical table, endpoints and the MuData cohort."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from radiotx import cohort
from radiotx.errors import InputError


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------ patient sheet


def test_read_sheet_empty_cells_mean_not_available(tmp_path):
    sheet_path = write(
        tmp_path / "patients.tsv",
        "patient_id\timage\tmask\trnaseq\n"
        "P1\ta.nii\tam.nii\tP1.tsv\n"
        " P2 \tb.nii\tbm.nii\t\n"
        "P3\t\t\tP3.tsv\n",
    )
    sheet = cohort.read_sheet(sheet_path)

    assert list(sheet.index) == ["P1", "P2", "P3"]
    assert sheet.loc["P2", "patient_id"] == "P2"  # surrounding whitespace stripped
    assert sheet.loc["P2", "rnaseq"] == ""  # empty stays an empty string, not NaN
    assert not sheet.isna().any().any()
    assert cohort.patients_with(sheet, "rnaseq") == ["P1", "P3"]
    assert cohort.patients_with(sheet, "image", "mask") == ["P1", "P2"]
    assert cohort.patients_with(sheet, "image", "rnaseq") == ["P1"]


def test_read_sheet_adds_missing_optional_columns(tmp_path):
    sheet = cohort.read_sheet(write(tmp_path / "s.tsv", "patient_id\timage\nP1\ta.nii\n"))
    assert set(cohort.SHEET_COLUMNS) <= set(sheet.columns)
    assert cohort.patients_with(sheet, "mask") == []
    assert cohort.patients_with(sheet, "image") == ["P1"]


def test_read_sheet_of_demo_cohort(demo_dir, demo_sheet):
    sheet = cohort.read_sheet(demo_dir / "patients.tsv")
    assert list(sheet.index) == list(demo_sheet["patient_id"])
    expected = demo_sheet.loc[demo_sheet["rnaseq"] != "", "patient_id"].tolist()
    assert cohort.patients_with(sheet, "rnaseq") == expected
    assert 0 < len(expected) < len(sheet)
    assert cohort.patients_with(sheet, "image", "mask") == list(sheet.index)


def test_read_sheet_duplicate_patient_names_patient_and_file(tmp_path):
    sheet_path = write(
        tmp_path / "patients.tsv",
        "patient_id\timage\tmask\trnaseq\nP1\ta\tb\t\nP7\ta\tb\t\nP7\tc\td\t\n",
    )
    with pytest.raises(InputError) as info:
        cohort.read_sheet(sheet_path)
    message = str(info.value)
    assert "P7" in message
    assert str(sheet_path) in message
    assert "Fix:" in message


def test_read_sheet_without_patient_id_column(tmp_path):
    sheet_path = write(tmp_path / "patients.tsv", "id\timage\nP1\ta\n")
    with pytest.raises(InputError, match="patient_id") as info:
        cohort.read_sheet(sheet_path)
    assert info.value.path == str(sheet_path)


def test_read_sheet_empty_patient_id(tmp_path):
    sheet_path = write(tmp_path / "patients.tsv", "patient_id\timage\nP1\ta\n\tb\n")
    with pytest.raises(InputError, match="line 3 has an empty patient_id"):
        cohort.read_sheet(sheet_path)


# ----------------------------------------------------------------------------- clinical table

CLINICAL_ROWS = [
    ["patient_id", "age", "stage", "vital", "response"],
    ["P1", "61.5", "II", "Dead", "1"],
    ["P2", "Not collected", "III", "Alive", "0"],
    ["P3", "70", "", "Alive", "1"],
    ["P4", "NA", "II", "Unknown", "0"],
]


@pytest.mark.parametrize("suffix, sep", [(".csv", ","), (".tsv", "\t"), (".txt", "\t")])
def test_read_clinical_csv_and_tsv(tmp_path, suffix, sep):
    path = write(tmp_path / f"clinical{suffix}", "\n".join(sep.join(r) for r in CLINICAL_ROWS))
    table = cohort.read_clinical(path)

    assert list(table.index) == ["P1", "P2", "P3", "P4"]
    assert table.index.name == "patient_id"
    assert table["age"].dtype == np.float64
    assert table.loc["P1", "age"] == 61.5
    assert np.isnan(table.loc["P2", "age"])  # 'Not collected'
    assert np.isnan(table.loc["P4", "age"])  # 'NA'
    assert pd.isna(table.loc["P3", "stage"])  # empty cell
    assert pd.isna(table.loc["P4", "vital"])  # 'Unknown'
    assert table.loc["P2", "vital"] == "Alive"


def test_read_clinical_custom_id_column(tmp_path):
    path = write(tmp_path / "c.tsv", "case\tage\nA\t1\nB\t2\n")
    assert list(cohort.read_clinical(path, id_column="case").index) == ["A", "B"]
    with pytest.raises(InputError, match="'patient_id' column") as info:
        cohort.read_clinical(path)
    assert info.value.path == str(path)


def test_read_clinical_duplicate_ids(tmp_path):
    path = write(tmp_path / "c.csv", "patient_id,age\nP1,50\nP2,60\nP2 ,61\n")
    with pytest.raises(InputError, match="patient P2 appears more than once") as info:
        cohort.read_clinical(path)
    assert str(path) in str(info.value)


def test_read_clinical_keeps_numeric_looking_ids_verbatim(tmp_path):
    path = write(tmp_path / "c.tsv", "patient_id\tage\n007\t50\n012\t60\n")
    assert list(cohort.read_clinical(path).index) == ["007", "012"]


def test_read_clinical_missing_markers_are_case_insensitive(tmp_path):
    rows = "patient_id\tpack_years\tstatus\nP1\tNot Collected\tNot Recorded In Database\n"
    path = write(tmp_path / "c.tsv", rows + "P2\t30\tAlive\n")
    table = cohort.read_clinical(path)
    assert table["pack_years"].dtype == np.float64 and np.isnan(table.loc["P1", "pack_years"])
    assert pd.isna(table.loc["P1", "status"]) and table.loc["P2", "status"] == "Alive"


def test_for_patients_keeps_the_sheet_patients(tmp_path, caplog):
    table = pd.DataFrame({"age": [50, 60, 70]}, index=pd.Index(["P1", "P2", "P9"]))
    sheet = pd.DataFrame(index=pd.Index(["P2", "P1", "P3"]))
    kept = cohort.for_patients(table, sheet, "clinical.tsv")
    assert list(kept.index) == ["P2", "P1"]
    assert "P3" in caplog.text and "clinical.tsv" in caplog.text


def test_read_clinical_of_demo_cohort(demo_dir, demo_sheet):
    table = cohort.read_clinical(demo_dir / "clinical.tsv")
    assert list(table.index) == list(demo_sheet["patient_id"])
    assert set(table["response"].unique()) == {0, 1}


# ---------------------------------------------------------------------------- encode_clinical


def clinical_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [61.5, np.nan, 70, 55],
            "stage": ["II", "III", np.nan, "II"],
            "sex": ["F", "M", "M", "F"],
        },
        index=pd.Index(["P1", "P2", "P3", "P4"], name="patient_id"),
    )


def test_encode_clinical_numeric_and_indicators():
    encoded = cohort.encode_clinical(clinical_frame(), ["age"], ["stage", "sex"])

    assert list(encoded.columns) == ["age", "stage=II", "stage=III", "sex=F", "sex=M"]
    assert (encoded.dtypes == np.float64).all()
    assert list(encoded.index) == ["P1", "P2", "P3", "P4"]
    np.testing.assert_array_equal(encoded["age"], [61.5, np.nan, 70.0, 55.0])
    np.testing.assert_array_equal(encoded["stage=II"], [1, 0, np.nan, 1])
    np.testing.assert_array_equal(encoded["stage=III"], [0, 1, np.nan, 0])
    np.testing.assert_array_equal(encoded["sex=F"], [1, 0, 0, 1])
    # Exactly one indicator per observed level is set, for every patient with a value.
    sex = encoded[["sex=F", "sex=M"]]
    assert (sex.sum(axis=1) == 1).all()


def test_encode_clinical_is_per_patient():
    """A patient's encoding does not depend on the other patients (only on the levels)."""
    table = clinical_frame()
    full = cohort.encode_clinical(table, ["age"], ["stage", "sex"])
    shuffled = cohort.encode_clinical(table.iloc[::-1], ["age"], ["stage", "sex"])
    pd.testing.assert_frame_equal(full, shuffled.loc[full.index])


def test_encode_clinical_numeric_strings_are_parsed():
    table = pd.DataFrame({"age": ["61", "70.5", None]}, index=["P1", "P2", "P3"])
    encoded = cohort.encode_clinical(table, ["age"], [])
    np.testing.assert_array_equal(encoded["age"], [61.0, 70.5, np.nan])


def test_encode_clinical_non_numeric_value_names_patient(tmp_path):
    table = clinical_frame()
    table["age"] = table["age"].astype(object)
    table.loc["P3", "age"] = "seventy"
    with pytest.raises(InputError) as info:
        cohort.encode_clinical(table, ["age"], [], path=tmp_path / "c.tsv")
    err = info.value
    assert err.patient == "P3"
    assert "'seventy'" in str(err)
    assert "patient P3" in str(err)
    assert str(tmp_path / "c.tsv") in str(err)
    assert "Fix:" in str(err)


def test_encode_clinical_unknown_column():
    with pytest.raises(InputError, match=r"\['bmi'\]"):
        cohort.encode_clinical(clinical_frame(), ["age", "bmi"], ["sex"])


def test_encode_clinical_no_columns_keeps_index():
    encoded = cohort.encode_clinical(clinical_frame(), [], [])
    assert encoded.shape == (4, 0)
    assert list(encoded.index) == ["P1", "P2", "P3", "P4"]


# ---------------------------------------------------------------------------- endpoint_labels


def test_endpoint_labels_integer_positive():
    table = pd.DataFrame({"response": [1, 0, 0, 1, 2]}, index=list("ABCDE"))
    assert table["response"].dtype.kind == "i"
    labels = cohort.endpoint_labels(table, "response", 1)
    assert labels.dtype == np.float64
    assert labels.to_dict() == {"A": 1.0, "B": 0.0, "C": 0.0, "D": 1.0, "E": 0.0}


def test_endpoint_labels_string_positive_and_missing():
    table = pd.DataFrame({"vital": ["Dead", "Alive", None, " Dead ", "Lost"]}, index=list("ABCDE"))
    labels = cohort.endpoint_labels(table, "vital", "Dead")
    np.testing.assert_array_equal(labels.to_numpy(), [1.0, 0.0, np.nan, 1.0, 0.0])
    assert list(labels.index) == list("ABCDE")


def test_endpoint_labels_from_clinical_file_with_missing(tmp_path):
    path = write(tmp_path / "c.tsv", "patient_id\tvital\nP1\tDead\nP2\tNot collected\nP3\tAlive\n")
    labels = cohort.endpoint_labels(cohort.read_clinical(path), "vital", "Dead")
    np.testing.assert_array_equal(labels.to_numpy(), [1.0, np.nan, 0.0])


def test_endpoint_labels_integer_positive_with_missing_values(tmp_path):
    path = write(tmp_path / "c.tsv", "patient_id\tresponse\nP1\t1\nP2\t0\nP3\t\nP4\t1\n")
    labels = cohort.endpoint_labels(cohort.read_clinical(path), "response", 1)
    np.testing.assert_array_equal(labels.to_numpy(), [1.0, 0.0, np.nan, 1.0])


def test_endpoint_labels_absent_positive_value(tmp_path):
    table = pd.DataFrame({"vital": ["Alive", "Alive", None]}, index=list("ABC"))
    with pytest.raises(InputError, match="'Dead'") as info:
        cohort.endpoint_labels(table, "vital", "Dead", path=tmp_path / "c.tsv")
    assert "Fix:" in str(info.value)


def test_endpoint_labels_only_positive_value():
    table = pd.DataFrame({"vital": ["Dead", "Dead"]}, index=list("AB"))
    with pytest.raises(InputError):
        cohort.endpoint_labels(table, "vital", "Dead")


def test_endpoint_labels_unknown_column():
    table = pd.DataFrame({"vital": ["Dead", "Alive"]}, index=list("AB"))
    with pytest.raises(InputError, match="'os'"):
        cohort.endpoint_labels(table, "os", "Dead")


# ------------------------------------------------------------------------------ MuData cohort


@pytest.fixture
def modalities() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(0)
    everyone = [f"P{i}" for i in range(1, 9)]
    with_rna = ["P2", "P5", "P1", "P7", "P8"]  # unsorted on purpose, and some patients lack it
    return {
        "radiomics": pd.DataFrame(
            rng.normal(size=(8, 4)) * 1000,
            index=everyone,
            columns=["original_shape_MeshVolume", "f2", "f3", "f4"],
        ),
        "rnaseq": pd.DataFrame(
            rng.gamma(2.0, size=(5, 6)), index=with_rna, columns=[f"G{i}" for i in range(6)]
        ),
        "clinical": pd.DataFrame(
            {"age": rng.uniform(40, 80, 8), "sex=F": [1.0, 0, 1, 0, np.nan, 1, 0, 1]},
            index=everyone[::-1],
        ),
    }


def test_build_write_read_round_trip(tmp_path, modalities):
    labels = {
        "response": pd.Series([1, 0, 1, np.nan, 0, 0, 1, 0], index=[f"P{i}" for i in range(1, 9)]),
        # Labels of patients outside the cohort are ignored; patients without a label get NaN.
        "vital": pd.Series({"P1": 1.0, "P3": 0.0, "P99": 1.0}),
    }
    built = cohort.build(modalities, labels)
    path = tmp_path / "results" / "cohort.h5mu"
    cohort.write(built, path)
    assert path.exists()
    mdata = cohort.read(path)

    patients = [f"P{i}" for i in range(1, 9)]
    assert list(mdata.obs_names) == patients
    assert set(mdata.mod) == {"radiomics", "rnaseq", "clinical"}

    avail = cohort.availability(mdata)
    assert avail.index.name == "patient_id"
    assert list(avail.index) == patients
    assert set(avail.columns) == {"radiomics", "rnaseq", "clinical"}
    assert avail["radiomics"].all() and avail["clinical"].all()
    assert avail.index[avail["rnaseq"]].tolist() == ["P1", "P2", "P5", "P7", "P8"]
    assert avail.dtypes.eq(bool).all()

    np.testing.assert_array_equal(mdata.obs["response"].to_numpy(), [1, 0, 1, np.nan, 0, 0, 1, 0])
    vital = mdata.obs["vital"]
    assert vital["P1"] == 1.0 and vital["P3"] == 0.0
    assert vital.drop(["P1", "P3"]).isna().all()

    for name, original in modalities.items():
        frame = cohort.modality_frame(mdata, name)
        assert list(frame.columns) == list(original.columns)
        assert sorted(frame.index) == list(frame.index)
        pd.testing.assert_frame_equal(
            frame,
            original.loc[frame.index].astype("float32"),
            check_dtype=False,
            check_names=False,
            rtol=1e-6,
        )
        assert set(frame.index) == set(original.index)
    assert mdata.mod["rnaseq"].var["modality"].eq("rnaseq").all()


def test_build_cohort_is_union_of_modalities(modalities):
    modalities["radiomics"] = modalities["radiomics"].drop(["P3", "P4"])
    modalities["clinical"] = modalities["clinical"].drop(["P4"])
    mdata = cohort.build(modalities, {})
    # P4 has no modality at all and is therefore not in the cohort.
    assert list(mdata.obs_names) == ["P1", "P2", "P3", "P5", "P6", "P7", "P8"]
    avail = cohort.availability(mdata)
    assert avail.loc["P3"].to_dict() == {"radiomics": False, "rnaseq": False, "clinical": True}
    assert avail.loc["P2"].all()


# --------------------------------------------------------------------- feature tables


@pytest.mark.parametrize("name", ["t.csv", "t.tsv", "t.parquet"])
def test_read_table_of_precomputed_features(tmp_path, name):
    frame = pd.DataFrame(
        {"pid": ["007", "P2", "P3"], "f1": [1.5, 2.0, -1.0], "f2": ["3", "Not collected", "4"]}
    )
    path = tmp_path / name
    if name.endswith(".parquet"):
        frame.to_parquet(path)
    else:
        frame.to_csv(path, sep="," if name.endswith(".csv") else "\t", index=False)
    table = cohort.read_table(path, "pid")
    assert list(table.index) == ["007", "P2", "P3"]
    assert table.dtypes.eq("float64").all()
    assert np.isnan(table.loc["P2", "f2"]) and table.loc["P3", "f2"] == 4.0


def test_read_table_errors(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({"pid": ["P1", "P2"], "f1": [1.0, "high"]}).to_csv(path, index=False)
    with pytest.raises(InputError, match="column 'f1' has a non-numeric value 'high'") as info:
        cohort.read_table(path, "pid")
    assert "patient P2" in str(info.value)
    with pytest.raises(InputError, match="no 'patient_id' column"):
        cohort.read_table(path)
    pd.DataFrame({"pid": ["P1", "P1"], "f1": [1.0, 2.0]}).to_csv(path, index=False)
    with pytest.raises(InputError, match="patient P1 appears more than once"):
        cohort.read_table(path, "pid")


def test_endpoint_values_declared_missing():
    table = pd.DataFrame({"outcome": ["yes", "no", "pending", "yes", "no"]})
    labels = cohort.endpoint_labels(table, "outcome", "yes", missing=["pending"])
    assert labels.isna().tolist() == [False, False, True, False, False]
    assert labels.dropna().tolist() == [1.0, 0.0, 1.0, 0.0]


@pytest.mark.parametrize(
    ("text", "problem", "patient"),
    [
        ("patient_id\timage\nP1\ta\nP 2\tb\n", r"patient id 'P 2' on line 3 has characters", "P 2"),
        ("patient_id\timage\nP1\ta\nP/2\tb\n", r"patient id 'P/2' on line 3 has characters", "P/2"),
        ("patient_id\timage\tsite\nP1\ta\tA\n", r"column\(s\) 'site' that radiotx does not", None),
    ],
)  # fmt: skip
def test_read_sheet_names_the_line_the_column_and_the_fix(tmp_path, text, problem, patient):
    path = write(tmp_path / "patients.tsv", text)
    with pytest.raises(InputError, match=problem) as info:
        cohort.read_sheet(path)
    assert info.value.path == str(path) and info.value.patient == patient and info.value.fix


def test_read_sheet_that_does_not_exist_says_which_setting_names_it(tmp_path):
    with pytest.raises(InputError, match="does not exist") as info:
        cohort.read_sheet(tmp_path / "nowhere.tsv")
    assert "set `patients` in the config" in info.value.fix


@pytest.mark.parametrize(
    ("name", "text", "problem", "fix"),
    [
        ("c.tsv", "patient_id,age\nP1,60\n", "looks comma-separated", "name a comma-separated"),
        ("c.csv", "patient_id\tage\nP1\t60\n", "looks tab-separated", "name a tab-separated"),
        ("c.tsv", "patient_id\tage\nP1\t60\nP2\tinf\n", "column 'age' has an infinite", "empty"),
        ("c.tsv", "patient_id\tage\nP1\t60\nP2\t-Inf\n", "column 'age' has an infinite", "empty"),
        ("c.tsv", "patient_id\tage\nP1\t60\nP2\tsixty\n", "non-numeric value 'sixty'", "categ"),
    ],
)  # fmt: skip
def test_the_clinical_check_names_separator_and_values_with_the_fix(
    tmp_path, name, text, problem, fix
):
    path = write(tmp_path / name, text)
    spec = {"table": str(path), "id_column": "patient_id", "numeric": ["age"], "categorical": []}
    with pytest.raises(InputError, match=problem) as info:
        cohort.check_clinical(spec)
    assert info.value.path == str(path) and fix in info.value.fix
    if "P2" in text and "P2\t60" not in text:
        assert info.value.patient == "P2"


def test_a_feature_table_without_a_varying_column_is_named(tmp_path):
    path = write(tmp_path / "t.tsv", "patient_id\ta\tb\nP1\t1\t5\nP2\t1\t5\nP3\t1\t\n")
    with pytest.raises(InputError, match="no column of feature table 'lab' varies") as info:
        cohort.check_table("lab", {"path": str(path), "id_column": "patient_id"})
    assert info.value.path == str(path) and "remove 'lab' from the pipelines" in info.value.fix
    path.write_text("patient_id\ta\tb\nP1\t1\t5\nP2\t2\t5\n", encoding="utf-8")
    cohort.check_table("lab", {"path": str(path), "id_column": "patient_id"})


def test_a_modelled_modality_that_no_patient_has_is_named(tmp_path):
    with pytest.raises(InputError, match="models radiomics, but no patient") as info:
        cohort.check_modalities(
            {"radiomics", "clinical"}, {"radiomics": [], "rnaseq": []}, "config/patients.tsv"
        )
    assert "config/patients.tsv" in str(info.value) and "image and mask" in str(info.value)
    cohort.check_modalities({"clinical"}, {"radiomics": [], "rnaseq": []}, "sheet.tsv")


def test_a_missing_clinical_table_is_named(tmp_path):
    with pytest.raises(InputError, match="clinical table does not exist") as info:
        cohort.read_clinical(tmp_path / "clinicl.tsv")
    assert "clinicl.tsv" in str(info.value) and "clinical.table" in str(info.value)
