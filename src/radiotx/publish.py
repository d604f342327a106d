"""Results replaced only by a run that finished. Every job writes under ``work/`` (Snakemake's
working tree: what it resumes from and compares against); the last job of a complete run
publishes that tree as ``results/`` in one atomic step. A run that fails, is interrupted or
is killed leaves ``results/`` as the last complete run made it: summary, models, cohort,
splits, QA and manifest always from one run.

Publishing hard-links the work tree into a staging folder beside ``results/`` (no copy, no
extra disk; a real copy across file systems), adds what ``results/`` holds that no run
built (the MLflow store, which every run appends to, and anything the user put there),
then exchanges the two folders with one ``renameat2(RENAME_EXCHANGE)``. Where the file
system has no exchange (some network file systems), two renames do it, and a publication
cut between them is finished by :func:`recover` at the next start. A job never writes into
a published file: Snakemake removes a job's old outputs before it runs, so a hard link
keeps the published version."""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
from pathlib import Path

WORK = Path("work")
RESULTS = Path("results")
# In results/: the files the last publication took from work/, and the publishing job's
# output, written last (Snakemake removes a job's output before the job runs).
LISTING = ".published-files"
MARKER = ".published"
SNAKEMAKE_FILES = (".snakemake_timestamp",)  # Snakemake's own, in directory outputs
# Written straight into results/ by every run and kept across publications.
MLFLOW_STORE = ("mlflow.db", "mlartifacts", "mlflow/pseudonym.key")


def publish(work=WORK, results=RESULTS) -> list[str]:
    """Make ``results`` a copy (hard links) of ``work`` in one step; returns the published
    files, relative to ``results``."""
    work, target = Path(work), _target(results)
    staging, previous = _beside(target, "publishing"), _beside(target, "previous")
    recover(results)
    shutil.rmtree(staging, ignore_errors=True)
    files = _link_tree(work, staging)
    for name in _kept(target, files):
        _link(target / name, staging / name)
    (staging / LISTING).write_text("".join(f"{name}\n" for name in files), encoding="utf-8")
    (staging / MARKER).write_text(f"{len(files)} files published from {work}\n", encoding="utf-8")
    if target.exists():
        _exchange(staging, target, previous)
        shutil.rmtree(staging if staging.exists() else previous, ignore_errors=True)
    else:
        os.rename(staging, target)
    return files


def recover(results=RESULTS) -> str | None:
    """Finish a publication that was cut between its two renames (only where the file
    system cannot exchange folders); returns what was done, for the log, or None."""
    target = _target(results)
    staging, previous = _beside(target, "publishing"), _beside(target, "previous")
    if target.exists() or not previous.exists():
        return None
    if (staging / MARKER).is_file():
        os.rename(staging, target)
        shutil.rmtree(previous, ignore_errors=True)
        return f"finished publishing the complete results into {target}"
    os.rename(previous, target)
    shutil.rmtree(staging, ignore_errors=True)
    return f"restored the complete results of the last run into {target}"


def published(results=RESULTS) -> list[str]:
    """The files of ``results`` that the last publication took from the work tree."""
    listing = Path(results) / LISTING
    return listing.read_text(encoding="utf-8").splitlines() if listing.is_file() else []


def _target(results) -> Path:
    """The folder to replace: where ``results`` points when it is a link (a study whose
    results live on another file system), so the link itself stays."""
    results = Path(results)
    return Path(os.path.realpath(results)) if results.is_symlink() else results.absolute()


def _beside(target: Path, what: str) -> Path:
    return target.with_name(f".{target.name}.{what}")


def _kept(target: Path, built: list[str]) -> list[str]:
    """Files of the current results that the new publication keeps: the MLflow store and
    anything the last publication did not put there."""
    if not target.is_dir():
        return []
    taken, built = set(published(target)), set(built)
    kept = []
    for path in sorted(p for p in target.rglob("*") if p.is_file() or p.is_symlink()):
        name = path.relative_to(target).as_posix()
        ours = name in taken or name in (LISTING, MARKER)
        in_store = any(name == s or name.startswith(f"{s}/") for s in MLFLOW_STORE)
        if name not in built and (in_store or (taken and not ours)):
            kept.append(name)
    return kept


def _link_tree(source: Path, destination: Path) -> list[str]:
    files = []
    for root, _, names in os.walk(source):
        for name in names:
            if name in SNAKEMAKE_FILES:
                continue
            path = Path(root) / name
            relative = path.relative_to(source).as_posix()
            _link(path, destination / relative)
            files.append(relative)
    return sorted(files)


def _link(source: Path, destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    if source.is_symlink():
        os.symlink(os.readlink(source), destination)
        return
    try:
        os.link(source, destination)
    except OSError as error:
        if error.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
            raise
        shutil.copy2(source, destination)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(staging: Path, target: Path, previous: Path) -> None:
    """Swap ``staging`` and ``target`` atomically; where that is not supported, move
    ``target`` to ``previous`` and ``staging`` to ``target`` (see :func:`recover`)."""
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is not None:
        done = renameat2(
            _AT_FDCWD, os.fsencode(staging), _AT_FDCWD, os.fsencode(target), _RENAME_EXCHANGE
        )
        if done == 0:
            return
    shutil.rmtree(previous, ignore_errors=True)
    os.rename(target, previous)
    os.rename(staging, target)
