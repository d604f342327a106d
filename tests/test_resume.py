"""Resuming after a hard kill: Snakemake's lock is cleared only when the runs that may hold
it are gone."""

import json
import os
import socket
import subprocess

from radiotx import resume


def lock(directory):
    (directory / resume.LOCKS).mkdir(parents=True, exist_ok=True)
    path = directory / resume.LOCKS / "0.output.lock"
    path.write_text("results/summary.tsv\n")
    return path


def record(directory, *runs):
    (directory / resume.OWNERS).parent.mkdir(parents=True, exist_ok=True)
    (directory / resume.OWNERS).write_text(json.dumps(list(runs)))


def _reaped() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_a_lock_of_a_run_that_is_gone_is_cleared(tmp_path):
    held = lock(tmp_path)
    dead = _reaped()
    record(tmp_path, {"host": socket.gethostname(), "pid": dead, "started": "yesterday"})
    message = resume.start(tmp_path)
    assert not held.exists() and f"process {dead} started yesterday" in message
    runs = json.loads((tmp_path / resume.OWNERS).read_text())
    assert [r["pid"] for r in runs] == [os.getpid()]  # this run, the dead one forgotten


def test_a_lock_of_a_live_run_or_of_another_host_is_left_to_snakemake(tmp_path):
    held = lock(tmp_path)
    here = socket.gethostname()
    for other in (
        {"host": here, "pid": os.getpid(), "started": "now"},  # alive
        {"host": here + "-elsewhere", "pid": _reaped(), "started": "now"},  # cannot check
    ):
        record(tmp_path, other, {"host": here, "pid": _reaped(), "started": "before"})
        assert resume.start(tmp_path) is None and held.exists()
        runs = json.loads((tmp_path / resume.OWNERS).read_text())
        assert runs[0] == other and len(runs) == 2  # the live one and this one
    # a lock that no recorded run took (another tool's) is left too
    (tmp_path / resume.OWNERS).unlink()
    assert resume.start(tmp_path) is None and held.exists()


def test_without_a_lock_the_run_is_recorded(tmp_path):
    assert resume.start(tmp_path) is None
    [run] = json.loads((tmp_path / resume.OWNERS).read_text())
    assert run["pid"] == os.getpid() and run["host"] == socket.gethostname()
