"""What the workflow checks before any job, every problem reported at once: the clinical
table, the feature tables and the pyradiomics parameter file. (The config and the patient
sheet are checked before these, since they name them; a patient's own files are checked by
that patient's jobs, so that one bad patient does not hold up the others.)"""

from __future__ import annotations

from pathlib import Path

from radiotx import cohort
from radiotx.errors import InputError


def problems(config: dict, *, radiomics: bool) -> list[InputError]:
    """Every problem found; ``radiomics``: whether the run extracts radiomics features."""
    from radiotx.features import radiomics as radiomics_features

    checks = [(cohort.check_table, name, spec) for name, spec in config["tables"].items()]
    # the demo's clinical table is made by a job
    if "demo" not in config or Path(config["clinical"]["table"]).is_file():
        checks.insert(0, (cohort.check_clinical, config["clinical"]))
    if radiomics:
        checks.append((radiomics_features.check_params, config["radiomics"]["params"]))
    found = []
    for check, *args in checks:
        try:
            check(*args)
        except InputError as err:
            found.append(err)
    return found


def check(config: dict, *, radiomics: bool) -> None:
    """Raise the problem found, or one InputError listing all of them."""
    found = problems(config, radiomics=radiomics)
    if len(found) == 1:
        raise found[0]
    if found:
        listing = "".join(f"\n  - {err}" for err in found)
        raise InputError(
            f"{len(found)} problems in the study's input files (nothing has run):{listing}\n"
        )
