"""The classification metrics that every model reports: computed by
:mod:`radiotx.evaluate`, tabulated by :mod:`radiotx.report`, logged by :mod:`radiotx.track`.
A module of their own so that the jobs that only write reports need not import
scikit-learn."""

METRICS = ("roc_auc", "balanced_accuracy", "sensitivity", "specificity", "f1", "brier")
