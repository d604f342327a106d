"""Nested cross-validation on stored outer folds, metrics and bootstrap confidence intervals."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from scipy.stats import t as t_dist
from sklearn.base import clone
from sklearn.metrics import balanced_accuracy_score, confusion_matrix, roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold

METRICS = ("roc_auc", "balanced_accuracy", "sensitivity", "specificity", "f1", "brier")


def scores(estimator, X) -> np.ndarray:
    """Continuous scores, higher meaning more likely positive (probability where available)."""
    if hasattr(estimator, "predict_proba"):
        return estimator.predict_proba(X)[:, 1]
    return estimator.decision_function(X)


def metrics(y_true, score, y_pred, probability: bool = True) -> dict[str, float]:
    """ROC AUC (from scores); balanced accuracy, sensitivity, specificity and F1 (from
    labels); Brier score (from scores, when they are probabilities, else NaN)."""
    y_true = np.asarray(y_true, dtype=int)
    score = np.asarray(score, dtype=float)
    tn, fp, fn, tp = confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel()
    two_classes = len(np.unique(y_true)) == 2
    return {
        "roc_auc": float(roc_auc_score(y_true, score)) if two_classes else float("nan"),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "sensitivity": float(tp / (tp + fn)) if tp + fn else float("nan"),
        "specificity": float(tn / (tn + fp)) if tn + fp else float("nan"),
        "f1": float(2 * tp / (2 * tp + fp + fn)) if tp + fp + fn else float("nan"),
        "brier": float(np.mean((score - y_true) ** 2)) if probability else float("nan"),
    }


def corrected_t_ci(
    values, n_test: float, n_train: float, level: float = 0.95, bounds=(0.0, 1.0)
) -> list[float]:
    """CI of the mean of per-fold scores by the corrected resampled t-test (Nadeau & Bengio
    2003): the folds share training patients, so the plain standard error is too small;
    the variance is inflated by ``1/J + n_test/n_train`` instead of ``1/J`` (J folds).
    The symmetric t interval is clipped to the metric's range (``bounds``; all metrics
    here lie in [0, 1])."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return [float("nan"), float("nan")]
    se = np.sqrt((1 / len(values) + n_test / n_train) * values.var(ddof=1))
    half = t_dist.ppf(0.5 + level / 2, df=len(values) - 1) * se
    low, high = values.mean() - half, values.mean() + half
    return [float(max(low, bounds[0])), float(min(high, bounds[1]))]


def calibration(y_true, probability) -> dict[str, float]:
    """Calibration slope and intercept (calibration-in-the-large) of predicted probabilities.

    The slope is the coefficient of logit(p) in a logistic regression of the outcome on it
    (1 = well calibrated, < 1 = predictions too extreme, as from overfitting); the intercept
    is the constant ``a`` of the model ``logit P(y) = a + logit(p)`` (0 = mean risk right,
    > 0 = risk underestimated). Both by maximum likelihood (Newton iterations, unpenalised).
    """
    y = np.asarray(y_true, dtype=float)
    p = np.clip(np.asarray(probability, dtype=float), 1e-6, 1 - 1e-6)
    lp = np.log(p / (1 - p))
    if len(np.unique(y)) < 2:
        return {"calibration_slope": float("nan"), "calibration_intercept": float("nan")}
    design = np.column_stack([np.ones_like(lp), lp])
    beta = _logistic_fit(design, y, offset=np.zeros_like(lp))
    intercept = _logistic_fit(np.ones((len(lp), 1)), y, offset=lp)
    return {"calibration_slope": float(beta[1]), "calibration_intercept": float(intercept[0])}


def _logistic_fit(design, y, offset, iterations: int = 50) -> np.ndarray:
    """Unpenalised logistic regression with an offset, by Newton-Raphson."""
    beta = np.zeros(design.shape[1])
    for _ in range(iterations):
        mu = 1 / (1 + np.exp(-(design @ beta + offset)))
        weight = mu * (1 - mu)
        step = np.linalg.lstsq(
            design.T @ (design * weight[:, None]), design.T @ (y - mu), rcond=None
        )[0]
        beta += step
        if np.max(np.abs(step)) < 1e-10:
            break
    return beta


