"""Shared fixtures: one small synthetic demo cohort per test session."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from filelock import FileLock
from threadpoolctl import threadpool_limits

from radiotx import demo

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_PATIENTS = 12
DEMO_SEED = 7
# cores of this test worker: more threads than that spin against the other workers
CPUS = max(1, (os.cpu_count() or 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
# The suite runs on several workers (pytest-xdist), one test module per worker at a time so
# that a module's built study is built once. The modules that build whole studies start
# first, slowest first, so that the workers finish together.
SLOWEST_FIRST = (
    "test_workflow", "test_slurm", "test_workflow_options", "test_reproduce", "test_examples",
    "test_deep_workflow", "test_deep", "test_radiomics_baseline",
)  # fmt: skip


def pytest_collection_modifyitems(config, items):
    rank = {name: position for position, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.module.__name__, len(rank)))


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


@pytest.fixture(scope="session")
def small_study(tmp_path_factory) -> Path:
    """The small study of test_workflow.write_small_study, run once per test session with 2
    cores (the first worker to need it builds it, the others wait); tests compare other
    runs with it and must not change it."""
    from test_workflow import snakemake, write_small_study

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # shared by the workers of this session
    workdir = base / "small-study"
    with FileLock(base / "small-study.lock"):
        if not (base / "small-study.built").exists():
            shutil.rmtree(workdir, ignore_errors=True)
            workdir.mkdir()
            write_small_study(workdir)
            snakemake(workdir)
            (base / "small-study.built").touch()
    return workdir


@contextlib.contextmanager
def mlflow_server(backend_uri: str, workdir: Path, timeout: float = 90):
    """A real MLflow tracking server (and UI) on a free localhost port, serving
    ``backend_uri``; yields its URL and stops it afterwards."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mlflow = Path(sys.executable).parent / "mlflow"
    command = [
        str(mlflow), "server", "--backend-store-uri", backend_uri, "--host", "127.0.0.1",
        "--port", str(port), "--workers", "1",
        "--artifacts-destination", (workdir / "served-artifacts").as_uri(),
    ]  # fmt: skip
    log = open(workdir / "mlflow-server.log", "w", encoding="utf-8")  # noqa: SIM115
    server = subprocess.Popen(command, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                log.flush()
                text = (workdir / "mlflow-server.log").read_text(encoding="utf-8")[-3000:]
                raise RuntimeError(f"mlflow server did not start:\n{text}")
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
