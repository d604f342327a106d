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


# The modules that build the largest studies, longest first (measured with --durations).
# pytest-xdist (--dist loadscope) gives each worker whole modules, so that a module's
# fixtures are built once, in collection order: these start first and the short modules
# fill the gaps at the end. The order changes no result.
LONGEST_FIRST = (
    "test_workflow", "test_slurm", "test_workflow_options", "test_examples",
    "test_reproduce", "test_bad_inputs", "test_workflow_failures", "test_deep_workflow",
    "test_deep", "test_realdata", "test_radiomics_baseline", "test_track",
)  # fmt: skip


def pytest_collection_modifyitems(config, items):
    def rank(item):
        module = item.module.__name__
        return LONGEST_FIRST.index(module) if module in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: a module's tests keep their order


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


def built_once(tmp_path_factory, name: str, build) -> Path:
    """A folder that ``build(folder)`` fills, built once per test run: under pytest-xdist
    the first worker that asks builds it and the others wait for it and read it."""
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        folder = tmp_path_factory.mktemp(name)
        build(folder)
        return folder
    root = tmp_path_factory.getbasetemp().parent  # the run's, shared by its workers
    folder, done = root / name, root / f"{name}.built"
    with FileLock(root / f"{name}.lock"):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            done.touch()
    return folder


@pytest.fixture(scope="session")
def small_study(tmp_path_factory) -> Path:
    """The small study of test_workflow.write_small_study, run once with 2 cores; tests
    compare other runs with it and must not change it."""
    from test_workflow import snakemake, write_small_study

    def build(workdir: Path) -> None:
        write_small_study(workdir)
        snakemake(workdir)

    return built_once(tmp_path_factory, "small-study", build)


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