def bootstrap_ci(
    predictions: pd.DataFrame,
    n_boot: int = 1000,
    seed: int = 42,
    level: float = 0.95,
    probability: bool = True,
) -> dict[str, list[float]]:
    """Percentile CI of each metric over patients resampled with replacement, within class
    so that every replicate has both classes."""
    rng = np.random.default_rng(seed)
    y = predictions["y_true"].to_numpy(dtype=int)
    score = predictions["score"].to_numpy(dtype=float)
    pred = predictions["y_pred"].to_numpy(dtype=int)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    pos_draw = rng.choice(pos, size=(n_boot, len(pos)))
    neg_draw = rng.choice(neg, size=(n_boot, len(neg)))
    draws = _replicate_metrics(score[pos_draw], score[neg_draw], pred[pos_draw], pred[neg_draw])
    if not probability:
        draws["brier"] = np.full(n_boot, np.nan)
    alpha = (1 - level) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN metric has no CI
        return {
            name: [float(np.nanquantile(v, alpha)), float(np.nanquantile(v, 1 - alpha))]
            for name, v in draws.items()
        }


def _replicate_metrics(score_pos, score_neg, pred_pos, pred_neg) -> dict[str, np.ndarray]:
    """The metrics of many bootstrap replicates at once (one replicate per row).

    AUC is the Mann-Whitney statistic from mid-ranks, which equals sklearn's roc_auc_score
    (ties count one half); vectorised because a per-replicate sklearn call dominates the
    run time of a model job.
    """
    n_pos, n_neg = score_pos.shape[1], score_neg.shape[1]
    ranks = rankdata(np.hstack([score_pos, score_neg]), axis=1)
    auc = (ranks[:, :n_pos].sum(axis=1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    sensitivity = pred_pos.mean(axis=1)
    specificity = 1 - pred_neg.mean(axis=1)
    tp, fp = pred_pos.sum(axis=1), pred_neg.sum(axis=1)
    fn = n_pos - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan)
    squared = np.hstack([(score_pos - 1.0) ** 2, score_neg**2])
    return {
        "roc_auc": auc,
        "balanced_accuracy": (sensitivity + specificity) / 2,
        "sensitivity": sensitivity,
        "specificity": specificity,
        "f1": f1,
        "brier": squared.mean(axis=1),
    }


def inner_cv(outer_fold: int, n_splits: int, seed: int) -> StratifiedKFold:
    """The inner CV of one outer fold (its own shuffle, reproducible from the seed)."""
    return StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed + outer_fold)


def smallest_inner_class(y: pd.Series, outer_fold: pd.Series, n_splits: int, seed: int) -> int:
    """The fewest patients of one class in any inner training set of nested CV."""
    fewest = len(y)
    for k in sorted(outer_fold.unique()):
        train = y[(outer_fold != k).to_numpy()].astype(int)
        for inner_train, _ in inner_cv(k, n_splits, seed).split(train.to_frame(), train):
            fewest = min(fewest, int(np.bincount(train.iloc[inner_train], minlength=2).min()))
    return fewest


def tune(pipeline, param_grid, X, y, cv) -> GridSearchCV:
    """Grid search of ``pipeline`` by ROC AUC over ``cv``, refit on all of ``X``."""
    search = GridSearchCV(
        clone(pipeline), param_grid, cv=cv, scoring="roc_auc", n_jobs=1, refit=True
    )
    with warnings.catch_warnings():
        # A block narrower than k after the variance filter keeps all its features.
        warnings.filterwarnings("ignore", message=r"k=\d+ is greater than n_features")
        return search.fit(X, y)


@dataclass
class NestedCVResult:
    """Out-of-fold predictions and what the inner search chose in each outer fold."""

    predictions: pd.DataFrame
    folds: list[dict] = field(default_factory=list)
    selected: pd.DataFrame | None = None
    probability: bool = True  # scores are predicted probabilities (else decision values)

    def summary(self, n_boot: int = 1000, seed: int = 42) -> dict:
        per_fold = pd.DataFrame(self.folds)
        y, score = self.predictions["y_true"], self.predictions["score"]
        result = {
            "folds": self.folds,
            "pooled": metrics(y, score, self.predictions["y_pred"], self.probability),
            "mean": {m: float(per_fold[m].mean()) for m in METRICS},
            "sd": {m: float(per_fold[m].std(ddof=1)) for m in METRICS},
            "ci95": bootstrap_ci(
                self.predictions, n_boot=n_boot, seed=seed, probability=self.probability
            ),
        }
        n_test = per_fold["n_test"].mean()
        result["ci95_t"] = {
            m: corrected_t_ci(per_fold[m], n_test, len(self.predictions) - n_test) for m in METRICS
        }
        if self.probability:
            result["pooled"].update(calibration(y, score))
        return result


