"""The workflow on a real SLURM scheduler through `--profile profiles/slurm`.

tests/slurm/up.sh starts a single-node cluster on this machine (Debian's slurm-wlm, munge,
slurmdbd): it needs root. Where it cannot run, these tests skip and say why. A cluster that
already answers (`scontrol ping`) is used as it is.
"""

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from test_workflow import SMALL_STUDY_PATIENTS, job_counts, write_small_study

pytestmark = pytest.mark.workflow

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "profiles" / "slurm"
HARNESS = Path(__file__).resolve().parent / "slurm"


def profile_resources() -> dict:
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text(encoding="utf-8"))
    return profile["default-resources"]


def environment(extra: dict | None = None) -> dict:
    # jobs re-run `python -m snakemake` on the node: this interpreter must come first on PATH
    env = dict(os.environ, **(extra or {}))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def cluster_answers(env: dict) -> bool:
    if shutil.which("scontrol") is None:
        return False
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, env=env)
    return ping.returncode == 0 and "UP" in ping.stdout


@pytest.fixture(scope="module")
def cluster():
    """A SLURM cluster whose account and partition are the profile's."""
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        pytest.skip("snakemake-executor-plugin-slurm is not installed: pip install -e '.[dev]'")
    if cluster_answers(environment()):
        yield environment()
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("no SLURM cluster answers and starting one needs root with apt-get")
    resources = profile_resources()
    # the daemons run as their own users (munge, mysql): pytest's private tmp is closed to them
    state = Path(tempfile.mkdtemp(prefix="radiotx-slurm-"))
    state.chmod(0o755)
    env = environment(
        {
            "SLURM_CI_DIR": str(state),
            "SLURM_CI_ACCOUNT": str(resources["slurm_account"]),
            "SLURM_CI_PARTITION": str(resources["slurm_partition"]),
            "SLURM_CI_CPUS": "4",
        }
    )
    up = subprocess.run(["bash", str(HARNESS / "up.sh")], capture_output=True, text=True, env=env)
    try:
        assert up.returncode == 0, f"tests/slurm/up.sh failed:\n{up.stdout}\n{up.stderr}"
        yield env
    finally:
        subprocess.run(["bash", str(HARNESS / "down.sh")], capture_output=True, env=env)
        shutil.rmtree(state, ignore_errors=True)


def snakemake_command(workdir: Path, *args: str) -> list[str]:
    return [
        sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(workdir), *args,
    ]  # fmt: skip


def _interruptible() -> None:
    # A background shell (CI runs `make test` in one) starts its commands with SIGINT
    # ignored, and that is inherited: Snakemake would never see the test's Ctrl-C.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(workdir: Path, env: dict, *args: str) -> subprocess.Popen:
    log = open(workdir / f"snakemake-{time.monotonic_ns()}.log", "w", encoding="utf-8")  # noqa: SIM115
    command = snakemake_command(
        workdir, "--profile", str(PROFILE), "--slurm-init-seconds-before-status-checks", "5", *args
    )
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir,
        preexec_fn=_interruptible,
    )  # fmt: skip
    process.log_path = Path(log.name)
    return process


def finish(process: subprocess.Popen, timeout: float = 900) -> str:
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)  # SIGINT cancels the run's SLURM jobs
        process.wait(timeout=120)
        raise
    return process.log_path.read_text(encoding="utf-8")


def interrupt(process: subprocess.Popen) -> None:
    """Ctrl-C: Snakemake cancels its SLURM jobs and stops."""
    process.send_signal(signal.SIGINT)


def wait_for(condition, timeout: float, process: subprocess.Popen):
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"snakemake ended early:\n{process.log_path.read_text()[-4000:]}")
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting on the SLURM run")
        time.sleep(0.5)


def run_id(process: subprocess.Popen) -> str | None:
    """The SLURM run ID Snakemake prints at the start: every job it submits has it as name."""
    found = re.search(r"SLURM run ID: (\S+)", process.log_path.read_text(encoding="utf-8"))
    return found.group(1) if found else None


def queued_jobs(env: dict, name: str, *states: str) -> dict[str, str]:
    """SLURM id -> job comment of the unfinished jobs named `name` (or those in `states`);
    the plugin's comment starts with the rule."""
    command = ["squeue", "-h", "--name", name, "-o", "%i|%k"]
    if states:
        command += ["-t", ",".join(states)]
    queue = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    return dict(line.split("|", 1) for line in queue.stdout.splitlines())


