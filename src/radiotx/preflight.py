"""What the workflow checks before any job, every problem reported at once: the clinical
table, the feature tables and the pyradiomics parameter file stop the run. (The config and
the patient sheet are checked before these, since they name them.) A glance at every
patient's own files (:func:`patient_files`) is listed as a warning: those patients' jobs
fail with the same message, and the other patients go on."""

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
        checks.insert(0, (cohort.check_clinical, config["clinical"], config["endpoints"]))
    if radiomics:
        checks.append((radiomics_features.check_params, config["radiomics"]["params"]))
    found = []
    for check, *args in checks:
        try:
            check(*args)
        except InputError as err:
            found.append(err)
    return found


def patient_files(sheet, patients: dict[str, list[str]], generated=()) -> list[InputError]:
    """The problems that a glance at each patient's files finds (absent, not gzip as named):
    ``patients`` maps a sheet column to the patients whose file in it a job reads; files that
    a job makes (``generated``) are not looked at."""
    from radiotx import imaging

    generated = set(map(str, generated))
    found = []
    for column, readers in patients.items():
        for patient in readers:
            path = sheet.at[patient, column]
            if path and path not in generated:
                problem = imaging.file_problem(path, patient, column)
                if problem is not None:
                    found.append(problem)
    return sorted(found, key=lambda err: (err.patient, err.path))


def warning(found: list[InputError]) -> str:
    """The terminal's list of the patients whose files fail a glance."""
    patients = sorted({err.patient for err in found})
    listing = "".join(f"\n  - {err}" for err in found)
    return (
        f"radiotx: the files of {len(patients)} patient(s) have problems; their jobs will "
        f"fail, and every other patient goes on:{listing}"
    )


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
