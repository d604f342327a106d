"""Paired comparison of models on identical outer folds: fusion strategies against
single-modality baselines, by DeLong's test on the out-of-fold predictions (pairs within
each outer fold) and by the corrected resampled t-test on per-fold AUCs, Holm-adjusted;
the cost of model selection; AUC by modality
availability pattern; a figure of every model's AUC with its CI.

Two models of an endpoint are compared on the patients both scored (a single-modality
model scores only the patients with its modality), fold by fold on the stored splits."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import roc_auc_score
from statsmodels.stats.multitest import multipletests

from radiotx import evaluate


def _midranks(x: np.ndarray) -> np.ndarray:
    return stats.rankdata(x, method="average")


def delong(y_true, score_a, score_b, fold=None) -> dict[str, float]:
    """DeLong, DeLong & Clarke-Pearson (1988) test of two correlated AUCs on the same
    patients, with the midrank algorithm of Sun & Xu (2014): AUCs, their difference, its
    standard error and the two-sided p-value.

    With ``fold`` (each patient's outer fold) the AUCs are those over the pairs within each
    fold (:func:`radiotx.evaluate.within_fold_auc`), since each fold's scores come from
    its own fitted model: the fold AUCs weighted by their pairs, whose variance sums the
    folds' (squared weights), the structural components' covariance pooled over folds
    (deviations from their fold's mean). One fold is the plain test."""
    y = np.asarray(y_true).astype(bool)
    scores = np.vstack([np.asarray(score_a, float), np.asarray(score_b, float)])
    fold = np.zeros(len(y)) if fold is None else np.asarray(fold)
    parts = []  # per fold: weight, AUCs, centred components of positives and negatives
    for f in np.unique(fold):
        rows = fold == f
        pos, neg = scores[:, rows & y], scores[:, rows & ~y]
        m, n = pos.shape[1], neg.shape[1]
        if m == 0 or n == 0:
            continue
        tx = np.array([_midranks(p) for p in pos])
        ty = np.array([_midranks(q) for q in neg])
        tz = np.array([_midranks(s) for s in np.hstack([pos, neg])])
        auc = (tz[:, :m].sum(axis=1) / m - (m + 1) / 2) / n
        v01 = (tz[:, :m] - tx) / n  # structural components of the positives
        v10 = 1.0 - (tz[:, m:] - ty) / m  # and of the negatives
        parts.append(
            (m * n, m, n, auc, v01 - v01.mean(1, keepdims=True), v10 - v10.mean(1, keepdims=True))
        )
    m_all = sum(p[1] for p in parts)
    n_all = sum(p[2] for p in parts)
    if m_all - len(parts) < 1 or n_all - len(parts) < 1:
        raise ValueError("DeLong's test needs at least two patients of each class per fold")
    weights = np.array([p[0] for p in parts], dtype=float) / sum(p[0] for p in parts)
    auc = sum(w * p[3] for w, p in zip(weights, parts, strict=True))
    deviations_pos = np.hstack([p[4] for p in parts])
    deviations_neg = np.hstack([p[5] for p in parts])
    s01 = deviations_pos @ deviations_pos.T / (m_all - len(parts))
    s10 = deviations_neg @ deviations_neg.T / (n_all - len(parts))
    cov = sum(w**2 * (s01 / p[1] + s10 / p[2]) for w, p in zip(weights, parts, strict=True))
    diff = float(auc[0] - auc[1])
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    se = float(np.sqrt(max(var, 0.0)))
    p = float(2 * stats.norm.sf(abs(diff) / se)) if se > 0 else (1.0 if diff == 0 else 0.0)
    return {"auc_a": float(auc[0]), "auc_b": float(auc[1]), "diff": diff, "se": se, "p": p}


def corrected_t_test(differences, n_test: float, n_train: float) -> float:
    """Two-sided p-value of the mean of per-fold score differences by the corrected
    resampled t-test (Nadeau & Bengio 2003), as :func:`radiotx.evaluate.corrected_t_ci`."""
    d = np.asarray(differences, dtype=float)
    d = d[np.isfinite(d)]
    if len(d) < 2:
        return float("nan")
    var = d.var(ddof=1)
    if var == 0:
        return 1.0 if d.mean() == 0 else 0.0
    t = d.mean() / np.sqrt((1 / len(d) + n_test / n_train) * var)
    return float(2 * stats.t.sf(abs(t), df=len(d) - 1))


def paired(a: pd.DataFrame, b: pd.DataFrame) -> dict:
    """Model ``a`` against model ``b`` (predictions tables with patient_id, repeat, fold,
    y_true, score) on the patients both scored. DeLong on the pooled predictions of each
    repeat (p-values of several repeats combined by their median, a conservative choice),
    corrected t-test on the per-fold AUC differences of every repeat. The AUCs compare
    patients of the same outer fold only (:func:`delong` with the folds)."""
    keys = ["patient_id", "repeat", "fold", "y_true"]
    both = a[keys + ["score"]].merge(b[keys + ["score"]], on=keys, suffixes=("_a", "_b"))
    if both.empty:
        raise ValueError("the two models share no scored patient")
    tests = [
        delong(part["y_true"], part["score_a"], part["score_b"], part["fold"])
        for _, part in both.groupby("repeat")
    ]
    per_fold = []
    for _, part in both.groupby(["repeat", "fold"]):
        if part["y_true"].nunique() == 2:
            per_fold.append(
                roc_auc_score(part["y_true"], part["score_a"])
                - roc_auc_score(part["y_true"], part["score_b"])
            )
    n_patients = both["patient_id"].nunique()
    n_test = both.groupby(["repeat", "fold"]).size().mean()
    return {
        "n_patients": int(n_patients),
        "auc_a": float(np.mean([t["auc_a"] for t in tests])),
        "auc_b": float(np.mean([t["auc_b"] for t in tests])),
        "diff": float(np.mean([t["diff"] for t in tests])),
        "delong_p": float(np.median([t["p"] for t in tests])),
        "fold_diff_mean": float(np.mean(per_fold)) if per_fold else float("nan"),
        "t_p": corrected_t_test(per_fold, n_test, n_patients - n_test),
    }


COMPARISON_COLUMNS = [
    "pipeline", "model", "baseline", "n_patients", "auc_a", "auc_b", "diff", "delong_p",
    "fold_diff_mean", "t_p", "delong_p_holm", "t_p_holm",
]  # fmt: skip


def comparisons(predictions: dict[tuple[str, str], pd.DataFrame], fused: set[str]) -> pd.DataFrame:
    """Every model of a fusion pipeline (``fused``: their pipeline names) against the
    headline model of every single-modality pipeline (its "selected" model where there is
    one, else its only model), Holm-adjusted over all these tests.

    ``predictions`` maps (pipeline, model) to that model's out-of-fold predictions."""
    baselines = {}
    for pipeline, model in predictions:
        if pipeline not in fused and (model == "selected" or pipeline not in baselines):
            baselines[pipeline] = model
    rows = []
    for (pipeline, model), frame in predictions.items():
        if pipeline not in fused:
            continue
        for base_pipeline, base_model in sorted(baselines.items()):
            result = paired(frame, predictions[(base_pipeline, base_model)])
            rows.append(
                {
                    "pipeline": pipeline,
                    "model": model,
                    "baseline": f"{base_pipeline}/{base_model}",
                    **result,
                }
            )
    if not rows:  # no single-modality pipeline to compare with
        return pd.DataFrame(columns=COMPARISON_COLUMNS)
    table = pd.DataFrame(rows)
    for column in ("delong_p", "t_p"):
        valid = table[column].notna()
        adjusted = np.full(len(table), np.nan)
        if valid.any():
            adjusted[valid.to_numpy()] = multipletests(table.loc[valid, column], method="holm")[1]
        table[f"{column}_holm"] = adjusted
    return table


def by_availability(
    predictions: dict[tuple[str, str], pd.DataFrame], availability: pd.DataFrame
) -> pd.DataFrame:
    """AUC of every model per modality-availability pattern of its patients (over the
    pairs within each outer fold, averaged over repeats); a pattern with one class only
    has no AUC."""
    have = availability.astype(bool)
    pattern = have.apply(lambda row: "+".join(c for c in have.columns if row[c]) or "none", axis=1)
    rows = []
    for (pipeline, model), frame in predictions.items():
        frame = frame.assign(pattern=frame["patient_id"].map(pattern).fillna("unknown"))
        for name, part in frame.groupby("pattern"):
            first = evaluate.by_repeat(part)[0]
            auc = evaluate.pooled_auc(part) if first["y_true"].nunique() == 2 else float("nan")
            rows.append(
                {
                    "pipeline": pipeline,
                    "model": model,
                    "pattern": name,
                    "n_patients": int(len(first)),
                    "n_positive": int(first["y_true"].sum()),
                    "roc_auc": auc,
                }
            )
    return pd.DataFrame(rows)


def plot_strategies(metrics: pd.DataFrame, path, title: str = "") -> None:
    """Every model's pooled AUC with its 95 % bootstrap CI, fusion models in one colour
    and single-modality ones in another (``metrics``: pipeline, model, fused, roc_auc,
    ci_low, ci_high)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = metrics.sort_values("roc_auc").reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(6.5, 0.35 * len(table) + 1.4))
    for fused, colour in ((False, "tab:grey"), (True, "tab:purple")):
        rows = table[table["fused"] == fused]
        ax.errorbar(
            rows["roc_auc"], rows.index,
            xerr=[rows["roc_auc"] - rows["ci_low"], rows["ci_high"] - rows["roc_auc"]],
            fmt="o", color=colour, capsize=3,
        )  # fmt: skip
    ax.axvline(0.5, color="black", lw=0.8, ls=":")
    ax.set_yticks(np.arange(len(table)), table["pipeline"] + " / " + table["model"])
    ax.set_xlabel("pooled out-of-fold AUC (95 % bootstrap CI)")
    ax.set_xlim(0, 1)
    ax.set_title(title or "fusion strategies (purple) and single modalities (grey)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def contributions(metrics: list[dict]) -> pd.DataFrame:
    """Mean learned weight and block permutation importance of each modality per fusion
    model, over its outer folds (from the models' metrics.json)."""
    rows = []
    for m in metrics:
        for record in m.get("folds", []):
            for modality, part in record.get("contribution", {}).items():
                rows.append(
                    {
                        "pipeline": m["pipeline"],
                        "model": m["classifier"],
                        "modality": modality,
                        "strategy": record.get("strategy"),
                        "weight": part["weight"],
                        "importance": part["importance"],
                    }
                )
    if not rows:
        return pd.DataFrame(columns=["pipeline", "model", "modality", "weight", "importance"])
    table = pd.DataFrame(rows)
    return (
        table.groupby(["pipeline", "model", "modality"], sort=False)[["weight", "importance"]]
        .mean()
        .reset_index()
    )


def model_table(metrics: list[dict], fused: set[str]) -> pd.DataFrame:
    """pipeline, model, fused, roc_auc, ci_low, ci_high of every model (for the figure)."""
    return pd.DataFrame(
        [
            {
                "pipeline": m["pipeline"],
                "model": m["classifier"],
                "fused": m["pipeline"] in fused,
                "roc_auc": m["pooled"]["roc_auc"],
                "ci_low": m["ci95"]["roc_auc"][0],
                "ci_high": m["ci95"]["roc_auc"][1],
            }
            for m in metrics
        ]
    )


SELECTION_COLUMNS = [
    "endpoint", "pipeline", "candidate", "metric", "folds", "selected", "fixed", "cost",
    "ci_low", "ci_high", "t_p",
]  # fmt: skip


def selection_cost(metrics: list[dict], selected: str = "selected") -> pd.DataFrame:
    """What the inner CV's choice cost or gained: per endpoint and pipeline, the
    ``selected`` model (whose inner CV also chooses the classifier or fusion strategy)
    against each fixed candidate of the same pipeline, scored on the same outer folds.

    ``cost`` is the mean over outer folds (every repeat) of the paired difference of the
    primary metric (ROC AUC, or the C-index for survival), selected minus fixed: negative
    when choosing among the candidates did worse than fixing this one in advance. Its 95 %
    CI and p-value are the corrected resampled t-test's (Nadeau & Bengio 2003), since the
    folds share training patients. ``selected`` and ``fixed`` are the two fold means.
    ``metrics`` are the models' metrics.json contents (:func:`radiotx.report.load_metrics`).
    """
    by_model = {(m["endpoint"], m["pipeline"], m["classifier"]): m for m in metrics}
    rows = []
    for (endpoint, pipeline, model), chosen in by_model.items():
        if model != selected:
            continue
        metric = chosen.get("primary_metric", "roc_auc")
        own = _per_fold(chosen, metric)
        for (e, p, candidate), fixed in sorted(by_model.items()):
            if (e, p) != (endpoint, pipeline) or candidate == selected:
                continue
            theirs = _per_fold(fixed, metric)
            folds = sorted(set(own) & set(theirs))
            diff = [own[k][0] - theirs[k][0] for k in folds]
            n_test = float(np.mean([own[k][1] for k in folds]))
            n_train = float(np.mean([own[k][2] for k in folds]))
            low, high = evaluate.corrected_t_ci(diff, n_test, n_train, bounds=(-1.0, 1.0))
            rows.append(
                {
                    "endpoint": endpoint, "pipeline": pipeline, "candidate": candidate,
                    "metric": metric, "folds": len(folds),
                    "selected": float(np.mean([own[k][0] for k in folds])),
                    "fixed": float(np.mean([theirs[k][0] for k in folds])),
                    "cost": float(np.mean(diff)), "ci_low": low, "ci_high": high,
                    "t_p": corrected_t_test(diff, n_test, n_train),
                }
            )  # fmt: skip
    return pd.DataFrame(rows, columns=SELECTION_COLUMNS)


def _per_fold(model: dict, metric: str) -> dict[tuple[int, int], tuple[float, int, int]]:
    """(repeat, fold) -> the fold's metric, test and training sizes, for folds scored."""
    out = {}
    for record in model["folds"]:
        value = record.get(metric)
        if value is not None and np.isfinite(value):
            key = (int(record.get("repeat", 0)), int(record["fold"]))
            out[key] = (float(value), int(record["n_test"]), int(record["n_train"]))
    return out


def selection_cost_markdown(table: pd.DataFrame) -> str:
    """The selection-cost section of one endpoint's summary (rows of one endpoint)."""
    from radiotx.report import MISSING, pipe_table

    def number(value) -> str:
        return MISSING if not np.isfinite(value) else f"{value:+.3f}"

    rows = [
        [
            r.pipeline, r.candidate, r.folds, f"{r.selected:.3f}", f"{r.fixed:.3f}",
            f"{number(r.cost)} [{number(r.ci_low)}, {number(r.ci_high)}]",
            MISSING if not np.isfinite(r.t_p) else f"{r.t_p:.3f}",
        ]
        for r in table.itertuples()
    ]  # fmt: skip
    metric = "C-index" if set(table["metric"]) == {"c_index"} else "AUC"
    header = [
        "Pipeline", "Fixed candidate", "Outer folds", f"selected ({metric}, fold mean)",
        f"fixed ({metric}, fold mean)", "Cost of selection [95 % CI]", "p (corrected t)",
    ]  # fmt: skip
    intro = (
        "The `selected` model against each candidate fixed in advance, on the same outer "
        "folds: the mean paired difference selected minus fixed (negative: the inner CV's "
        "choice cost that much), with the corrected resampled t interval."
    )
    return "\n\n".join(["### Cost of model selection", intro, pipe_table(header, rows)])
