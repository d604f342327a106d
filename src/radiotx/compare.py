"""Paired comparison of models on identical outer folds: fusion strategies against
single-modality baselines, by DeLong's test on the pooled out-of-fold predictions and by
the corrected resampled t-test on per-fold AUCs, Holm-adjusted; AUC by modality
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


def delong(y_true, score_a, score_b) -> dict[str, float]:
    """DeLong, DeLong & Clarke-Pearson (1988) test of two correlated AUCs on the same
    patients, with the midrank algorithm of Sun & Xu (2014): AUCs, their difference, its
    standard error and the two-sided p-value."""
    y = np.asarray(y_true).astype(bool)
    scores = np.vstack([np.asarray(score_a, float), np.asarray(score_b, float)])
    pos, neg = scores[:, y], scores[:, ~y]
    m, n = pos.shape[1], neg.shape[1]
    if m < 2 or n < 2:
        raise ValueError("DeLong's test needs at least two patients of each class")
    tx = np.array([_midranks(p) for p in pos])
    ty = np.array([_midranks(q) for q in neg])
    tz = np.array([_midranks(s) for s in np.hstack([pos, neg])])
    auc = (tz[:, :m].sum(axis=1) / m - (m + 1) / 2) / n
    v01 = (tz[:, :m] - tx) / n  # structural components of the positives
    v10 = 1.0 - (tz[:, m:] - ty) / m  # and of the negatives
    cov = np.cov(v01) / m + np.cov(v10) / n
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
    corrected t-test on the per-fold AUC differences of every repeat."""
    keys = ["patient_id", "repeat", "fold", "y_true"]
    both = a[keys + ["score"]].merge(b[keys + ["score"]], on=keys, suffixes=("_a", "_b"))
    if both.empty:
        raise ValueError("the two models share no scored patient")
    tests = [
        delong(part["y_true"], part["score_a"], part["score_b"])
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
    """AUC of every model per modality-availability pattern of its patients (pooled over
    folds, averaged over repeats); a pattern with one class only has no AUC."""
    have = availability.astype(bool)
    pattern = have.apply(lambda row: "+".join(c for c in have.columns if row[c]) or "none", axis=1)
    rows = []
    for (pipeline, model), frame in predictions.items():
        frame = frame.assign(pattern=frame["patient_id"].map(pattern).fillna("unknown"))
        for name, part in frame.groupby("pattern"):
            repeats = evaluate.by_repeat(part)
            first = repeats[0]
            auc = (
                float(np.mean([roc_auc_score(r["y_true"], r["score"]) for r in repeats]))
                if first["y_true"].nunique() == 2
                else float("nan")
            )
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
