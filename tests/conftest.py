"""Shared fixtures: one small synthetic demo cohort per test session."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from radiotx import demo

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_PATIENTS = 12
DEMO_SEED = 7


@pytest.fixture(scope="session", autouse=True)
def single_threaded_blas():
    """One BLAS/OpenMP thread: the tests fit many tiny models, for which thread start-up and
    contention cost far more than the arithmetic."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def radiomics_params(repo_root) -> Path:
    """The shipped pyradiomics parameter file of the demo CT cohort."""
    return repo_root / "config" / "radiomics" / "ct_demo.yaml"


@pytest.fixture(scope="session")
def demo_cohort(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """A 12-patient demo cohort on disk (images, masks, RNA-seq, clinical) and its sheet."""
    outdir = tmp_path_factory.mktemp("demo")
    sheet = demo.generate(outdir, n_patients=DEMO_PATIENTS, seed=DEMO_SEED)
    return outdir, sheet


@pytest.fixture(scope="session")
def demo_dir(demo_cohort) -> Path:
    return demo_cohort[0]


@pytest.fixture(scope="session")
def demo_sheet(demo_cohort) -> pd.DataFrame:
    """The demo patient sheet (patient_id, image, mask, rnaseq; '' when absent)."""
    return demo_cohort[1]
