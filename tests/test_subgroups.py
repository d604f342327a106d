"""Tests for the fairness subgroups of a cohort and the cohort-by-subgroup table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from radiotx import cohort, demo
from radiotx.errors import InputError
from radiotx.fairness import subgroups
from radiotx.fairness.subgroups import MISSING, Attribute

AGE_BINS = [0, 60, 70, 120]


@pytest.fixture(scope="module")
def clinical() -> pd.DataFrame:
    """The demo clinical table of 80 patients (sites A/B/C; P037 has no age, P066 and P067
    no smoking status)."""
    return demo.clinical_table(demo.design(80, seed=7), seed=7).set_index("patient_id")


# --- Attribute.from_config -------------------------------------------------------------


def test_from_config_plain_column():
    assert Attribute.from_config("sex", "sex") == Attribute("sex", "sex", None, None)


def test_from_config_bins():
    attribute = Attribute.from_config("age", {"column": "age", "bins": AGE_BINS})
    assert attribute == Attribute("age", "age", (0.0, 60.0, 70.0, 120.0), None)
    assert all(isinstance(b, float) for b in attribute.bins)


def test_from_config_pattern():
    spec = {"column": "Case ID", "pattern": "^([A-Z0-9]+)-"}
    attribute = Attribute.from_config("site", spec)
    assert attribute == Attribute("site", "Case ID", None, "^([A-Z0-9]+)-")


def test_from_config_empty_bins_and_pattern_mean_the_column_as_it_is():
    attribute = Attribute.from_config("stage", {"column": "stage", "bins": [], "pattern": ""})
    assert attribute == Attribute("stage", "stage")


def test_attributes_from_config_keeps_the_declared_order():
    fairness = {
        "attributes": {
            "sex": "sex",
            "age": {"column": "age", "bins": AGE_BINS},
            "site": "site",
        }
    }
    attributes = subgroups.attributes_from_config(fairness)
    assert [a.name for a in attributes] == ["sex", "age", "site"]
    assert attributes[1].bins == (0.0, 60.0, 70.0, 120.0)


# --- Attribute.values ------------------------------------------------------------------


def test_categorical_values_are_strings_with_missing_for_empty_cells():
    table = pd.DataFrame(
        {"sex": ["M", "F", "", "  ", "F"], "stage": [1, 2, 3, 2, 1]},
        index=pd.Index(["P1", "P2", "P3", "P4", "P5"], name="patient_id"),
    )
    sex = Attribute("sex", "sex").values(table)
    assert sex.name == "sex"
    assert sex.tolist() == ["M", "F", MISSING, MISSING, "F"]
    assert list(sex.index) == list(table.index)
    stage = Attribute("stage", "stage").values(table)
    assert stage.tolist() == ["1", "2", "3", "2", "1"]
    assert all(isinstance(v, str) for v in stage)


def test_demo_table_groups(clinical):
    sex = Attribute("sex", "sex").values(clinical)
    assert set(sex) == {"M", "F"}
    smoking = Attribute("smoking", "smoking").values(clinical)
    assert smoking.loc[["P066", "P067"]].tolist() == [MISSING, MISSING]
    assert set(smoking) == {"never", "former", "current", MISSING}
    site = Attribute("site", "site").values(clinical)
    assert site.value_counts().to_dict() == {"A": 29, "B": 29, "C": 22}
    age = Attribute.from_config("age", {"column": "age", "bins": AGE_BINS}).values(clinical)
    assert age.loc["P037"] == MISSING
    assert age.value_counts().to_dict() == {"60-70": 34, "0-60": 32, "70-120": 13, MISSING: 1}
    # every band holds exactly the ages of its left-closed interval
    known = clinical["age"].dropna()
    assert (known[age.loc[known.index] == "0-60"] < 60).all()
    assert known[age.loc[known.index] == "60-70"].between(60, 70, inclusive="left").all()
    assert (known[age.loc[known.index] == "70-120"] >= 70).all()


def test_ages_outside_the_bins_or_not_numbers_are_named_in_a_warning(caplog):
    table = pd.DataFrame(
        {"age": [64, "sixty", 130, np.nan, " "]},
        index=pd.Index(["P1", "P2", "P3", "P4", "P5"], name="patient_id"),
    )
    attribute = Attribute.from_config("age", {"column": "age", "bins": AGE_BINS})
    with caplog.at_level("WARNING", logger="radiotx.fairness.subgroups"):
        values = attribute.values(table, "clinical.tsv")
    assert values.tolist() == ["60-70", MISSING, MISSING, MISSING, MISSING]
    (message,) = [r.getMessage() for r in caplog.records]
    assert "2 patients" in message and "clinical.tsv" in message
    assert "P2 ('sixty')" in message and "P3 (130)" in message
    assert "P4" not in message and "P5" not in message  # not recorded: plainly missing
    assert "fairness.attributes.age.bins" in message


def test_categorical_nan_cells_are_missing():
    table = pd.DataFrame(
        {"smoking": ["never", np.nan, None, "current"], "stage": [1.0, np.nan, 2.0, 3.0]},
        index=pd.Index(["P1", "P2", "P3", "P4"], name="patient_id"),
    )
    assert Attribute("smoking", "smoking").values(table).tolist() == [
        "never",
        MISSING,
        MISSING,
        "current",
    ]
    assert Attribute("stage", "stage").values(table).tolist() == ["1", MISSING, "2", "3"]


def test_missing_smoking_read_from_the_clinical_file_is_missing(clinical, tmp_path):
    path = tmp_path / "clinical.tsv"
    demo.write_clinical(path, clinical.reset_index())
    table = cohort.read_clinical(path)
    smoking = Attribute("smoking", "smoking").values(table, path)
    assert smoking.loc[["P066", "P067"]].tolist() == [MISSING, MISSING]
    assert "nan" not in set(smoking)


def test_age_bands_are_left_closed():
    ages = [0, 35.5, 59.9, 60, 60.0, 69.99, 70, 119.9, 120, 130, -1, np.nan]
    table = pd.DataFrame({"age": ages}, index=[f"P{i:02d}" for i in range(len(ages))])
    attribute = Attribute.from_config("age", {"column": "age", "bins": AGE_BINS})
    assert attribute.values(table).tolist() == [
        "0-60",
        "0-60",
        "0-60",
        "60-70",
        "60-70",
        "60-70",
        "70-120",
        "70-120",
        MISSING,  # 120 lies outside [70, 120)
        MISSING,
        MISSING,
        MISSING,
    ]


def test_age_bands_from_text_and_fractional_edges():
    table = pd.DataFrame({"age": ["61", "unknown", "", "59"]}, index=["a", "b", "c", "d"])
    attribute = Attribute("age", "age", (0.0, 60.0, 70.0, 120.0))
    assert attribute.values(table).tolist() == ["60-70", MISSING, MISSING, "0-60"]
    attribute = Attribute("bmi", "bmi", (0.0, 18.5, 25.0, 100.0))
    table = pd.DataFrame({"bmi": [18.4, 18.5, 30.0]}, index=["a", "b", "c"])
    assert attribute.values(table).tolist() == ["0-18.5", "18.5-25", "25-100"]


def test_pattern_on_the_index():
    ids = ["R01-001", "AMC-002", "R01-003", "nodash"]
    table = pd.DataFrame({"age": [60, 61, 62, 63]}, index=pd.Index(ids, name="Case ID"))
    spec = {"column": "Case ID", "pattern": "^([A-Z0-9]+)-"}
    site = Attribute.from_config("site", spec).values(table)
    assert site.tolist() == ["R01", "AMC", "R01", MISSING]
    assert list(site.index) == ids and site.name == "site"


def test_pattern_on_a_column():
    table = pd.DataFrame(
        {"scanner": ["GE-Revolution", "SIEMENS-Force", np.nan, "GE-Optima"]},
        index=["P1", "P2", "P3", "P4"],
    )
    attribute = Attribute("vendor", "scanner", pattern="^([A-Z]+)-")
    assert attribute.values(table).tolist() == ["GE", "SIEMENS", MISSING, "GE"]


def test_unknown_column_names_attribute_column_and_path(clinical, tmp_path):
    path = tmp_path / "clinical.tsv"
    attribute = Attribute("centre", "hospital")
    with pytest.raises(InputError) as info:
        attribute.values(clinical, path=path)
    message = str(info.value)
    assert "'centre'" in message and "'hospital'" in message
    assert str(path) in message
    assert "site" in message  # the columns it does have
    assert info.value.path == str(path)
    assert "Fix:" in message


# --- subgroups, read and write ---------------------------------------------------------


def test_subgroups_index_and_patients_absent_from_the_table():
    table = pd.DataFrame(
        {"sex": ["M", "F", "F"], "age": [55.0, 65.0, 75.0]},
        index=pd.Index(["R01-001", "AMC-002", "R01-003"], name="Case ID"),
    )
    attributes = [
        Attribute("sex", "sex"),
        Attribute("age", "age", (0.0, 60.0, 70.0, 120.0)),
        Attribute("site", "Case ID", pattern="^([A-Z0-9]+)-"),
    ]
    frame = subgroups.subgroups(table, attributes)
    assert frame.index.name == "patient_id"
    assert list(frame.columns) == ["sex", "age", "site"]
    assert frame.loc["AMC-002"].tolist() == ["F", "60-70", "AMC"]

    patients = ["AMC-002", "R02-009", "R01-001"]
    frame = subgroups.subgroups(table, attributes, patients=patients)
    assert list(frame.index) == patients and frame.index.name == "patient_id"
    assert frame.loc["R02-009"].tolist() == [MISSING, MISSING, MISSING]
    assert frame.loc["R01-001"].tolist() == ["M", "0-60", "R01"]


def test_subgroups_index_is_text():
    table = pd.DataFrame({"sex": ["M", "F"]}, index=pd.Index([7, 12], name="id"))
    frame = subgroups.subgroups(table, [Attribute("sex", "sex")], patients=["12", "99"])
    assert list(frame.index) == ["12", "99"]
    assert all(isinstance(i, str) for i in frame.index)
    assert frame["sex"].tolist() == ["F", MISSING]


def test_subgroups_of_the_demo_cohort(clinical):
    attributes = subgroups.attributes_from_config(
        {"attributes": {"sex": "sex", "age": {"column": "age", "bins": AGE_BINS}, "site": "site"}}
    )
    frame = subgroups.subgroups(clinical, attributes, patients=list(clinical.index) + ["P999"])
    assert frame.shape == (81, 3)
    assert frame.loc["P999"].tolist() == [MISSING] * 3
    assert frame.loc["P037", "age"] == MISSING
    assert (frame.loc[clinical.index, "site"] == clinical["site"]).all()


def test_write_read_round_trip(tmp_path):
    frame = pd.DataFrame(
        {"sex": ["M", MISSING, "F"], "age": ["0-60", "60-70", MISSING], "site": ["01", "02", "01"]},
        index=pd.Index(["007", "010", "123"], name="patient_id"),
    )
    path = tmp_path / "subgroups.tsv"
    subgroups.write(frame, path)
    back = subgroups.read(path)
    pd.testing.assert_frame_equal(back, frame)
    assert back.index.tolist() == ["007", "010", "123"]
    assert back.loc["010", "sex"] == MISSING and back.loc["007", "site"] == "01"


# --- cohort_table and flags ------------------------------------------------------------


def small_cohort():
    """Six patients, two attributes, two endpoints (with unlabelled patients), two
    modalities."""
    ids = pd.Index(["p1", "p2", "p3", "p4", "p5", "p6"], name="patient_id")
    groups = pd.DataFrame(
        {
            "sex": ["M", "M", "M", "F", "F", MISSING],
            "age": ["0-60", "60-70", "60-70", "0-60", "60-70", "60-70"],
        },
        index=ids,
    )
    labels = {
        "response": pd.Series([1, 0, np.nan, 1, 1, 0], index=ids),
        "os2y": pd.Series([0, 0, 0, 1, np.nan, np.nan], index=ids),
    }
    availability = pd.DataFrame(
        {
            "ct": [True, False, True, True, True, True],
            "rnaseq": [True, True, False, False, True, False],
        },
        index=ids,
    )
    return groups, labels, availability


def test_cohort_table_by_hand():
    table = subgroups.cohort_table(*small_cohort())
    assert list(table.columns) == [
        "attribute",
        "group",
        "n",
        "share",
        "n_response",
        "prevalence_response",
        "n_os2y",
        "prevalence_os2y",
        "missing_ct",
        "missing_rnaseq",
    ]
    expected = pd.DataFrame(
        [
            # sex = F: p4, p5
            ["sex", "F", 2, 2 / 6, 2, 1.0, 1, 1.0, 0.0, 1 / 2],
            # sex = M: p1, p2, p3 (p3 unlabelled for response)
            ["sex", "M", 3, 3 / 6, 2, 1 / 2, 3, 0.0, 1 / 3, 1 / 3],
            # sex = missing: p6 (unlabelled for os2y)
            ["sex", MISSING, 1, 1 / 6, 1, 0.0, 0, np.nan, 0.0, 1.0],
            # age 0-60: p1, p4
            ["age", "0-60", 2, 2 / 6, 2, 1.0, 2, 1 / 2, 0.0, 1 / 2],
            # age 60-70: p2, p3, p5, p6
            ["age", "60-70", 4, 4 / 6, 3, 1 / 3, 2, 0.0, 1 / 4, 1 / 2],
        ],
        columns=table.columns,
    )
    pd.testing.assert_frame_equal(table, expected, check_dtype=False)


def test_cohort_table_patient_without_availability_row_misses_every_modality():
    groups, labels, availability = small_cohort()
    table = subgroups.cohort_table(groups, labels, availability.drop(index="p6"))
    row = table.set_index(["attribute", "group"]).loc[("sex", MISSING)]
    assert row["missing_ct"] == 1.0 and row["missing_rnaseq"] == 1.0


def test_cohort_table_of_the_demo_cohort(clinical):
    attributes = [Attribute("site", "site"), Attribute("sex", "sex")]
    groups = subgroups.subgroups(clinical, attributes)
    labels = {"response": clinical["response"].astype(float)}
    availability = pd.DataFrame({"ct": True}, index=groups.index)
    table = subgroups.cohort_table(groups, labels, availability).set_index(["attribute", "group"])
    site = table.loc["site"]
    assert site["n"].to_dict() == {"A": 29, "B": 29, "C": 22}
    assert site["prevalence_response"].to_dict() == pytest.approx(
        {"A": 10 / 29, "B": 11 / 29, "C": 3 / 22}
    )
    assert (table["missing_ct"] == 0).all()
    assert table.loc["sex", "share"].sum() == pytest.approx(1.0)


def cohort_with_prevalences(positives: dict[str, tuple[int, int]]) -> pd.DataFrame:
    """A cohort table of one attribute 'site' whose group ``g`` has ``positives[g]`` =
    (positives, patients)."""
    ids, sites, y = [], [], []
    for site, (pos, n) in positives.items():
        for i in range(n):
            ids.append(f"{site}-{i:03d}")
            sites.append(site)
            y.append(1.0 if i < pos else 0.0)
    index = pd.Index(ids, name="patient_id")
    groups = pd.DataFrame({"site": sites}, index=index)
    availability = pd.DataFrame({"ct": True}, index=index)
    return subgroups.cohort_table(groups, {"response": pd.Series(y, index=index)}, availability)


def test_flags_small_group_and_prevalence_gap():
    table = cohort_with_prevalences({"A": (10, 20), "B": (4, 20), "C": (3, 3), MISSING: (1, 2)})
    notes = subgroups.flags(table, min_group=5)
    assert len(notes) == 2, notes
    small, gap = notes
    assert small.startswith("site = C: 3 patients")
    assert "fewer than 5" in small
    # the small groups (C, and the unrecorded) do not count towards the gap
    assert gap == "site: prevalence of response ranges from 20% (B) to 50% (A)"


def test_no_flags_when_gaps_are_small():
    table = cohort_with_prevalences({"A": (6, 20), "B": (8, 20), "C": (7, 20)})
    assert subgroups.flags(table, min_group=5) == []


def test_flags_missing_modality_gap():
    index = pd.Index([f"P{i:02d}" for i in range(20)], name="patient_id")
    groups = pd.DataFrame({"site": ["A"] * 10 + ["B"] * 10}, index=index)
    availability = pd.DataFrame({"rnaseq": [True] * 10 + [True] * 5 + [False] * 5}, index=index)
    labels = {"response": pd.Series([1.0, 0.0] * 10, index=index)}
    table = subgroups.cohort_table(groups, labels, availability)
    notes = subgroups.flags(table, min_group=5)
    assert len(notes) == 1, notes
    assert "site" in notes[0] and "rnaseq" in notes[0]
    assert "0% (A)" in notes[0] and "50% (B)" in notes[0]


def test_a_gap_of_exactly_the_threshold_is_not_flagged():
    table = cohort_with_prevalences({"A": (9, 20), "B": (6, 20)})
    assert subgroups.flags(table, min_group=5, gap=0.15) == []
