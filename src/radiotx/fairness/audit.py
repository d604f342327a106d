"""The fairness audit of a study: the cohort by subgroup and its covariate shift, then
every binary and survival endpoint's models by subgroup, beside their mitigations.

The tables are written as they are (TSV) and summarised in Markdown for the study report.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import matplotlib
import numpy as np
import pandas as pd

from radiotx import cohort, evaluate, splits
from radiotx.fairness import performance, shift, subgroups, survival_performance

matplotlib.use("Agg")
from matplotlib import pyplot as plt  # noqa: E402

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    """Config ``fairness`` (see config/config.yaml)."""

    shift: tuple[str, ...] = ()
    min_group: int = 5
    permutations: int = 99
    bootstrap: int = 200
    mitigate: str = ""  # the mitigated attribute
    seed: int = 42
    columns: tuple[tuple[str, str], ...] = ()  # (attribute, its clinical column)

    @classmethod
    def from_config(cls, fairness: dict, seed: int = 42) -> Settings:
        return cls(
            tuple(fairness["shift"]),
            fairness["min_group"],
            fairness["permutations"],
            fairness["bootstrap"],
            fairness["mitigate"]["attribute"],
            seed,
            tuple((a.name, a.column) for a in subgroups.attributes_from_config(fairness)),
        )


# ------------------------------------------------------------------------------- cohort


def comparisons(groups: pd.DataFrame, folds: dict[str, pd.DataFrame], s: Settings):
    """(name, boolean Series over patients) of every comparison of the shift tests: each
    group of a shift attribute against the rest, and each endpoint's development set
    against its hold-out set."""
    for attribute in s.shift:
        values = groups[attribute]
        names = sorted(set(values.unique()) - {subgroups.MISSING})
        for group in names[:1] if len(names) == 2 else names:  # two groups: one comparison
            yield f"{attribute}: {group} vs rest", values.loc[values != subgroups.MISSING] == group
    for endpoint, table in folds.items():
        locked = splits.holdout_patients(table)
        if locked:
            develop = splits.development_patients(table)
            side = pd.Series(False, index=pd.Index(develop + locked, dtype=str))
            side[locked] = True
            yield f"{endpoint}: hold-out vs development", side


def _features(mdata, modality: str, column: str | None) -> pd.DataFrame:
    """A modality's features; in the clinical modality, not those of the attribute's own
    ``column`` (a site's indicator trivially differs between sites)."""
    frame = cohort.modality_frame(mdata, modality)
    if modality == "clinical" and column:
        own = [c for c in frame.columns if c == column or c.startswith(f"{column}=")]
        frame = frame.drop(columns=own)
    return frame


def shift_tables(mdata, groups: pd.DataFrame, folds: dict[str, pd.DataFrame], s: Settings):
    """Per comparison and modality: the per-feature tests (with FDR) and the classifier
    two-sample test, on the patients who have that modality."""
    feature_tables, classifier_rows = [], []
    for name, side in comparisons(groups, folds, s):
        column = dict(s.columns).get(name.split(":")[0])  # None: development vs hold-out
        for modality in mdata.mod:
            X = _features(mdata, modality, column)
            patients = X.index.intersection(side.index)
            a, b = int(side[patients].sum()), int((~side[patients]).sum())
            if min(a, b) < s.min_group or X.shape[1] == 0:
                log.info("%s / %s: %d vs %d patients, not compared", name, modality, a, b)
                continue
            features, test = shift.compare(
                X.loc[patients], side[patients], name=name, n_permutations=s.permutations,
                seed=s.seed,
            )  # fmt: skip
            features.insert(1, "modality", modality)
            feature_tables.append(features)
            classifier_rows.append({"comparison": name, "modality": modality, **test})
    if not feature_tables:  # nothing compared: the tables keep their columns
        empty = pd.DataFrame({"comparison": []}, dtype=str)
        return empty.assign(modality=""), empty.assign(modality="")
    return pd.concat(feature_tables, ignore_index=True), pd.DataFrame(classifier_rows)


def cohort_markdown(table: pd.DataFrame, features: pd.DataFrame, classifier: pd.DataFrame, s):
    from radiotx.report import pipe_table

    lines = ["## Fairness: the cohort by subgroup", ""]
    columns = [c for c in table.columns if c not in ("attribute", "group")]
    rows = [
        [r["attribute"], r["group"], *[_cell(c, r[c]) for c in columns]]
        for _, r in table.iterrows()
    ]
    lines += [pipe_table(["attribute", "group", *columns], rows), ""]
    notes = subgroups.flags(table, s.min_group)
    lines += [f"- {note}" for note in notes] or ["- no group differs by more than 15 points"]
    lines += ["", "## Covariate shift", ""]
    if classifier.empty:
        lines.append("No comparison had enough patients on both sides.")
        return "\n".join(lines) + "\n"
    rows = []
    for _, r in classifier.iterrows():
        part = features[(features["comparison"] == r["comparison"])]
        part = part[part["modality"] == r["modality"]]
        top = part[part["shifted"]].head(3)["feature"].tolist()
        flagged = r["p_value"] <= 0.05 or r["n_shifted"] > 0
        rows.append(
            [
                r["comparison"], r["modality"], f"{r['n_a']} / {r['n_b']}",
                f"{r['n_shifted']} of {r['n_tested']}", ", ".join(top) or "-",
                f"{r['auc']:.2f}", f"{r['p_value']:.3f}", "**shift**" if flagged else "",
            ]
        )  # fmt: skip
    header = ["comparison", "modality", "patients", "features shifted (FDR 5 %)",
              "most shifted", "classifier AUC", "p", ""]  # fmt: skip
    lines += [pipe_table(header, rows), ""]
    lines.append(
        "Features: Kolmogorov-Smirnov (numeric) or chi-square (categorical) tests with "
        "Benjamini-Hochberg FDR. Classifier: cross-validated AUC of a logistic regression "
        f"telling the two sides apart, p from {s.permutations} label permutations."
    )
    return "\n".join(lines) + "\n"


def left_out_markdown(folds: dict[str, pd.DataFrame], groups: pd.DataFrame, attribute: str):
    """Which site each outer fold of a leave-one-site-out study leaves out."""
    lines = [f"## Leave-one-{attribute}-out folds", ""]
    rows = []
    for endpoint, table in folds.items():
        development = table[table["set"] == splits.DEVELOPMENT]
        site = development["patient_id"].map(groups[attribute])
        for fold, members in site.groupby(development["fold"].to_numpy()):
            rows.append([endpoint, int(fold), members.iloc[0], len(members),
                         int((~development.index.isin(members.index)).sum())])  # fmt: skip
    from radiotx.report import pipe_table

    header = ["endpoint", "outer fold", f"{attribute} left out", "test patients",
              "training patients"]  # fmt: skip
    return "\n".join([*lines, pipe_table(header, rows), ""])


def _cell(column: str, value) -> str:
    if column.startswith(("prevalence_", "missing_")) or column == "share":
        return "-" if pd.isna(value) else f"{value:.0%}"
    return str(value)


# ------------------------------------------------------------------------------- models


def model_tables(predictions: dict, groups: pd.DataFrame, s: Settings):
    """Subgroup metrics and gaps of every model (binary or survival endpoints), by every
    attribute. ``predictions`` maps (endpoint, pipeline, model) to its out-of-fold
    predictions."""
    metrics, gaps = [], []
    for (endpoint, pipeline, model), table in predictions.items():
        if "event" in table:  # a survival endpoint: C-index per group
            per_group, disparity = survival_performance.survival_summary(
                table, groups, n_boot=s.bootstrap, seed=s.seed, min_group=s.min_group
            )
        else:
            probability = bool(table["score"].between(0, 1).all())
            per_group, disparity = performance.fairness_summary(
                table, groups, n_boot=s.bootstrap, seed=s.seed, probability=probability,
                min_group=s.min_group,
            )  # fmt: skip
        key = {"endpoint": endpoint, "pipeline": pipeline, "model": model}
        metrics.append(per_group.assign(**key))
        gaps.append(disparity.assign(**key))
    first = ["endpoint", "pipeline", "model"]
    metrics = pd.concat(metrics, ignore_index=True) if metrics else pd.DataFrame(columns=first)
    gaps = pd.concat(gaps, ignore_index=True) if gaps else pd.DataFrame(columns=first)
    order = lambda t: t[first + [c for c in t.columns if c not in first]]  # noqa: E731
    return order(metrics), order(gaps)


TRADEOFF = ("roc_auc", "balanced_accuracy", "sensitivity", "specificity")
GAPS = ("equalized_odds_difference", "demographic_parity_difference")


def mitigation_table(
    predictions: dict, mitigated: dict, groups: pd.DataFrame, s: Settings
) -> pd.DataFrame:
    """Accuracy and fairness of each mitigated model beside the model itself ("none"), on
    the same outer test folds, by the mitigated attribute. ``mitigated`` maps (endpoint,
    pipeline, model) to {method: predictions, or the reason it did not run}."""
    rows = []
    for key, methods in mitigated.items():
        if key not in predictions:
            continue
        for method, table in {"none": predictions[key], **methods}.items():
            row = dict(zip(("endpoint", "pipeline", "model"), key, strict=True))
            row["method"] = method
            if isinstance(table, str):
                rows.append({**row, "note": table})
                continue
            values = evaluate.metrics(table["y_true"], table["score"], table["y_pred"])
            row.update({m: values[m] for m in TRADEOFF})
            gaps = performance.disparities(
                table, groups[s.mitigate], attribute=s.mitigate, n_boot=s.bootstrap,
                seed=s.seed, min_group=s.min_group,
            ).set_index("metric")  # fmt: skip
            for gap in GAPS:
                row[gap] = gaps.loc[gap, "value"]
                row[f"{gap}_low"] = gaps.loc[gap, "low"]
                row[f"{gap}_high"] = gaps.loc[gap, "high"]
            rows.append({**row, "note": ""})
    return pd.DataFrame(rows, columns=MITIGATION_COLUMNS)


MITIGATION_COLUMNS = [
    "endpoint", "pipeline", "model", "method", *TRADEOFF,
    *[f"{gap}{end}" for gap in GAPS for end in ("", "_low", "_high")], "note",
]  # fmt: skip


def plot_tradeoff(table: pd.DataFrame, path, attribute: str) -> None:
    """Balanced accuracy against the equalised-odds gap, one panel per (endpoint,
    pipeline, model): each mitigation beside the model itself."""
    keys = []
    if "balanced_accuracy" in table:
        done = table.dropna(subset=["balanced_accuracy"])
        keys = list(done.groupby(["endpoint", "pipeline", "model"], sort=False).groups)
    n = max(len(keys), 1)
    fig, axes = plt.subplots(1, n, figsize=(4 * n, 3.6), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=False):
        part = done.set_index(["endpoint", "pipeline", "model"]).loc[key]
        gap = part["equalized_odds_difference"].to_numpy(dtype=float)
        err = np.abs(
            np.vstack(
                [
                    gap - part["equalized_odds_difference_low"],
                    part["equalized_odds_difference_high"] - gap,
                ]
            )  # fmt: skip
        )
        ax.errorbar(gap, part["balanced_accuracy"], xerr=err, fmt="none", ecolor="0.7")
        for method, x, y in zip(part["method"], gap, part["balanced_accuracy"], strict=True):
            ax.scatter(x, y, s=40, zorder=3)
            ax.annotate(method, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set(xlabel=f"equalised-odds gap ({attribute})", ylabel="balanced accuracy")
        ax.set_title(" / ".join(key), fontsize=9)
    if not keys:
        axes[0][0].text(0.5, 0.5, "no mitigated model", ha="center", va="center")
        axes[0][0].set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def headline_groups(metrics: pd.DataFrame) -> pd.DataFrame:
    """The per-group metrics of each pipeline's headline model (``selected``, or its only
    model), one row per attribute and group."""
    if metrics.empty:
        return metrics
    keys = ["endpoint", "pipeline"]
    models = metrics.groupby(keys)["model"].agg(
        lambda m: "selected" if "selected" in set(m) else m.iloc[0] if m.nunique() == 1 else None
    )
    keep = metrics.join(models.rename("headline"), on=keys)
    return keep[keep["model"] == keep["headline"]].drop(columns="headline")


def _group_rows(metrics: pd.DataFrame) -> list[list]:
    from radiotx.report import format_ci

    rows = []
    index = ["endpoint", "pipeline", "model", "attribute", "group"]
    for key, part in headline_groups(metrics).groupby(index, sort=False):
        cells = part.set_index("metric")[["value", "low", "high"]]
        if key[-1] == performance.OVERALL or "roc_auc" not in cells.index:
            continue
        shown = ("roc_auc", "sensitivity", "specificity", "calibration_intercept")
        rows.append(
            [*key, int(cells.loc["n", "value"]), *[format_ci(*cells.loc[m]) for m in shown]]
        )
    return rows


def _survival_rows(metrics: pd.DataFrame) -> list[list]:
    from radiotx.report import format_ci

    rows = []
    index = ["endpoint", "pipeline", "model", "attribute", "group"]
    for key, part in headline_groups(metrics).groupby(index, sort=False):
        cells = part.set_index("metric")[["value", "low", "high"]]
        if key[-1] == performance.OVERALL or "c_index" not in cells.index:
            continue
        rows.append(
            [*key, int(cells.loc["n", "value"]), int(cells.loc["events", "value"]),
             format_ci(*cells.loc["c_index"])]
        )  # fmt: skip
    return rows


def models_markdown(
    gaps: pd.DataFrame, mitigation: pd.DataFrame, s: Settings, metrics: pd.DataFrame | None = None
) -> str:
    from radiotx.report import format_ci, pipe_table

    lines = ["## Fairness: subgroup performance", ""]
    if gaps.empty:
        return "\n".join(lines + ["No binary or survival endpoint's model was audited.", ""])
    if metrics is not None and not metrics.empty:
        lines.append(
            "Each pipeline's headline model per group, on its out-of-fold predictions (95 % "
            "CI from resampling within the group); calibration-in-the-large is the mean "
            "predicted risk minus the observed rate (0: right on average)."
        )
        header = ["endpoint", "pipeline", "model", "attribute", "group", "n", "AUC",
                  "sensitivity", "specificity", "calibration-in-the-large"]  # fmt: skip
        binary, survival = _group_rows(metrics), _survival_rows(metrics)
        if binary:
            lines += ["", pipe_table(header, binary), ""]
        if survival:
            header = ["endpoint", "pipeline", "model", "attribute", "group", "n", "events",
                      "C-index"]  # fmt: skip
            lines += ["", pipe_table(header, survival), ""]
    lines.append(
        "Gaps between the subgroups (of at least "
        f"{s.min_group} patients) of each attribute, on the out-of-fold predictions; 95 % "
        f"CI from {s.bootstrap} patient resamples. Equalised odds: the larger of the "
        "true- and false-positive-rate gaps; demographic parity: the gap in the share "
        "predicted positive. A gap is a largest-minus-smallest difference, which "
        "resampling inflates: its percentile CI can lie above a small estimate. Per-group "
        "AUC, sensitivity, specificity and calibration: results/fairness/subgroup_metrics.tsv."
    )
    lines.append("")
    wide = gaps[gaps["metric"].isin([*GAPS, "auc_difference", "c_index_difference"])]
    rows = []
    for key, part in wide.groupby(["endpoint", "pipeline", "model", "attribute"], sort=False):
        cells = part.set_index("metric")
        first = "auc_difference" if "auc_difference" in cells.index else "c_index_difference"
        rows.append(
            [*key, *[format_ci(*cells.loc[m, ["value", "low", "high"]]) if m in cells.index
                     else "-" for m in (first, *GAPS)]]
        )  # fmt: skip
    header = ["endpoint", "pipeline", "model", "attribute", "AUC (C-index) gap",
              "equalised-odds gap", "demographic-parity gap"]  # fmt: skip
    lines += [pipe_table(header, rows), ""]
    if mitigation is not None and not mitigation.empty:
        lines += ["## Fairness: mitigation, accuracy against fairness", ""]
        lines.append(
            f"Each mitigation fitted on the training patients of every outer fold and "
            f'scored on its test patients, by {s.mitigate}; "none" is the model itself.'
        )
        lines.append("")
        rows = []
        for _, r in mitigation.iterrows():
            if r.get("note"):
                rows.append([r["endpoint"], r["pipeline"], r["model"], r["method"],
                             "-", "-", "-", r["note"]])  # fmt: skip
                continue
            rows.append(
                [
                    r["endpoint"], r["pipeline"], r["model"], r["method"],
                    f"{r['roc_auc']:.3f}", f"{r['balanced_accuracy']:.3f}",
                    format_ci(r["equalized_odds_difference"],
                              r["equalized_odds_difference_low"],
                              r["equalized_odds_difference_high"]),
                    format_ci(r["demographic_parity_difference"],
                              r["demographic_parity_difference_low"],
                              r["demographic_parity_difference_high"]),
                ]
            )  # fmt: skip
        header = ["endpoint", "pipeline", "model", "method", "AUC", "balanced accuracy",
                  "equalised-odds gap", "demographic-parity gap"]  # fmt: skip
        lines += [pipe_table(header, rows), ""]
    return "\n".join(lines) + "\n"