def nested_cv(
    pipeline,
    param_grid,
    X: pd.DataFrame,
    y: pd.Series,
    outer_fold: pd.Series,
    *,
    inner_splits: int = 3,
    seed: int = 42,
    selected=None,
) -> NestedCVResult:
    """Tune ``pipeline`` by inner CV on each outer training set; score the held-out fold.

    ``outer_fold`` maps each row of ``X`` to its stored outer fold. The outer test rows are
    never seen by any fitted step of that fold. ``selected(fitted)`` may return the
    (modality, feature) pairs the tuned pipeline kept.
    """
    y = y.astype(int)
    rows, fold_records, chosen, probability = [], [], [], True
    for k in sorted(outer_fold.unique()):
        test = (outer_fold == k).to_numpy()
        inner = inner_cv(k, inner_splits, seed)
        search = tune(pipeline, param_grid, X.loc[~test], y.loc[~test], inner)
        score = scores(search.best_estimator_, X.loc[test])
        pred = search.best_estimator_.predict(X.loc[test])
        fold_probability = hasattr(search.best_estimator_, "predict_proba")
        probability &= fold_probability
        y_test = y.loc[test]
        rows.append(
            pd.DataFrame(
                {
                    "patient_id": X.index[test],
                    "fold": k,
                    "y_true": y_test.to_numpy(),
                    "score": score,
                    "y_pred": np.asarray(pred, dtype=int),
                }
            )
        )
        record = {"fold": int(k), "n_test": int(test.sum())}
        record.update(metrics(y_test, score, pred, fold_probability))
        record["best_params"] = {key: _plain(value) for key, value in search.best_params_.items()}
        record["inner_roc_auc"] = float(search.best_score_)
        fold_records.append(record)
        if selected is not None:
            for modality, feature in selected(search.best_estimator_):
                chosen.append({"fold": int(k), "modality": modality, "feature": feature})
    predictions = pd.concat(rows, ignore_index=True)
    return NestedCVResult(
        predictions=predictions,
        folds=fold_records,
        selected=pd.DataFrame(chosen, columns=["fold", "modality", "feature"]),
        probability=probability,
    )


def _plain(value):
    """JSON-friendly hyper-parameter values."""
    if isinstance(value, np.generic):
        return value.item()
    if value is None or hasattr(
        value, "get_params"
    ):  # a step chosen by the search: name and parameters
        return describe(value)
    return value


def describe(step) -> str:
    """``KBest(k=10)``, ``TopK(estimator=LogisticRegression, k=20)``: a chosen step with
    every plain parameter (sklearn's repr leaves out those at their default)."""
    if step is None:
        return "None"
    parts = []
    for key, value in sorted(step.get_params(deep=False).items()):
        if hasattr(value, "get_params"):
            parts.append(f"{key}={type(value).__name__}")
        elif isinstance(value, bool | int | float | str) or value is None:
            parts.append(f"{key}={value!r}" if isinstance(value, str) else f"{key}={value}")
    return f"{type(step).__name__}({', '.join(parts)})"


def learning_curve(
    pipeline,
    param_grid,
    X: pd.DataFrame,
    y: pd.Series,
    outer_fold: pd.Series,
    *,
    fractions=(0.25, 0.5, 0.75, 1.0),
    inner_splits: int = 3,
    seed: int = 42,
) -> pd.DataFrame:
    """Nested-CV performance when each outer training set is cut to a fraction of its
    patients (a stratified random subset), scored on the full outer test folds.

    A curve still rising at 1.0 says more patients would help; a flat one says the model,
    not the sample size, limits performance. Returns one row per fraction: the training
    size per fold, the pooled out-of-fold ROC AUC and its mean over folds.
    """
    from sklearn.model_selection import StratifiedShuffleSplit

    y = y.astype(int)
    rows = []
    for fraction in fractions:
        scores_, truths, fold_aucs, sizes = [], [], [], []
        for k in sorted(outer_fold.unique()):
            test = (outer_fold == k).to_numpy()
            X_train, y_train = X.loc[~test], y.loc[~test]
            if fraction < 1:
                cut = StratifiedShuffleSplit(1, train_size=fraction, random_state=seed + int(k))
                keep, _ = next(cut.split(X_train, y_train))
                X_train, y_train = X_train.iloc[keep], y_train.iloc[keep]
            search = tune(pipeline, param_grid, X_train, y_train, inner_cv(k, inner_splits, seed))
            score = scores(search.best_estimator_, X.loc[test])
            scores_.append(score)
            truths.append(y.loc[test].to_numpy())
            fold_aucs.append(roc_auc_score(y.loc[test], score))
            sizes.append(len(y_train))
        rows.append(
            {
                "fraction": float(fraction),
                "n_train": float(np.mean(sizes)),
                "roc_auc": float(roc_auc_score(np.concatenate(truths), np.concatenate(scores_))),
                "roc_auc_mean": float(np.mean(fold_aucs)),
            }
        )
    return pd.DataFrame(rows)
