"""Evaluation figures of a model's out-of-fold predictions, beyond the ROC curve
(:func:`radiotx.report.plot_roc`): precision-recall, calibration, decision curve and
confusion matrix. Every figure uses the pooled predictions of the first repeat of the
outer CV, so each patient counts once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.calibration import calibration_curve
from sklearn.metrics import average_precision_score, confusion_matrix, precision_recall_curve

NAMES = ("precision_recall", "calibration", "decision_curve", "confusion_matrix")


def _first_repeat(predictions: pd.DataFrame) -> pd.DataFrame:
    if "repeat" in predictions:
        return predictions[predictions["repeat"] == predictions["repeat"].min()]
    return predictions


def _axes(size=(5, 5)):
    # a bare Figure with an Agg canvas: no display, no pyplot registry to leak from
    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _save(fig, ax, path, title) -> None:
    ax.set_title(title)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, format="png")


def net_benefit(y_true, probability, thresholds) -> np.ndarray:
    """Net benefit of treating the patients whose probability is at least each threshold
    pt: TP/n - FP/n * pt / (1 - pt) (Vickers & Elkin 2006)."""
    y = np.asarray(y_true, dtype=int)
    p = np.asarray(probability, dtype=float)
    n = len(y)
    out = []
    for t in thresholds:
        treat = p >= t
        tp, fp = np.sum(treat & (y == 1)), np.sum(treat & (y == 0))
        out.append(tp / n - fp / n * t / (1 - t))
    return np.array(out)


def plot_precision_recall(predictions: pd.DataFrame, path, title: str = "") -> None:
    part = _first_repeat(predictions)
    y, score = part["y_true"].to_numpy(int), part["score"].to_numpy(float)
    fig, ax = _axes()
    precision, recall, _ = precision_recall_curve(y, score)
    ap = average_precision_score(y, score)
    ax.step(recall, precision, where="post", lw=2, color="black", label=f"AP {ap:.2f}")
    ax.axhline(y.mean(), ls="--", lw=1, color="grey", label=f"prevalence {y.mean():.2f}")
    ax.set(xlim=(0, 1.01), ylim=(0, 1.02), xlabel="Recall (sensitivity)", ylabel="Precision")
    ax.legend(loc="upper right", fontsize="small")
    _save(fig, ax, path, title)


def plot_calibration(y_true, curves: dict[str, np.ndarray], path, title="", bins=5) -> None:
    """Observed event rate against mean predicted probability in quantile bins, for each
    named set of probabilities in ``curves``, over the histogram of the first."""
    y = np.asarray(y_true, dtype=int)
    fig, ax = _axes()
    ax.plot([0, 1], [0, 1], ls="--", lw=1, color="grey", label="ideal")
    for (label, p), colour in zip(curves.items(), ("black", "tab:orange"), strict=False):
        observed, predicted = calibration_curve(y, p, n_bins=bins, strategy="quantile")
        ax.plot(predicted, observed, marker="o", lw=2, color=colour, label=label)
    first = np.asarray(next(iter(curves.values())), dtype=float)
    ax.hist(first, bins=20, range=(0, 1), weights=np.full(len(first), 0.25 / len(first)),
            color="tab:blue", alpha=0.4, label="predictions (share / 4)")  # fmt: skip
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="Predicted probability", ylabel="Observed rate")
    ax.legend(loc="upper left", fontsize="small")
    _save(fig, ax, path, title)


def plot_decision_curve(y_true, probability, path, title: str = "") -> None:
    """Net benefit of the model, of treating everyone and of treating no one, over the
    threshold probabilities at which a clinician would act."""
    y, p = np.asarray(y_true, dtype=int), np.asarray(probability, dtype=float)
    thresholds = np.linspace(0.01, 0.8, 80)
    prevalence = y.mean()
    treat_all = prevalence - (1 - prevalence) * thresholds / (1 - thresholds)
    model = net_benefit(y, p, thresholds)
    fig, ax = _axes((6, 4.5))
    ax.plot(thresholds, model, lw=2, color="black", label="model (recalibrated)")
    ax.plot(thresholds, treat_all, lw=1, color="tab:red", label="treat all")
    ax.axhline(0, lw=1, color="grey", label="treat none")
    ax.set(xlabel="Threshold probability", ylabel="Net benefit")
    ax.set_ylim(
        min(-0.05, float(np.min(model)) - 0.02), max(prevalence, float(np.max(model))) + 0.05
    )
    ax.legend(loc="upper right", fontsize="small")
    _save(fig, ax, path, title)


def write_binary(
    predictions: pd.DataFrame, probability: bool, outdir, title="", calibrated=None
) -> None:
    """Every figure of a binary model into ``outdir``. Calibration and decision curve use
    the cross-fitted recalibrated probabilities (what the final model reports) of
    ``calibrated``, the scores and whether they are probabilities
    (:func:`radiotx.experiment.calibration_scores`; by default the predictions); the raw
    probabilities join the calibration figure when they are probabilities."""
    from radiotx import calibration

    part = _first_repeat(predictions)
    outdir = Path(outdir)
    scored, probability = (predictions, probability) if calibrated is None else calibrated
    scored = _first_repeat(scored)
    recalibrated = calibration.cross_fitted(scored, probability)
    kept = ~np.isnan(recalibrated)
    y = scored["y_true"].to_numpy(dtype=int)
    curves = {"recalibrated (cross-fitted)": recalibrated[kept]}
    if probability:
        curves["raw"] = scored["score"].to_numpy(dtype=float)[kept]
    plot_precision_recall(part, outdir / "precision_recall.png", title)
    plot_calibration(y[kept], curves, outdir / "calibration.png", title)
    plot_decision_curve(y[kept], recalibrated[kept], outdir / "decision_curve.png", title)
    plot_confusion_matrix(part, outdir / "confusion_matrix.png", title)


def plot_confusion_matrix(predictions: pd.DataFrame, path, title: str = "", labels=None) -> None:
    """Counts of true against predicted class (the models' own decision rule)."""
    part = _first_repeat(predictions)
    y, pred = part["y_true"].to_numpy(int), part["y_pred"].to_numpy(int)
    codes = np.arange(len(labels) if labels else max(2, int(max(y.max(), pred.max())) + 1))
    counts = confusion_matrix(y, pred, labels=codes)
    names = [str(labels.get(str(k), k)) if labels else str(k) for k in codes]
    fig, ax = _axes((4.5, 4))
    ax.imshow(counts, cmap="Blues")
    for (i, j), value in np.ndenumerate(counts):
        colour = "white" if value > counts.max() / 2 else "black"
        ax.text(j, i, str(value), ha="center", va="center", color=colour)
    ax.set_xticks(codes, names)
    ax.set_yticks(codes, names)
    ax.set(xlabel="Predicted", ylabel="True")
    _save(fig, ax, path, title)
