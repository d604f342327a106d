"""radiotx's radiomics features against pyradiomics' own reference values on real scans.

pyradiomics checks each release against ``baseline_<class>.csv``: feature values of five real
cases (brain1, brain2, breast1: MR; lung1, lung2: CT) under eight settings groups. Here the
same cases go through the Snakemake workflow, one study per settings group (the workflow
takes one parameter file per study), and every baseline feature of the group must come out of
the per-patient parquet file within pyradiomics' own tolerance, with no feature missing and
none extra. The cases are fetched once from pyradiomics' source archive (see
``pyradiomics_cases``); without network access and cache the tests skip.
"""

from __future__ import annotations

import pytest
import SimpleITK as sitk
import yaml
from pyradiomics_cases import (
    BASELINE_PARAMS,
    CASES,
    GROUPS,
    RELATIVE_TOLERANCE,
    case_files,
    cases_dir,
    compare,
    feature_targets,
    group_baseline,
    read_baseline,
    read_features,
    snakemake,
    write_study,
)


@pytest.fixture(scope="module")
def data():
    folder = cases_dir()
    if folder is None:
        pytest.skip("pyradiomics' test cases are not cached and could not be downloaded")
    return folder


def describe(group: str, case: str, result: dict) -> str:
    return (
        f"{group or 'base':<15} {case:<8} {result['compared']:>4} features, "
        f"max rel. diff {result['max_diff']:.1e} ({result['worst']})"
    )


def test_cached_cases_are_the_baseline_inputs(data):
    """The files hash to the values pyradiomics recorded with its baseline."""
    recorded = read_baseline(data, "firstorder")
    for case in CASES:
        image, mask = case_files(data, case)
        hashes = recorded[case]["hashes"]
        assert sitk.Hash(sitk.ReadImage(str(image))) == hashes["image"], case
        assert sitk.Hash(sitk.ReadImage(str(mask), sitk.sitkUInt32)) == hashes["mask"], case


@pytest.mark.parametrize("group", GROUPS, ids=lambda group: group or "base")
def test_parameter_files_hold_the_baseline_settings(data, group):
    params = yaml.safe_load((BASELINE_PARAMS / GROUPS[group]).read_text(encoding="utf-8"))
    baseline = group_baseline(data, group)
    # None is pyradiomics' default for these settings, and a parameter file cannot say None.
    expected = {k: v for k, v in baseline["settings"].items() if v is not None}
    assert params["setting"] == expected
    assert params["imageType"] == {"Original": {}}
    assert sorted(params["featureClass"]) == sorted(baseline["classes"])
    assert all(v is None for v in params["featureClass"].values())  # every feature


def test_compute_matches_the_baseline_on_lung1(data):
    """The library call alone, fast: firstorder and shape of the CT case lung1."""
    from radiotx.features import radiomics

    params = yaml.safe_load((BASELINE_PARAMS / "base.yaml").read_text(encoding="utf-8"))
    params["featureClass"] = {"firstorder": None, "shape": None}
    image, mask = case_files(data, "lung1")
    features = radiomics.compute(sitk.ReadImage(str(image)), sitk.ReadImage(str(mask)), params)
    reference = {
        name: value
        for cls in ("firstorder", "shape")
        for name, value in read_baseline(data, cls)["lung1"]["features"].items()
    }
    result = compare(features, reference)
    print(describe("", "lung1", result))
    assert result["compared"] == len(reference) == 32
    assert not result["missing"] and not result["extra"]
    assert not result["failing"], result["failing"]


@pytest.mark.workflow
@pytest.mark.parametrize("group", GROUPS, ids=lambda group: group or "base")
def test_workflow_features_match_the_baseline(data, group, tmp_path):
    write_study(tmp_path, data, BASELINE_PARAMS / GROUPS[group])
    snakemake(tmp_path, *feature_targets())
    reference = group_baseline(data, group)["values"]
    problems = {}
    for case in CASES:
        result = compare(read_features(tmp_path, case), reference[case])
        print(describe(group, case, result))
        if result["failing"] or result["missing"] or result["extra"]:
            problems[case] = {k: result[k] for k in ("failing", "missing", "extra")}
        assert result["compared"] == len(reference[case]) > 0
    assert not problems, f"differences beyond {RELATIVE_TOLERANCE:.0%}: {problems}"
