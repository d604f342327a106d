"""Nested cross-validation on stored outer folds, metrics and bootstrap confidence intervals."""

from __future__ import annotations

import logging
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from scipy.stats import t as t_dist
from sklearn.base import clone
from sklearn.metrics import balanced_accuracy_score, confusion_matrix, f1_score
from sklearn.model_selection import (
    GridSearchCV,
    ParameterGrid,
    RepeatedStratifiedKFold,
    StratifiedKFold,
)

from radiotx import choice
from radiotx.fitcache import FitCache
from radiotx.metrics import METRICS

log = logging.getLogger(__name__)


def scores(estimator, X) -> np.ndarray:
    """Continuous scores, higher meaning more likely positive (probability where
    available); for a multiclass endpoint one column per class."""
    if hasattr(estimator, "predict_proba"):
        probability = estimator.predict_proba(X)
        return probability[:, 1] if probability.shape[1] == 2 else probability
    return estimator.decision_function(X)


SCORE_PREFIX = "score_"  # multiclass predictions: one score column per class code


def score_columns(predictions: pd.DataFrame) -> np.ndarray:
    """The scores of a predictions table: a vector (binary) or a patients x classes
    matrix (multiclass, columns ``score_0``, ``score_1``, ...)."""
    if "score" in predictions:
        return predictions["score"].to_numpy(dtype=float)
    columns = sorted(
        (c for c in predictions.columns if c.startswith(SCORE_PREFIX)),
        key=lambda c: int(c.removeprefix(SCORE_PREFIX)),
    )
    return predictions[columns].to_numpy(dtype=float)


def score_frame(score: np.ndarray) -> dict[str, np.ndarray]:
    """Columns of a predictions table holding ``score``: ``score``, or ``score_<k>`` per
    class of a multiclass score matrix."""
    if score.ndim == 1:
        return {"score": score}
    return {f"{SCORE_PREFIX}{k}": score[:, k] for k in range(score.shape[1])}


def within_fold_auc(y_true, score, fold=None) -> float:
    """ROC AUC over the (positive, negative) pairs of patients in the same outer fold: the
    Mann-Whitney statistic (ties count one half) summed over folds, over the number of
    such pairs. The scores of different outer folds come from different fitted models (an
    SVM's decision values in one fold, a logistic regression's probabilities in the next),
    so no pair across folds is compared. It is the folds' AUCs averaged with weights
    n_pos * n_neg; with ``fold`` None, the plain AUC."""
    y = np.asarray(y_true, dtype=int)
    score = np.asarray(score, dtype=float)
    fold = np.zeros(len(y)) if fold is None else np.asarray(fold)
    u = pairs = 0.0
    for f in np.unique(fold):
        rows = fold == f
        positive = y[rows] == 1
        n_pos, n_neg = int(positive.sum()), int((~positive).sum())
        if n_pos and n_neg:
            u += rankdata(score[rows])[positive].sum() - n_pos * (n_pos + 1) / 2
            pairs += n_pos * n_neg
    return float(u / pairs) if pairs else float("nan")


def macro_ovr_auc(y_true, score, fold=None) -> float:
    """Mean over classes of the one-vs-rest ROC AUC of each class's score column (within
    outer folds, as :func:`within_fold_auc`, when ``fold`` is given). Unlike
    scikit-learn's ``roc_auc_score(multi_class="ovr")`` it needs no probabilities, so SVM
    decision values count too; classes absent from ``y_true`` are skipped."""
    y_true = np.asarray(y_true, dtype=int)
    aucs = [
        within_fold_auc(y_true == k, score[:, k], fold)
        for k in range(score.shape[1])
        if 0 < np.sum(y_true == k) < len(y_true)
    ]
    aucs = [a for a in aucs if np.isfinite(a)]
    return float(np.mean(aucs)) if aucs else float("nan")


def _macro_ovr_score(estimator, X, y) -> float:
    return macro_ovr_auc(y, scores(estimator, X))


def pooled_auc(predictions: pd.DataFrame) -> float:
    """The pooled out-of-fold AUC (pairs within outer folds, :func:`within_fold_auc`;
    macro one-vs-rest for several classes), averaged over repeats."""
    aucs = [
        macro_ovr_auc(p["y_true"], score_columns(p), p["fold"])
        if "score" not in p
        else within_fold_auc(p["y_true"], p["score"], p["fold"])
        for p in by_repeat(predictions)
    ]
    return float(np.mean(aucs))


