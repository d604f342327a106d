"""Resuming after a hard kill. Snakemake's lock outlives a process that dies without
releasing it (``kill -9``, a closed session, a rebooted node), and every later run then
refuses to start until ``snakemake --unlock``. The workflow records which processes on
which host run it; at the next start a lock whose runs are all gone is cleared, and a lock
of a run that is still alive (or on another host, where it cannot be checked) is left to
Snakemake, which names it."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

LOCKS = Path(".snakemake") / "locks"
OWNERS = Path(".snakemake") / "radiotx-runs.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def start(directory=".") -> str | None:
    """Called by the workflow's main process at each start: clears Snakemake's locks in
    ``directory`` when every run recorded there has ended, then records this process.
    Returns what was cleared, for the log, or None."""
    directory = Path(directory)
    path = directory / OWNERS
    runs = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []
    host = socket.gethostname()
    running = [r for r in runs if r["host"] != host or _alive(r["pid"])]
    locks = sorted((directory / LOCKS).glob("*.lock"))
    cleared = None
    if locks and runs and not running:
        for lock in locks:
            lock.unlink(missing_ok=True)
        gone = ", ".join(f"process {r['pid']} started {r['started']}" for r in runs)
        cleared = f"cleared the lock left by a run that ended without releasing it ({gone})"
    me = {"host": host, "pid": os.getpid(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([*running, me], indent=1), encoding="utf-8")
    return cleared
