"""The environment files (envs/) agree with pyproject.toml, and the lock with the
environment the tests run in."""

import re
import tomllib
from importlib import metadata
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
# pip name -> conda-forge name, where they differ
CONDA_NAMES = {"xgboost-cpu": "py-xgboost-cpu", "torch": "pytorch"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(*extras: str) -> dict[str, Requirement]:
    """pyproject's dependencies and those of the `slurm` extra (and of ``extras``), by
    canonical name."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = [*project["dependencies"]]
    for extra in ("slurm", *extras):
        requirements += project["optional-dependencies"][extra]
    return {canonical(Requirement(text).name): Requirement(text) for text in requirements}


def pins(lines: list[str], separator: str) -> dict[str, str]:
    pinned = {}
    for line in lines:
        name, _, version = line.partition(separator)
        assert version, f"{line!r} is not pinned to one version ({separator})"
        pinned[canonical(name.strip())] = version.strip()
    return pinned


def requirements_file(name: str = "requirements.txt") -> dict[str, str]:
    text = (REPO / "envs" / name).read_text(encoding="utf-8")
    lines = [line.split("#")[0].strip() for line in text.splitlines()]
    return pins([line for line in lines if line], "==")


def conda_file() -> tuple[str, dict[str, str], dict[str, str]]:
    env = yaml.safe_load((REPO / "envs" / "radiotx.yaml").read_text(encoding="utf-8"))
    plain = [item for item in env["dependencies"] if isinstance(item, str)]
    [pip_section] = [item["pip"] for item in env["dependencies"] if isinstance(item, dict)]
    python = next(item for item in plain if item.startswith("python="))
    conda = pins([item for item in plain if item not in (python, "pip")], "==")
    return python.partition("=")[2], conda, pins(pip_section, "==")


def test_requirements_pin_every_dependency_within_pyproject_bounds():
    pinned, wanted = requirements_file(), declared()
    assert pinned.keys() == wanted.keys()
    for name, requirement in wanted.items():
        assert requirement.specifier.contains(pinned[name]), (
            f"{name}=={pinned[name]}: {requirement}"
        )


def test_conda_environment_has_the_same_pins():
    python, conda, pip = conda_file()
    assert not conda.keys() & pip.keys()
    conda_to_pip = {conda_name: pip_name for pip_name, conda_name in CONDA_NAMES.items()}
    in_conda = {conda_to_pip.get(name, name): version for name, version in conda.items()}
    assert {**in_conda, **pip} == requirements_file()
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert Requirement(f"python{project['requires-python']}").specifier.contains(f"{python}.0")


def test_the_workflow_rules_use_the_conda_environment():
    assert 'ENV = "../../envs/radiotx.yaml"' in (REPO / "workflow/rules/common.smk").read_text()
    for path in (REPO / "workflow" / "rules").glob("*.smk"):
        text = path.read_text(encoding="utf-8")
        rules = re.findall(r"^\s*rule \w+:", text, flags=re.MULTILINE)
        assert len(rules) == len(re.findall(r"^\s+conda:\n\s+ENV$", text, re.MULTILINE)), path


def test_the_lock_pins_every_dependency_as_the_requirements_do():
    lock, wanted = requirements_file("requirements.lock"), declared("dev")
    assert not wanted.keys() - lock.keys(), "envs/requirements.lock is stale: run `make lock`"
    for name, requirement in wanted.items():
        assert requirement.specifier.contains(lock[name]), f"{lock[name]} of {requirement}"
    direct = requirements_file()
    # a local label names a build (torch's "+cpu" here; a GPU cluster installs a CUDA one)
    assert {name: Version(lock[name]).public for name in direct} == direct


def test_the_tests_run_on_the_locked_versions():
    """`make setup` installs the lock; a package upgraded by hand since is caught here."""
    lock = requirements_file("requirements.lock")
    installed = {canonical(d.metadata["Name"]): d.version for d in metadata.distributions()}
    drift = {
        name: (version, installed.get(name))
        for name, version in lock.items()
        if installed.get(name) != version
    }
    assert drift == {}, "installed versions differ from envs/requirements.lock: make setup"
