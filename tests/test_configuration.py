"""The config is checked against the workflow's schema with every problem named by its key
path, a mistyped key with the nearest valid one."""

import copy

import pytest
import yaml

from radiotx import configuration
from radiotx.errors import InputError

SCHEMA = "workflow/schemas/config.schema.yaml"


@pytest.fixture(scope="module")
def shipped(repo_root):
    return yaml.safe_load((repo_root / "config" / "config.yaml").read_text(encoding="utf-8"))


def test_the_shipped_configs_have_no_problem(repo_root, shipped):
    assert configuration.problems(shipped, repo_root / SCHEMA) == []


def test_every_problem_is_named_once_by_its_key_path(repo_root, shipped):
    config = copy.deepcopy(shipped)
    config["pipeline"] = config.pop("pipelines")  # a top-level typo
    config["cv"]["outer_fold"] = config["cv"].pop("outer_folds")  # a nested one
    config["seed"] = "forty-two"
    config["model"]["classifiers"] = "rf"
    config["fusion"]["zzz"] = 1  # nothing near it
    found = configuration.problems(config, repo_root / SCHEMA)
    assert [line.split(":")[0] for line in found] == [
        "pipeline", "(top level)", "cv.outer_fold", "fusion.zzz", "model.classifiers", "seed",
    ]  # fmt: skip
    assert found[0].startswith("pipeline: not a setting here (did you mean pipelines?)")
    assert found[1] == "(top level): 'pipelines' is a required property"
    assert found[2].startswith("cv.outer_fold: not a setting here (did you mean cv.outer_folds?)")
    assert found[3] == "fusion.zzz: not a setting here; valid: strategies, selectors"
    assert found[4:] == [
        "model.classifiers: 'rf' is not of type 'array'",
        "seed: 'forty-two' is not of type 'integer'",
    ]
    # short lines, not the schema
    assert max(map(len, found)) < 400
    with pytest.raises(InputError, match=r"problems in the config\. Fix: correct these keys"):
        configuration.check(config, repo_root / SCHEMA, "study.yaml")
