"""Evaluation figures of a model's out-of-fold predictions: ROC and precision-recall
curves, Kaplan-Meier curves by risk group, calibration, decision curve and confusion
matrix.

Each outer fold's scores come from its own fitted model (an SVM's decision values in one
fold, a logistic regression's probabilities in the next), so curves that threshold scores
are drawn per fold and averaged vertically over the folds, never by thresholding every
fold's scores together; calibration and decision curves use recalibrated probabilities,
which share one scale. Figures of single patients' predictions use the first repeat of
the outer CV, so each patient counts once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    average_precision_score,
    confusion_matrix,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from radiotx.evaluate import fold_strata, pooled_auc, score_columns, within_fold_auc

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


def _folds(predictions: pd.DataFrame):
    """The predictions of each (repeat, outer fold)."""
    return predictions.groupby(fold_strata(predictions), sort=True)


def _roc_points(y_true, score) -> tuple[np.ndarray, np.ndarray, float] | None:
    """FPR, TPR and AUC; None when only one class is present (ROC undefined)."""
    y_true = np.asarray(y_true, dtype=int)
    if np.unique(y_true).size < 2:
        return None
    fpr, tpr, _ = roc_curve(y_true, score)
    return fpr, tpr, float(roc_auc_score(y_true, score))


GRID = np.linspace(0.0, 1.0, 201)


def mean_roc(predictions: pd.DataFrame, positive, score) -> np.ndarray | None:
    """The vertical average over the folds of their ROC curves (Fawcett 2006) of the
    class ``positive`` (a boolean per row) by ``score`` (a column per row)."""
    curves = []
    for _, part in _folds(predictions.assign(_positive=positive, _score=score)):
        roc = _roc_points(part["_positive"], part["_score"])
        if roc is not None:
            curves.append(np.interp(GRID, roc[0], roc[1]))
    if not curves:
        return None
    mean = np.mean(curves, axis=0)
    mean[0] = 0.0
    return mean


def plot_roc(predictions: pd.DataFrame, path: str | Path, title: str = "") -> None:
    """Per-outer-fold (thin) ROC curves of out-of-fold scores and their vertical average
    (thick, labelled with the pooled AUC: pairs within folds) as PNG; for several classes
    the averaged one-vs-rest curve of each class."""
    fig, ax = _axes()
    if "score" in predictions:
        first = _first_repeat(predictions)
        fold_of = first.get("fold", pd.Series(0, index=first.index))
        for fold, part in first.groupby(fold_of, sort=True):
            roc = _roc_points(part["y_true"], part["score"])
            if roc is not None:
                ax.plot(roc[0], roc[1], lw=0.8, alpha=0.6, label=f"fold {fold} (AUC {roc[2]:.2f})")
        mean = mean_roc(predictions, predictions["y_true"] == 1, predictions["score"])
        if mean is not None:
            label = f"mean of the folds (pooled AUC {pooled_auc(predictions):.2f})"
            ax.plot(GRID, mean, lw=2.5, color="black", label=label)
    else:
        score, fold = score_columns(predictions), fold_strata(predictions)
        for k in range(score.shape[1]):
            positive = (predictions["y_true"] == k).to_numpy()
            mean = mean_roc(predictions, positive, score[:, k])
            if mean is not None:
                auc = within_fold_auc(positive, score[:, k], fold)
                ax.plot(GRID, mean, lw=2, label=f"class {k} vs rest (AUC {auc:.2f})")
    ax.plot([0, 1], [0, 1], ls="--", lw=1, color="grey", label="chance")
    ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), xlabel="False positive rate",
           ylabel="True positive rate")  # fmt: skip
    ax.set_aspect("equal")
    ax.legend(loc="lower right", fontsize="small")
    _save(fig, ax, path, title)


def plot_risk_groups(predictions: pd.DataFrame, path: str | Path, title: str = "") -> None:
    """Kaplan-Meier curves of the patients whose out-of-fold risk lies above and below the
    median risk of their own outer fold (first repeat of the outer CV) as PNG: each fold's
    risks are its own model's, on its own scale."""
    from sksurv.nonparametric import kaplan_meier_estimator

    predictions = _first_repeat(predictions)
    score = predictions["score"]
    high = score > score.groupby(predictions["fold"]).transform("median")
    fig, ax = _axes((5.5, 4.5))
    for label, rows, colour in (("high risk", high, "tab:red"), ("low risk", ~high, "tab:blue")):
        part = predictions[rows]
        if len(part):
            time, survival = kaplan_meier_estimator(
                part["event"].astype(bool).to_numpy(), part["time"].to_numpy(dtype=float)
            )
            events = int(part["event"].sum())
            ax.step(time, survival, where="post", color=colour,
                    label=f"{label} (n={len(part)}, {events} events)")  # fmt: skip
    ax.set(xlabel="Time", ylabel="Survival probability", ylim=(0, 1.02))
    ax.legend(loc="lower left", fontsize="small")
    _save(fig, ax, path, title)


def mean_precision_recall(predictions: pd.DataFrame) -> tuple[np.ndarray | None, float]:
    """The folds' precision at each recall of :data:`GRID` (interpolated: the highest
    precision at that recall or beyond), averaged over the folds, and the folds' mean
    average precision; (None, NaN) when no fold holds both classes."""
    curves, aps = [], []
    for _, part in _folds(predictions):
        y, score = part["y_true"].to_numpy(int), part["score"].to_numpy(float)
        if 0 < y.sum() < len(y):
            precision, recall, _ = precision_recall_curve(y, score)
            envelope = np.maximum.accumulate(precision)  # recall falls along the arrays
            curves.append(np.interp(GRID, recall[::-1], envelope[::-1]))
            aps.append(average_precision_score(y, score))
    if not curves:
        return None, float("nan")
    return np.mean(curves, axis=0), float(np.mean(aps))


def plot_precision_recall(predictions: pd.DataFrame, path, title: str = "") -> None:
    """Per-outer-fold precision-recall curves and their average over the folds
    (interpolated precision at each recall: the highest precision at that recall or
    beyond), labelled with the folds' mean average precision."""
    fig, ax = _axes()
    curve, ap = mean_precision_recall(predictions)
    if curve is not None:
        label = f"mean of the folds (AP {ap:.2f})"
        ax.plot(GRID, curve, lw=2, color="black", label=label)
    prevalence = _first_repeat(predictions)["y_true"].mean()
    ax.axhline(prevalence, ls="--", lw=1, color="grey", label=f"prevalence {prevalence:.2f}")
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
