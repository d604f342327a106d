"""Label-permutation test of a whole modelling procedure.

Each permutation shuffles the endpoint labels across patients and re-runs the *same*
procedure (nested CV with every inner-CV choice) on the same outer folds. The p-value is the
share of permutations that score at least as well as the real labels, counting the real run
itself (Phipson & Smyth 2010), so it is never zero.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def permute(labels: pd.Series | pd.DataFrame, seed: int, index: int):
    """The labels (or rows of outcomes, such as survival time and event together)
    shuffled across patients; permutation ``index`` of ``seed`` is always the same
    shuffle."""
    rng = np.random.default_rng([seed, index, 7919])
    order = rng.permutation(len(labels))
    shuffled = labels.iloc[order].copy()
    shuffled.index = labels.index
    return shuffled


def p_value(observed: float, null) -> float:
    """(1 + number of permuted scores >= observed) / (1 + number of permutations)."""
    null = np.asarray(null, dtype=float)
    return float((1 + np.sum(null >= observed)) / (1 + len(null)))


def summary(observed: float, null, metric: str = "roc_auc") -> dict:
    """The test's numbers, for the model's metrics and the report."""
    null = np.asarray(null, dtype=float)
    return {
        "metric": metric,
        "observed": float(observed),
        "n_permutations": int(len(null)),
        "null": [float(v) for v in null],
        "null_mean": float(null.mean()) if len(null) else float("nan"),
        "null_sd": float(null.std(ddof=1)) if len(null) > 1 else float("nan"),
        "p_value": p_value(observed, null),
    }