def scoring_for(y) -> str | object:
    """The inner-CV scoring of an endpoint: ROC AUC, or its macro one-vs-rest mean for
    more than two classes."""
    return "roc_auc" if pd.Series(y).nunique() <= 2 else _macro_ovr_score


def metrics(y_true, score, y_pred, probability: bool = True, fold=None) -> dict[str, float]:
    """ROC AUC (from scores; over pairs within the same outer fold when ``fold`` is given,
    :func:`within_fold_auc`); balanced accuracy, sensitivity, specificity and F1 (from
    labels); Brier score (from scores, when they are probabilities, else NaN).

    With a score matrix (multiclass): macro one-vs-rest AUC, balanced accuracy, macro F1
    and the multiclass Brier score (sum over classes); sensitivity and specificity, which
    need a positive class, are NaN."""
    y_true = np.asarray(y_true, dtype=int)
    score = np.asarray(score, dtype=float)
    if score.ndim == 2:
        onehot = np.eye(score.shape[1])[y_true]
        return {
            "roc_auc": macro_ovr_auc(y_true, score, fold),
            "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
            "sensitivity": float("nan"),
            "specificity": float("nan"),
            "f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
            "brier": float(np.mean(np.sum((score - onehot) ** 2, axis=1)))
            if probability
            else float("nan"),
        }
    tn, fp, fn, tp = confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel()
    two_classes = len(np.unique(y_true)) == 2
    return {
        "roc_auc": within_fold_auc(y_true, score, fold) if two_classes else float("nan"),
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
    so that every replicate has both classes.

    With repeated outer CV (a ``repeat`` column, one prediction per patient and repeat)
    each replicate draws patients once and averages the metric over the repeats, the
    estimate that :meth:`NestedCVResult.summary` reports.
    """
    rng = np.random.default_rng(seed)
    parts = by_repeat(predictions)
    y = parts[0]["y_true"].to_numpy(dtype=int)
    if "score" not in predictions:
        return _bootstrap_multiclass(parts, n_boot, rng, level, probability)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    pos_draw = rng.choice(pos, size=(n_boot, len(pos)))
    neg_draw = rng.choice(neg, size=(n_boot, len(neg)))
    replicates = []
    for part in parts:
        score = part["score"].to_numpy(dtype=float)
        pred = part["y_pred"].to_numpy(dtype=int)
        replicate = _replicate_metrics(
            score[pos_draw], score[neg_draw], pred[pos_draw], pred[neg_draw]
        )
        if "fold" in part:
            replicate["roc_auc"] = _within_fold_auc_draws(
                score, part["fold"].to_numpy(), pos_draw, neg_draw
            )
        replicates.append(replicate)
    draws = {name: np.mean([r[name] for r in replicates], axis=0) for name in replicates[0]}
    if not probability:
        draws["brier"] = np.full(n_boot, np.nan)
    alpha = (1 - level) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN metric has no CI
        return {
            name: [float(np.nanquantile(v, alpha)), float(np.nanquantile(v, 1 - alpha))]
            for name, v in draws.items()
        }


def _within_fold_auc_draws(score, fold, pos_draw, neg_draw) -> np.ndarray:
    """:func:`within_fold_auc` of many bootstrap replicates at once (rows of the index
    arrays ``pos_draw`` and ``neg_draw``). Each patient's key orders by outer fold first
    and score within it, so the Mann-Whitney count over all pairs exceeds the within-fold
    one by exactly the pairs whose positive lies in a later fold, known from the counts."""
    codes = np.unique(fold, return_inverse=True)[1].reshape(-1)
    key = codes * (len(score) + 1) + rankdata(score)
    n_pos = pos_draw.shape[1]
    ranks = rankdata(np.hstack([key[pos_draw], key[neg_draw]]), axis=1)
    u_all = ranks[:, :n_pos].sum(axis=1) - n_pos * (n_pos + 1) / 2
    levels = np.arange(codes.max() + 1)
    pos_counts = (codes[pos_draw][..., None] == levels).sum(axis=1)
    neg_counts = (codes[neg_draw][..., None] == levels).sum(axis=1)
    earlier = np.cumsum(neg_counts, axis=1) - neg_counts  # negatives of earlier folds
    pairs = (pos_counts * neg_counts).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs > 0, (u_all - (pos_counts * earlier).sum(axis=1)) / pairs, np.nan)


def _bootstrap_multiclass(parts, n_boot, rng, level, probability) -> dict[str, list[float]]:
    """The bootstrap of :func:`bootstrap_ci` for a score matrix: patients resampled
    within each class, the metrics recomputed per replicate (not vectorised)."""
    y = parts[0]["y_true"].to_numpy(dtype=int)
    members = [np.flatnonzero(y == k) for k in np.unique(y)]
    draws = np.hstack([rng.choice(m, size=(n_boot, len(m))) for m in members])
    values = {name: np.zeros(n_boot) for name in METRICS}
    for part in parts:
        truth, pred = part["y_true"].to_numpy(dtype=int), part["y_pred"].to_numpy(dtype=int)
        score = score_columns(part)
        fold = part["fold"].to_numpy() if "fold" in part else np.zeros(len(part))
        for b, rows in enumerate(draws):
            replicate = metrics(truth[rows], score[rows], pred[rows], probability, fold[rows])
            for name in METRICS:
                values[name][b] += replicate[name] / len(parts)
    alpha = (1 - level) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN metric has no CI
        return {
            name: [float(np.nanquantile(v, alpha)), float(np.nanquantile(v, 1 - alpha))]
            for name, v in values.items()
        }


def fold_strata(predictions: pd.DataFrame) -> np.ndarray:
    """The outer fold of each prediction as one integer per (repeat, fold); zeros without
    a ``fold`` column. Scores are compared only within a stratum: each outer fold's come
    from its own fitted model."""
    if "fold" not in predictions:
        return np.zeros(len(predictions), dtype=int)
    keys = ["repeat", "fold"] if "repeat" in predictions else ["fold"]
    return predictions.groupby(keys, sort=True).ngroup().to_numpy()


def by_repeat(predictions: pd.DataFrame) -> list[pd.DataFrame]:
    """The predictions of each repeat of the outer CV, rows in the same patient order."""
    if "repeat" not in predictions:
        return [predictions]
    groups = [part for _, part in predictions.groupby("repeat", sort=True)]
    order = pd.Index(groups[0]["patient_id"])
    return [groups[0]] + [
        part.set_index("patient_id").loc[order].reset_index() for part in groups[1:]
    ]


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


def inner_seed(seed: int, repeat: int) -> int:
    """The seed of the inner CVs of one repeat of the outer CV (repeat 0: ``seed``)."""
    return seed + 1000 * repeat


def inner_cv(outer_fold: int, n_splits: int, seed: int, repeats: int = 1):
    """The inner CV of one outer fold (its own shuffle, reproducible from the seed); with
    ``repeats`` above 1, that many stratified partitions, each a new shuffle, so that the
    candidates are compared on ``n_splits * repeats`` validation sets."""
    if repeats > 1:
        return RepeatedStratifiedKFold(
            n_splits=n_splits, n_repeats=repeats, random_state=seed + outer_fold
        )
    return StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed + outer_fold)


def smallest_inner_class(
    y: pd.Series, outer_fold: pd.Series, n_splits: int, seed: int, repeats: int = 1
) -> int:
    """The fewest patients of one class in any inner training set of nested CV."""
    fewest = len(y)
    for k in sorted(outer_fold.unique()):
        train = y[(outer_fold != k).to_numpy()].astype(int)
        splits = inner_cv(k, n_splits, seed, repeats).split(train.to_frame(), train)
        for inner_train, _ in splits:
            fewest = min(fewest, int(np.bincount(train.iloc[inner_train], minlength=2).min()))
    return fewest


def tune(
    pipeline, param_grid, X, y, cv, scoring: str | None = "roc_auc", rule: str = "best"
) -> GridSearchCV:
    """Grid search of ``pipeline`` by ROC AUC (or ``scoring``) over ``cv``, refit on all
    of ``X`` with the candidate that ``rule`` picks (:func:`radiotx.choice.pick`)."""
    n_splits = cv.get_n_splits() if hasattr(cv, "get_n_splits") else len(cv)

    def refit(results) -> int:
        score, se = _mean_and_se(results, n_splits)
        return choice.pick(np.arange(len(score)), score, se, results["params"], rule)

    search = GridSearchCV(
        clone(pipeline), param_grid, cv=cv, scoring=scoring, n_jobs=1,
        refit=True if rule == "best" else refit,
    )  # fmt: skip
    with quiet_search():
        return search.fit(X, y)


def _mean_and_se(results: dict, n_splits: int) -> tuple[np.ndarray, np.ndarray]:
    """Each candidate's mean inner score (failed fits: minus infinity) and its standard
    error over the ``n_splits`` validation sets."""
    score = np.nan_to_num(results["mean_test_score"], nan=-np.inf)
    return score, np.asarray(results["std_test_score"], dtype=float) / np.sqrt(n_splits)


@dataclass
class NestedCVResult:
    """Out-of-fold predictions and what the inner search chose in each outer fold."""

    predictions: pd.DataFrame
    folds: list[dict] = field(default_factory=list)
    selected: pd.DataFrame | None = None
    probability: bool = True  # scores are predicted probabilities (else decision values)

    def summary(self, n_boot: int = 1000, seed: int = 42) -> dict:
        """Pooled metrics (averaged over repeats of the outer CV), per-fold mean and SD,
        the patient-bootstrap CI and the corrected resampled t CI over every outer fold."""
        per_fold = pd.DataFrame(self.folds)
        pooled = []
        for part in by_repeat(self.predictions):
            y, score = part["y_true"], score_columns(part)
            values = metrics(y, score, part["y_pred"], self.probability, fold=part["fold"])
            if self.probability and score.ndim == 1:
                values.update(calibration(y, score))
            pooled.append(values)
        result = {
            "folds": self.folds,
            "pooled": {m: float(np.mean([v[m] for v in pooled])) for m in pooled[0]},
            "mean": {m: float(per_fold[m].mean()) for m in METRICS},
            "sd": {m: float(per_fold[m].std(ddof=1)) for m in METRICS},
            "ci95": bootstrap_ci(
                self.predictions, n_boot=n_boot, seed=seed, probability=self.probability
            ),
        }
        if len(pooled) > 1:
            result["repeats"] = len(pooled)
        n_test = per_fold["n_test"].mean()
        n_patients = self.predictions["patient_id"].nunique()
        result["ci95_t"] = {
            m: corrected_t_ci(per_fold[m], n_test, n_patients - n_test) for m in METRICS
        }
        return result

    @classmethod
    def combine(cls, parts: list[FoldResult]) -> NestedCVResult:
        """One result from the outer folds of one model, each scored by its own job."""
        parts = sorted(parts, key=lambda part: (part.record.get("repeat", 0), part.record["fold"]))
        return cls(
            predictions=pd.concat([part.predictions for part in parts], ignore_index=True),
            folds=[part.record for part in parts],
            selected=pd.concat([part.selected for part in parts], ignore_index=True),
            probability=all(part.probability for part in parts),
        )


@dataclass
class FoldResult:
    """One outer fold of one model: its test predictions, metrics and chosen features, and
    any per-patient ``explanation`` (SHAP values, :mod:`radiotx.explain.tabular`). That
    names patients, so it is kept beside the record, which reaches metrics.json and MLflow
    as it is."""

    record: dict
    predictions: pd.DataFrame
    selected: pd.DataFrame
    probability: bool = True
    explanation: dict | None = None
    mitigated: dict | None = None  # a bias mitigation's test predictions, by method

    def to_dict(self) -> dict:
        out = {
            "record": self.record,
            "predictions": self.predictions.to_dict(orient="list"),
            "selected": self.selected.to_dict(orient="list"),
            "probability": self.probability,
        }
        if self.explanation is not None:
            out["explanation"] = self.explanation
        if self.mitigated is not None:
            out["mitigated"] = self.mitigated
        return out

    @classmethod
    def from_dict(cls, data: dict) -> FoldResult:
        predictions = pd.DataFrame(data["predictions"])
        predictions["patient_id"] = predictions["patient_id"].astype(str)
        selected = pd.DataFrame(data["selected"], columns=SELECTED_COLUMNS)
        return cls(
            data["record"],
            predictions,
            selected,
            data["probability"],
            data.get("explanation"),
            data.get("mitigated"),
        )


SELECTED_COLUMNS = ["fold", "modality", "feature"]


@dataclass
class Tuned:
    """One inner-CV choice: the pipeline refitted on the training rows with the chosen
    parameters, and its mean inner-CV ROC AUC. ``cross_fitted`` may hold the out-of-fold
    scores of the same configuration refitted on each outer training set
    (:meth:`radiotx.experiment.Procedure.cross_fit`), one score scale across folds."""

    estimator: object
    params: dict
    inner_score: float
    cross_fitted: pd.DataFrame | None = None


@contextmanager
def quiet_search():
    with warnings.catch_warnings():
        # A block narrower than k after the variance filter keeps all its features.
        warnings.filterwarnings("ignore", message=r"k=\d+ is greater than n_features")
        yield


def tune_each(
    pipeline,
    spaces: dict[str, list[dict]],
    X,
    y,
    cv,
    *,
    union: str | None = None,
    share=True,
    scoring: str | None = "roc_auc",
    rule: str = "best",
) -> dict[str, Tuned]:
    """The inner-CV choice within each named search space (one per classifier) and, when
    ``union`` names it, within all of them together (the classifier chosen too).

    ``share=True`` runs one grid search over the union with the pipeline's transformers
    and samplers cached in memory (:class:`radiotx.fitcache.FitCache`): preprocessing,
    selection and resampling are fitted once per inner split and setting and reused by
    every classifier and hyper-parameter. Each space's choice is the best of its own
    candidates, exactly what its own search would choose. ``share=False`` runs those
    searches one by one, refitting the shared steps each time. ``rule="one_se"`` picks
    the simplest candidate within one standard error of the best instead
    (:func:`radiotx.choice.pick`), in each space and in the union.
    """
    spaces = {name: space if isinstance(space, list) else [space] for name, space in spaces.items()}
    if not share:
        searches = {
            name: tune(pipeline, space, X, y, cv, scoring, rule) for name, space in spaces.items()
        }
        if union:
            everything = [part for space in spaces.values() for part in space]
            searches[union] = tune(pipeline, everything, X, y, cv, scoring, rule)
        return {
            name: Tuned(
                search.best_estimator_,
                search.best_params_,
                float(search.cv_results_["mean_test_score"][search.best_index_]),
            )  # fmt: skip
            for name, search in searches.items()
        }
    names = list(spaces)
    owner = np.repeat(names, [len(ParameterGrid(spaces[name])) for name in names])
    n_splits = cv.get_n_splits() if hasattr(cv, "get_n_splits") else len(cv)
    log.info(
        "inner CV of %d patients: %d candidate pipelines x %d splits = %d fits (%s)",
        len(X), len(owner), n_splits, len(owner) * n_splits, ", ".join(names),
    )  # fmt: skip
    started = time.perf_counter()
    with quiet_search():
        cached = clone(pipeline).set_params(memory=FitCache())
        search = GridSearchCV(
            cached,
            [part for name in names for part in spaces[name]],
            cv=cv,
            scoring=scoring,
            n_jobs=1,
            refit=False,
        ).fit(X, y)
        score, se = _mean_and_se(search.cv_results_, n_splits)
        candidates = search.cv_results_["params"]

        def refit(index: int) -> Tuned:
            params = candidates[index]
            # cloned, as GridSearchCV does: set_params would otherwise change the very
            # estimator objects that the search space (and its record) holds
            own = {key: clone(value, safe=False) for key, value in params.items()}
            fitted = clone(cached).set_params(**own).fit(X, y).set_params(memory=None)
            return Tuned(fitted, params, float(search.cv_results_["mean_test_score"][index]))

        picks = {
            name: choice.pick(np.flatnonzero(owner == name), score, se, candidates, rule)
            for name in names
        }
        chosen = {name: refit(index) for name, index in picks.items()}
        if union:
            # the first of the best, as GridSearchCV ranks ties; under the one-standard-
            # error rule, the simplest within one standard error of the best of all
            if rule == "best":
                scores = [chosen[n].inner_score for n in names]
                chosen[union] = chosen[names[int(np.argmax(scores))]]
            else:
                index = choice.pick(np.arange(len(owner)), score, se, candidates, rule)
                same = [n for n in names if picks[n] == index]
                chosen[union] = chosen[same[0]] if same else refit(index)
    log.info("inner CV done in %.1f s", time.perf_counter() - started)
    return chosen


def evaluate_fold(
    pipeline,
    spaces: dict[str, list[dict]],
    X: pd.DataFrame,
    y: pd.Series,
    outer_fold: pd.Series,
    fold: int,
    *,
    inner_splits: int = 3,
    inner_repeats: int = 1,
    seed: int = 42,
    repeat: int = 0,
    union: str | None = None,
    share: bool = True,
    rule: str = "best",
    selected=None,
    explain=None,
    attribute=None,
    mitigate=None,
) -> dict[str, FoldResult]:
    """Tune every named space by inner CV on the training rows of outer fold ``fold`` (of
    repeat ``repeat``) and score the chosen pipelines on its test rows, which no fitted
    step has seen. ``selected(fitted)`` may return the (modality, feature) pairs kept,
    ``explain(fitted, X_test, y_test)`` a dict to add to the fold's record, and
    ``attribute(name, fitted, X_train, X_test)`` per-patient attributions of a model (or
    None), kept as the fold result's ``explanation``, and ``mitigate(name, fitted,
    X_train, y_train, X_test, y_test)`` the results of bias mitigations of a model fitted
    on the same training rows (or None), kept as its ``mitigated``."""
    y = y.astype(int)
    test = (outer_fold == fold).to_numpy()
    inner = inner_cv(fold, inner_splits, inner_seed(seed, repeat), inner_repeats)
    tuned = tune_each(
        pipeline, spaces, X.loc[~test], y.loc[~test], inner, union=union, share=share,
        scoring=scoring_for(y), rule=rule,
    )  # fmt: skip
    results = {}
    for name, picked in tuned.items():
        results[name] = score_fold(picked, X.loc[test], y.loc[test], fold, repeat, selected)
        results[name].record["n_train"] = int((~test).sum())
        if explain is not None:
            results[name].record.update(explain(picked.estimator, X.loc[test], y.loc[test]))
        if attribute is not None:
            results[name].explanation = attribute(name, picked.estimator, X.loc[~test], X.loc[test])
        if mitigate is not None:
            results[name].mitigated = mitigate(
                name, picked.estimator, X.loc[~test], y.loc[~test], X.loc[test], y.loc[test]
            )
    return results


def score_fold(choice: Tuned, X_test, y_test, fold: int, repeat: int = 0, selected=None):
    """The :class:`FoldResult` of one tuned pipeline on its outer test rows."""
    model = choice.estimator
    score = scores(model, X_test)
    pred = np.asarray(model.predict(X_test), dtype=int)
    probability = hasattr(model, "predict_proba")
    predictions = pd.DataFrame(
        {
            "patient_id": X_test.index,
            "repeat": repeat,
            "fold": fold,
            "y_true": y_test.to_numpy(),
            **score_frame(score),
            "y_pred": pred,
        }
    )
    record = {"repeat": int(repeat), "fold": int(fold), "n_test": len(y_test)}
    record.update(metrics(y_test, score, pred, probability))
    record["best_params"] = {key: plain(value) for key, value in choice.params.items()}
    record["inner_roc_auc"] = choice.inner_score
    # a generative sampler's fit to the fold's real rows (distance synthetic vs real)
    fidelity = getattr(getattr(model, "named_steps", {}).get("balance"), "fidelity_", None)
    if fidelity:
        record["sampler_fidelity"] = {str(k): value for k, value in fidelity.items()}
    return FoldResult(record, predictions, chosen_frame(model, fold, selected), probability)


def chosen_frame(model, fold: int, selected=None) -> pd.DataFrame:
    """The (fold, modality, feature) rows that ``selected(model)`` names (none without it)."""
    pairs = [] if selected is None else selected(model)
    return pd.DataFrame([(int(fold), m, f) for m, f in pairs], columns=SELECTED_COLUMNS)


def nested_cv_each(
    pipeline,
    spaces: dict[str, list[dict]],
    X: pd.DataFrame,
    y: pd.Series,
    outer_fold: pd.Series,
    *,
    inner_splits: int = 3,
    seed: int = 42,
    repeat: int = 0,
    union: str | None = None,
    share: bool = True,
    selected=None,
    rule: str = "best",
) -> dict[str, NestedCVResult]:
    """:func:`evaluate_fold` over every outer fold, one result per named space."""
    parts: dict[str, list[FoldResult]] = {}
    for k in sorted(outer_fold.unique()):
        fold_results = evaluate_fold(
            pipeline, spaces, X, y, outer_fold, k, inner_splits=inner_splits, seed=seed,
            repeat=repeat, union=union, share=share, selected=selected, rule=rule,
        )  # fmt: skip
        for name, part in fold_results.items():
            parts.setdefault(name, []).append(part)
    return {name: NestedCVResult.combine(part) for name, part in parts.items()}


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
    share: bool = False,
) -> NestedCVResult:
    """Tune ``pipeline`` by inner CV on each outer training set; score the held-out fold.

    ``outer_fold`` maps each row of ``X`` to its stored outer fold. The outer test rows are
    never seen by any fitted step of that fold. ``selected(fitted)`` may return the
    (modality, feature) pairs the tuned pipeline kept.
    """
    return nested_cv_each(
        pipeline, {"model": param_grid}, X, y, outer_fold, inner_splits=inner_splits,
        seed=seed, share=share, selected=selected,
    )["model"]  # fmt: skip


def plain(value):
    """JSON-friendly hyper-parameter values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):  # e.g. a fusion's selector per modality
        return {key: plain(v) for key, v in value.items()}
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
