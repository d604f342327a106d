"""radiotx's vectorised mRMR against its peer on the same data, in the same run.

The peer is the ``mrmr-selection`` package (``mrmr_classif``, the same F / mean |r|
quotient) when it is importable, otherwise the loop-over-candidates reference of
``tests/test_selection.py`` (slow: minutes for k = 50). Both run on one core: BLAS is
limited to one thread and ``mrmr_classif`` gets ``n_jobs=1``. The package is not a project
dependency; ``.venv/bin/pip install mrmr_selection`` to compare against it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
from sklearn.datasets import make_classification
from threadpoolctl import threadpool_limits

from radiotx.selection import MRMR


def radiotx_mrmr(X, y, k: int) -> list[int]:
    return MRMR(k=k).fit(X, y).ranking_.tolist()


def package_peer():
    """``mrmr_classif`` as a function of (X, y, k), or None when not installed."""
    # Run as a script, this file's folder comes first on the import path, and this file is
    # called mrmr.py too: leave the folder out so that ``import mrmr`` finds the package.
    here = Path(__file__).resolve().parent
    sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != here]
    try:
        from mrmr import mrmr_classif
    except ImportError:
        return None

    def run(X, y, k):
        selected = mrmr_classif(pd.DataFrame(X), pd.Series(y), K=k, n_jobs=1, show_progress=False)
        return [int(column) for column in selected]

    return run


def loop_peer():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from test_selection import mrmr_reference

    return mrmr_reference


def best_time(function, repeats: int):
    """The shortest of ``repeats`` runs (the least disturbed by other load) and the result."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return min(times), result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100)
    parser.add_argument("--features", type=int, default=3000)
    parser.add_argument("--k", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    parser.add_argument("--peer", choices=["auto", "package", "loop"], default="auto")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)

    peer = None if args.peer == "loop" else package_peer()
    if peer is None and args.peer == "package":
        parser.error("mrmr-selection is not installed: pip install mrmr_selection")
    peer_name = "mrmr-selection" if peer is not None else "loop reference"
    peer = peer or loop_peer()

    X, y = make_classification(
        n_samples=args.patients, n_features=args.features, n_informative=20, n_redundant=30,
        random_state=args.seed,
    )  # fmt: skip
    print(f"{args.patients} patients x {args.features} features; peer: {peer_name}, "
          f"best of {args.repeats}, one thread each")  # fmt: skip
    print(f"{'k':>4}  {'radiotx s':>10}  {'peer s':>8}  {'speed-up':>9}  same set  same order")
    with threadpool_limits(limits=1):
        for k in args.k:
            t_ours, ours = best_time(lambda k=k: radiotx_mrmr(X, y, k), args.repeats)
            t_peer, theirs = best_time(lambda k=k: peer(X, y, k), args.repeats)
            print(f"{k:>4}  {t_ours:>10.4f}  {t_peer:>8.2f}  {t_peer / t_ours:>8.0f}x  "
                  f"{set(ours) == set(theirs)!s:>8}  {ours == theirs!s:>10}")  # fmt: skip


if __name__ == "__main__":
    main()