def running_jobs(env: dict, process: subprocess.Popen, rule: str) -> list[str]:
    """SLURM ids of the running jobs of `rule` that this Snakemake run submitted."""
    name = run_id(process)
    if name is None:
        return []
    jobs = queued_jobs(env, name, "RUNNING")
    return [job for job, comment in jobs.items() if comment.startswith(f"rule_{rule}")]


def cancel_leftovers(env: dict, name: str) -> list[str]:
    """Cancel what an interrupted run left in the queue, as the README says:
    `scancel --name <SLURM run ID>`; wait until it has gone."""
    # jobs Snakemake cancelled itself may still show as COMPLETING for a moment
    leftovers = sorted(queued_jobs(env, name, "PENDING", "RUNNING"), key=int)
    if leftovers:
        subprocess.run(["scancel", "--name", name], check=True, env=env)
    deadline = time.monotonic() + 120
    while queued_jobs(env, name):
        assert time.monotonic() < deadline, f"jobs of run {name} are still queued"
        time.sleep(0.5)
    return leftovers


def accounting(env: dict, workdir: Path) -> list[dict]:
    """sacct's records of the jobs this study submitted."""
    fields = ["JobID", "State", "Account", "Partition", "ReqMem", "Comment", "WorkDir"]
    listing = subprocess.run(
        ["sacct", "-X", "-n", "-P", "-a", "-S", "now-2hours", "-o", ",".join(fields)],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    records = [
        dict(zip(fields, line.split("|"), strict=True)) for line in listing.stdout.splitlines()
    ]
    # in the order they were submitted
    return sorted(
        (record for record in records if Path(record["WorkDir"]) == workdir),
        key=lambda record: int(record["JobID"]),
    )


def model_outputs(results: Path) -> dict[str, bytes]:
    names = ("metrics.json", "predictions.tsv", "selected_features.tsv")
    return {
        str(path.relative_to(results)): path.read_bytes()
        for path in sorted((results / "models").rglob("*"))
        if path.name in names or path.parent.name == "outer"
    }


@pytest.fixture(scope="module")
def runs(cluster, small_study, tmp_path_factory):
    """The small study on SLURM, compared with its local run. The SLURM run is interrupted
    (SIGINT) in the outer-fold jobs, then rerun; in the rerun one job is cancelled with
    scancel and the `model` jobs first get too little memory."""
    workdir = tmp_path_factory.mktemp("slurm")
    write_small_study(workdir)
    first = start(workdir, cluster)

    # interrupted while the outer-fold jobs run, after every per-patient job has finished
    wait_for(lambda: running_jobs(cluster, first, "outer_fold"), 900, first)
    interrupt(first)
    first_log = finish(first, timeout=180)
    # Snakemake 9 cancels the jobs it knows of, but one it was submitting at the moment
    # of Ctrl-C can outlive the run and would go on writing into the results.
    leftovers = cancel_leftovers(cluster, run_id(first))
    done = {
        path: path.stat().st_mtime_ns for path in (workdir / "work").rglob("*") if path.is_file()
    }
    subprocess.run(
        snakemake_command(workdir, "--unlock"), check=True, capture_output=True, env=cluster
    )
    pending = subprocess.run(
        snakemake_command(workdir, "-n", "--profile", str(PROFILE)),
        check=True, capture_output=True, text=True, env=cluster, cwd=workdir,
    ).stdout  # fmt: skip

    # the model jobs' first attempt gets 200 MB and is killed; the retry gets 2,000 MB
    second = start(workdir, cluster, "--set-resources", "model:mem_mb=200 * 10 ** (attempt - 1)")
    cancelled = []

    def cancel_one():
        jobs = running_jobs(cluster, second, "outer_fold") or running_jobs(cluster, second, "refit")
        if jobs:
            subprocess.run(["scancel", jobs[0]], check=True, env=cluster)
            cancelled.append(jobs[0])
        return bool(jobs)

    wait_for(cancel_one, 600, second)
    second_log = finish(second)
    return {
        "local": small_study,
        "dir": workdir,
        "first_log": first_log,
        "leftovers": leftovers,
        "done": done,
        "pending": job_counts(pending),
        "second": second,
        "second_log": second_log,
        "cancelled": cancelled[0],
        "sacct": accounting(cluster, workdir),
    }


def test_the_slurm_run_completes_and_equals_a_local_run(runs):
    assert runs["second"].returncode == 0, runs["second_log"][-6000:]
    slurm, local = model_outputs(runs["dir"] / "results"), model_outputs(runs["local"] / "results")
    assert len(local) > 20 and slurm.keys() == local.keys()
    assert [name for name in local if slurm[name] != local[name]] == []
    assert (runs["dir"] / "results" / "summary.tsv").read_bytes() == (
        runs["local"] / "results" / "summary.tsv"
    ).read_bytes()


def test_jobs_went_through_the_scheduler_under_the_profile_account(runs):
    records = runs["sacct"]
    resources = profile_resources()
    assert records, "sacct has no job of this study"
    assert {r["Account"] for r in records} == {resources["slurm_account"]}
    assert {r["Partition"] for r in records} == {resources["slurm_partition"]}
    rules = [r["Comment"] for r in records]
    assert any(c.startswith("rule_outer_fold") for c in rules)
    assert any(c.startswith("rule_model") for c in rules)
    # the light aggregation rules ran on the submit host, not in the queue
    assert not any(c.startswith(("rule_gather", "rule_summary", "rule_track")) for c in rules)


def test_per_patient_jobs_are_grouped(runs):
    """Each patient has QA and extraction jobs for two modalities; the profile's job group
    bundles 25 patients' jobs into one submission."""
    groups = [r for r in runs["sacct"] if r["Comment"].startswith("rule_patients")]
    per_patient = [
        r for r in runs["sacct"] if r["Comment"].startswith(("rule_radiomics", "rule_rnaseq"))
    ]
    assert per_patient == []
    assert 1 <= len(groups) < SMALL_STUDY_PATIENTS / 4


def test_a_cancelled_job_is_reported_and_retried(runs):
    records = {r["JobID"]: r for r in runs["sacct"]}
    cancelled = records[runs["cancelled"]]
    assert cancelled["State"].startswith("CANCELLED")
    rule_and_wildcards = cancelled["Comment"]
    retried = [r for r in runs["sacct"] if r["Comment"] == rule_and_wildcards]
    assert [r["State"] for r in retried][-1] == "COMPLETED"
    # the failure names the SLURM job
    assert f"SLURM-job '{runs['cancelled']}' failed" in runs["second_log"]


def test_an_out_of_memory_job_is_retried_with_more_memory(runs):
    model_jobs = [r for r in runs["sacct"] if r["Comment"].startswith("rule_model")]
    killed = [r for r in model_jobs if r["ReqMem"] == "200M"]
    assert killed and all(r["State"] in {"FAILED", "OUT_OF_MEMORY"} for r in killed)
    for record in killed:
        retries = [r for r in model_jobs if r["Comment"] == record["Comment"]]
        assert [(r["ReqMem"], r["State"]) for r in retries][-1] == ("2000M", "COMPLETED")


def test_an_interrupted_run_resumes_with_only_what_is_missing(runs):
    _, _, after = runs["first_log"].partition("Terminating processes")
    assert after
    # a job left in the queue was one Snakemake was still submitting when it was stopped
    submitted_late = re.findall(r"submitted with SLURM jobid (\d+)", after)
    assert set(runs["leftovers"]) <= set(submitted_late)
    pending = runs["pending"]
    # every per-patient job had finished before the interruption: none is redone
    assert not {"radiomics", "radiomics_qa", "rnaseq", "rnaseq_qc", "demo_cohort"} & set(pending)
    # the outer-fold jobs that were cut off are redone, and what depends on them
    assert 1 <= pending["outer_fold"] <= 9 and pending["model"] == 5
    for path, mtime in runs["done"].items():
        if "features" in path.parts or "qa" in path.parts or path.name == "manifest.json":
            assert path.stat().st_mtime_ns == mtime, f"{path} was redone"


def test_memory_doubles_with_each_attempt(tmp_path):
    """A job resubmitted after an out-of-memory kill asks for twice as much (the profile's
    `retries`); the workflow profile adds the modelling rules' runtime."""
    write_small_study(tmp_path)
    target = "work/models/response/clinical/outer/r0f0.json"
    asked = []
    for attempt in (1, 2, 3):
        dry = subprocess.run(
            snakemake_command(tmp_path, "-n", "-f", "--attempt", str(attempt), target),
            capture_output=True, text=True, env=environment(), cwd=tmp_path, check=True,
        )  # fmt: skip
        asked.append(re.search(r"mem_mb=(\d+).*runtime=(\d+)", dry.stdout).groups())
    assert asked == [("4000", "240"), ("8000", "240"), ("16000", "240")]
