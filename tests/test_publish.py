"""Publishing the work tree as results/: one step, the MLflow store and the user's own files
kept, nothing of a previous publication left over, and a publication cut short finished."""

import os

from radiotx import publish


def tree(folder):
    return {
        p.relative_to(folder).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def write(folder, files):
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")


def test_publication_replaces_results_and_keeps_what_no_run_built(tmp_path):
    work, results = tmp_path / "work", tmp_path / "results"
    write(
        work, {"summary.tsv": "run 1", "models/a/metrics.json": "a1", "models/b/metrics.json": "b1"}
    )
    write(results, {"mlflow.db": "store", "mlartifacts/1/x.png": "artifact"})
    publish.publish(work, results)
    first = tree(results)
    assert first["summary.tsv"] == "run 1" and first["mlflow.db"] == "store"
    assert publish.published(results) == [
        "models/a/metrics.json",
        "models/b/metrics.json",
        "summary.tsv",
    ]
    # published files are the work files themselves (hard links), not copies
    assert os.path.samefile(results / "summary.tsv", work / "summary.tsv")

    # the next run: Snakemake removes a job's output before the job writes it anew, b's
    # model is gone from the work tree, the user keeps notes in results/, MLflow appends
    (work / "summary.tsv").unlink()
    write(work, {"summary.tsv": "run 2"})
    (work / "models/b/metrics.json").unlink()
    write(results, {"notes.txt": "mine", "mlflow.db": "store, 2 runs"})
    assert tree(results)["summary.tsv"] == "run 1"  # untouched until the run completes
    publish.publish(work, results)
    second = tree(results)
    assert second["summary.tsv"] == "run 2" and second["notes.txt"] == "mine"
    assert second["mlflow.db"] == "store, 2 runs" and "mlartifacts/1/x.png" in second
    assert "models/b/metrics.json" not in second  # nothing of the last run left over
    assert not list(tmp_path.glob(".results.*"))  # no staging or previous folder remains


def test_first_publication_of_a_study_made_before_publishing_keeps_only_the_store(tmp_path):
    """A results/ folder without a listing (built in place by an older version) is replaced;
    only its MLflow store is carried over."""
    work, results = tmp_path / "work", tmp_path / "results"
    write(work, {"summary.tsv": "new"})
    write(results, {"summary.tsv": "old", "stale.tsv": "old", "mlflow/pseudonym.key": "k"})
    publish.publish(work, results)
    assert tree(results) == {
        ".published": "1 files published from " + str(work) + "\n",
        ".published-files": "summary.tsv\n",
        "mlflow/pseudonym.key": "k",
        "summary.tsv": "new",
    }


def test_results_that_link_elsewhere_stay_a_link(tmp_path):
    """A study whose results live on another disk (results -> /scratch/...) keeps the link."""
    work, elsewhere, results = (
        tmp_path / "work",
        tmp_path / "scratch" / "results",
        tmp_path / "results",
    )
    write(work, {"summary.tsv": "new"})
    write(elsewhere, {"mlflow.db": "store"})
    results.symlink_to(elsewhere)
    publish.publish(work, results)
    assert results.is_symlink() and tree(elsewhere)["summary.tsv"] == "new"
    assert tree(elsewhere)["mlflow.db"] == "store"


def test_a_publication_cut_between_its_renames_is_finished_or_undone(tmp_path):
    """Where folders cannot be exchanged in one step, publishing renames results/ aside and
    the staging folder into place; a kill between the two leaves no results/, which the next
    start repairs: with the new results when they were complete, else the old ones."""
    work, results = tmp_path / "work", tmp_path / "results"
    write(work, {"summary.tsv": "new"})
    write(results, {"summary.tsv": "old"})
    staging, previous = tmp_path / ".results.publishing", tmp_path / ".results.previous"

    results.rename(previous)  # cut before the staging folder was complete
    write(staging, {"summary.tsv": "half"})
    assert "restored" in publish.recover(results)
    assert tree(results) == {"summary.tsv": "old"} and not previous.exists()

    publish.publish(work, results)
    results.rename(previous)  # cut after staging was complete
    write(staging, tree(previous) | {"summary.tsv": "newer"})
    assert "finished" in publish.recover(results)
    assert tree(results)["summary.tsv"] == "newer" and not previous.exists()
    assert publish.recover(results) is None  # nothing to do
