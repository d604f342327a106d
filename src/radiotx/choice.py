"""How an inner CV picks among its candidates: the best mean inner score, or the simplest
candidate within one standard error of it.

On a small cohort the candidates' inner scores differ mostly by noise (three validation
folds of a 100-patient training set hold about five patients of a 20 % class each), so
the best of dozens is close to a random pick and pays for it on the outer fold. The
one-standard-error rule (Breiman et al. 1984; Hastie, Tibshirani & Friedman, ESL 7.10)
takes the simplest candidate whose mean inner score lies within one standard error of the
best one's: fewer features first, then a simpler model family, stronger regularisation,
no resampling.

Fusion strategies (and the block of a single-modality strategy) have no such order: the
strategy with the fewest features is often the one that drops the block carrying the
signal (on a 60-patient study the single-block strategy won the one-SE rule in almost every
outer fold, at 0.72 AUC against 0.81 for the best strategy). So the strategy is chosen by
score, and the rule simplifies only among the candidates of the best one's strategy.
"""

from __future__ import annotations

import math
from numbers import Integral

import numpy as np

RULES = ("best", "one_se")

# Model families from the simplest: linear models, kernel machines, neighbours and
# Gaussian processes, single trees, ensembles (by class name; fusion strategies by theirs).
FAMILIES = (
    "LogisticRegression", "CoxnetSurvivalAnalysis", "SVC", "FastSurvivalSVM",
    "KNeighborsClassifier", "GaussianProcessClassifier", "DecisionTreeClassifier",
    "RandomForestClassifier", "RandomSurvivalForest", "AdaBoostClassifier", "XGBClassifier",
    "MultipleKernel", "LateFusion", "StackedFusion",
)  # fmt: skip


def complexity(params: dict) -> tuple:
    """A sort key of an inner-CV candidate (its parameter setting), simplest first: the
    features its selectors keep, its model family (an RBF kernel after a linear one),
    how weakly it is regularised (``C``, tree depth and leaf size, boosting rounds,
    neighbours), and
    whether it resamples the training rows."""
    features, family, freedom, sampler = 0, len(FAMILIES), 0.0, 0
    for key, value in params.items():
        name = key.rsplit("__", 1)[-1]
        for part in value.values() if isinstance(value, dict) else [value]:
            k = getattr(part, "k", None)
            if hasattr(part, "fit") and isinstance(k, Integral):
                features += int(k)
        if name in ("clf", "model", "fusion"):
            family = min(family, _family(value))
        elif name == "balance":
            sampler = int(value is not None and value != "passthrough")
        elif name == "C" and value:
            freedom += math.log10(value)
        elif name in ("max_depth", "n_estimators"):
            freedom += math.log10(value) if value else 3.0  # None: unlimited depth
        elif name in ("min_samples_leaf", "n_neighbors") and value:
            freedom -= math.log10(value)
    return features, family, freedom, sampler


def _family(estimator) -> int:
    name = type(estimator).__name__
    if name == "Pipeline":  # a strategy that is a whole model (early fusion, single)
        estimator = estimator.steps[-1][1]
        name = type(estimator).__name__
    rank = FAMILIES.index(name) if name in FAMILIES else len(FAMILIES)
    if name == "SVC" and getattr(estimator, "kernel", "rbf") == "linear":
        rank -= 0.5  # a linear SVM sits between logistic regression and the RBF kernel
    return rank


def pick(rows: np.ndarray, mean: np.ndarray, se: np.ndarray, params: list, rule: str) -> int:
    """The chosen candidate among ``rows`` (indices into the search's results): the best
    mean inner score (the first of equals, as scikit-learn ranks them), or under
    ``"one_se"`` the simplest (:func:`complexity`) of those within one standard error of
    the best that share its fusion strategy (each strategy, and each block of the single
    strategy, is one estimator object in the search space)."""
    if rule not in RULES:
        raise ValueError(f"unknown model choice rule {rule!r}; choose from {RULES}")
    best = int(rows[np.argmax(mean[rows])])
    if rule == "best" or not np.isfinite(se[best]):
        return best
    arm = params[best].get("fusion")
    eligible = [
        int(i) for i in rows if mean[i] >= mean[best] - se[best] and params[i].get("fusion") is arm
    ]
    return min(eligible, key=lambda i: (complexity(params[i]), i))
