"""Figures and summary tables for the evaluated models (no tracking-server dependency)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from radiotx.metrics import METRICS

ID_COLUMNS = ("endpoint", "pipeline", "classifier")
_SUFFIXES = ("", "_mean", "_sd", "_ci_low", "_ci_high")
MISSING = "n/a"
LABELS = {"roc_auc": "AUC", "c_index": "C-index"}


def load_metrics(model_dirs: Iterable[str | Path]) -> list[dict]:
    """Read ``metrics.json`` from each model directory (a path to the file itself also works)."""
    out = []
    for entry in model_dirs:
        path = Path(entry)
        if path.is_dir():
            path = path / "metrics.json"
        metrics = json.loads(path.read_text(encoding="utf-8"))
        test = path.parent / "permutation.json"
        if test.exists():  # written by the permutation test of this model, when run
            metrics["permutation"] = json.loads(test.read_text(encoding="utf-8"))
        holdout = path.parent / "holdout.json"
        if holdout.exists():  # the locked hold-out set, when the study has one
            metrics["holdout"] = json.loads(holdout.read_text(encoding="utf-8"))
        out.append(metrics)
    return out


# --------------------------------------------------------------------------- figures


def _save(fig: Figure, path: str | Path) -> None:
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, format="png")
    fig.clear()


def plot_learning_curve(table: pd.DataFrame, path: str | Path, title: str = "") -> None:
    """Save the learning curve (score against mean training size, a line per model)."""
    fig = Figure(figsize=(5.5, 4.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for model, part in table.sort_values("n_train").groupby("model", sort=True):
        ax.plot(part["n_train"], part["score"], marker="o", label=model)
    metric = table["metric"].iloc[0] if len(table) else "roc_auc"
    ax.axhline(0.5, ls="--", lw=1, color="grey", label="chance")
    ax.set(xlabel="training patients per outer fold", ylabel=LABELS.get(metric, metric))
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize="small")
    _save(fig, path)


QC_PANELS = {  # metric -> (threshold, axis label, log scale)
    "library_size": ("min_library_size", "library size (reads)", True),
    "detected_genes": ("min_detected_genes", "detected genes", False),
    "pct_mito": ("max_pct_mito", "mitochondrial reads (%)", False),
    "pct_ribo": ("max_pct_ribo", "ribosomal reads (%)", False),
}
QC_COLOURS = {"ok": "tab:blue", "excluded": "tab:orange", "error": "tab:red"}


def plot_rnaseq_qc(table: pd.DataFrame, thresholds: dict | None, path: str | Path) -> None:
    """One strip per QC metric (a dot per sample, in sheet order), its threshold dashed,
    samples coloured by QC status. Metrics absent from the table are left out."""
    thresholds = thresholds or {}
    panels = [m for m in QC_PANELS if m in table.columns and table[m].notna().any()]
    fig = Figure(figsize=(3.2 * max(len(panels), 1), 3.4))
    FigureCanvasAgg(fig)
    status = table["status"].fillna("error") if "status" in table else pd.Series("ok", table.index)
    for i, metric in enumerate(panels):
        limit_name, label, log = QC_PANELS[metric]
        ax = fig.add_subplot(1, len(panels), i + 1)
        jitter = np.random.default_rng(0).uniform(-0.25, 0.25, len(table))
        for name, colour in QC_COLOURS.items():
            rows = (status == name).to_numpy()
            if rows.any():
                ax.scatter(jitter[rows], table.loc[rows, metric], s=12, color=colour, label=name)
        limit = thresholds.get(limit_name)
        if limit is not None:
            ax.axhline(limit, ls="--", color="black", lw=1, label=limit_name)
        if log:
            ax.set_yscale("log")
        ax.set(xticks=[], xlim=(-0.6, 0.6), ylabel=label)
        ax.set_title(f"{metric} (n={int(table[metric].notna().sum())})", fontsize="small")
        if i == 0:
            ax.legend(fontsize="x-small", loc="best")
    _save(fig, path)


# --------------------------------------------------------------------------- summary table


def _num(value) -> float:
    """Float, with None (JSON null) mapped to NaN."""
    return float("nan") if value is None else float(value)


def _summary_row(m: dict) -> dict:
    row = {key: m[key] for key in ID_COLUMNS}
    row["modalities"] = ",".join(m.get("modalities") or [])
    row["n_patients"] = m.get("n_patients")
    row["n_positive"] = m.get("n_positive", m.get("n_events"))  # events, for survival
    row["metric"] = m.get("primary_metric", "roc_auc")
    row["permutation_p"] = _num((m.get("permutation") or {}).get("p_value"))
    holdout = m.get("holdout") or {}
    row["holdout_n"] = holdout.get("n_patients")
    row["holdout_roc_auc"] = _num((holdout.get("metrics") or {}).get("roc_auc"))
    h_low, h_high = (holdout.get("ci95") or {}).get("roc_auc") or (None, None)
    row["holdout_roc_auc_ci_low"], row["holdout_roc_auc_ci_high"] = _num(h_low), _num(h_high)
    t_low, t_high = (m.get("ci95_t") or {}).get("roc_auc") or (None, None)
    row["roc_auc_t_ci_low"], row["roc_auc_t_ci_high"] = _num(t_low), _num(t_high)
    c_low, c_high = (m.get("ci95_t") or {}).get("c_index") or (None, None)
    row["c_index_t_ci_low"], row["c_index_t_ci_high"] = _num(c_low), _num(c_high)
    for metric in (*METRICS, "c_index"):
        lo, hi = (m.get("ci95") or {}).get(metric) or (None, None)
        row[metric] = _num((m.get("pooled") or {}).get(metric))
        row[f"{metric}_mean"] = _num((m.get("mean") or {}).get(metric))
        row[f"{metric}_sd"] = _num((m.get("sd") or {}).get(metric))
        row[f"{metric}_ci_low"] = _num(lo)
        row[f"{metric}_ci_high"] = _num(hi)
    return row


def headline_models(metrics: list[dict]) -> list[dict]:
    """The model reported for each endpoint and pipeline: its ``selected`` model, or its
    only one (a pipeline with several models and no ``selected`` has none)."""
    by_pair: dict[tuple, list[dict]] = {}
    for m in metrics:
        by_pair.setdefault((m["endpoint"], m["pipeline"]), []).append(m)
    out = []
    for models in by_pair.values():
        chosen = [m for m in models if m["classifier"] == "selected"] or models[:1]
        if chosen[0]["classifier"] == "selected" or len(models) == 1:
            out.append(chosen[0])
    return sorted(out, key=lambda m: (m["endpoint"], m["pipeline"]))


def summary_table(metrics: list[dict]) -> pd.DataFrame:
    """One row per model, ranked within endpoint by pooled ROC AUC (ties: balanced
    accuracy), or by C-index for survival endpoints."""
    rows = [_summary_row(m) for m in metrics]
    columns = ["endpoint", "rank", "pipeline", "classifier", "metric", "modalities", "n_patients"]
    columns += ["n_positive", "permutation_p"] + [f"{m}{s}" for m in METRICS for s in _SUFFIXES]
    columns += ["roc_auc_t_ci_low", "roc_auc_t_ci_high"]
    columns += [f"c_index{s}" for s in _SUFFIXES] + ["c_index_t_ci_low", "c_index_t_ci_high"]
    columns += ["holdout_n", "holdout_roc_auc", "holdout_roc_auc_ci_low", "holdout_roc_auc_ci_high"]
    if not rows:
        return pd.DataFrame(columns=columns)
    table = pd.DataFrame(rows)
    table["_score"] = table["roc_auc"].fillna(table["c_index"])
    # Names as final keys keep the order reproducible when scores tie exactly.
    table = table.sort_values(
        ["endpoint", "_score", "balanced_accuracy", "pipeline", "classifier"],
        ascending=[True, False, False, True, True],
        na_position="last",
        kind="mergesort",
    ).reset_index(drop=True)
    table["rank"] = table.groupby("endpoint").cumcount() + 1
    return table[columns]


# --------------------------------------------------------------------------- markdown


def _fmt(value) -> str:
    return MISSING if value is None or math.isnan(value) else f"{value:.2f}"


def format_ci(value, low, high) -> str:
    """``0.81 [0.72, 0.89]``; the bracket is dropped when the interval is unavailable."""
    if any(v is None or math.isnan(v) for v in (low, high)):
        return _fmt(value)
    return f"{_fmt(value)} [{_fmt(low)}, {_fmt(high)}]"


def format_interval(low, high) -> str:
    """`` [0.72, 0.89]``, or nothing when the interval is unavailable."""
    if any(v is None or math.isnan(v) for v in (low, high)):
        return ""
    return f" [{_fmt(low)}, {_fmt(high)}]"


def format_mean_sd(mean, sd) -> str:
    """``0.80 ± 0.05``."""
    if sd is None or math.isnan(sd):
        return _fmt(mean)
    return f"{_fmt(mean)} ± {_fmt(sd)}"


def _cell(value) -> str:
    if value is None:
        return MISSING
    # A literal pipe would split the markdown cell.
    return str(value).replace("|", "\\|")


def pipe_table(header: list[str], rows: list[list]) -> str:
    """GitHub-flavoured markdown pipe table."""
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |"]
    lines.append("|" + "|".join("---" for _ in header) + "|")
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


_MD_HEADER = [
    "Rank",
    "Pipeline",
    "Classifier",
    "n",
    "n positive",
    "AUC [95 % CI]",
    "AUC mean ± SD [corrected t CI]",
    "Permutation p",
    "Balanced accuracy",
    "Sensitivity",
    "Specificity",
]

_MD_INTRO = (
    "Models are ranked within each endpoint by the pooled out-of-fold ROC AUC of nested "
    "cross-validation: every patient is scored once, by a model tuned and fitted without them, "
    "and the AUC compares the patients of the same outer fold (each fold's scores are its own "
    "model's, an SVM's decision values in one fold, probabilities in another). "
    "Brackets give the 95 % bootstrap confidence interval over patients; *mean ± SD* is taken "
    "across the outer folds and shows how much performance varies between data splits; its "
    "interval is the corrected resampled t-test's, which allows for the training patients "
    "the folds share. "
    "Balanced accuracy, sensitivity and specificity are pooled out-of-fold values with their "
    "bootstrap intervals. *Permutation p* (when the test ran) is the share of label "
    "permutations, each re-running the whole procedure, that scored at least as well. "
    "With repeated outer CV the pooled metrics are averaged over the repeats. *Hold-out "
    "AUC* (when the study locks a hold-out set) is the final model's, scored once on "
    "patients that no step of model development saw. Survival endpoints are ranked by "
    "Harrell's C-index of the out-of-fold risks within each outer fold (0.5 = chance); "
    "*n events* counts the "
    "uncensored patients."
)


def _markdown_row(r: pd.Series, holdout: bool = False) -> list:
    def ci(metric):
        return format_ci(r[metric], r[f"{metric}_ci_low"], r[f"{metric}_ci_high"])

    extra = [ci("holdout_roc_auc"), r["holdout_n"]] if holdout else []
    return [
        r["rank"],
        r["pipeline"],
        r["classifier"],
        r["n_patients"],
        r["n_positive"],
        ci("roc_auc"),
        format_mean_sd(r["roc_auc_mean"], r["roc_auc_sd"])
        + format_interval(r["roc_auc_t_ci_low"], r["roc_auc_t_ci_high"]),
        MISSING if math.isnan(r["permutation_p"]) else f"{r['permutation_p']:.3f}",
        ci("balanced_accuracy"),
        ci("sensitivity"),
        ci("specificity"),
        *extra,
    ]


_MD_SURVIVAL_HEADER = [
    "Rank",
    "Pipeline",
    "Model",
    "n",
    "n events",
    "C-index [95 % CI]",
    "C-index mean ± SD [corrected t CI]",
    "Permutation p",
]


def _markdown_survival_row(r: pd.Series) -> list:
    return [
        r["rank"],
        r["pipeline"],
        r["classifier"],
        r["n_patients"],
        r["n_positive"],
        format_ci(r["c_index"], r["c_index_ci_low"], r["c_index_ci_high"]),
        format_mean_sd(r["c_index_mean"], r["c_index_sd"])
        + format_interval(r["c_index_t_ci_low"], r["c_index_t_ci_high"]),
        MISSING if math.isnan(r["permutation_p"]) else f"{r['permutation_p']:.3f}",
    ]


SELECTED = "selected"  # models.SELECTED: the classifier is chosen by the inner CV


def optimism_note(group: pd.DataFrame) -> str | None:
    """What a reader must know before reading the best row of a table of many models."""
    if len(group) < 2:
        return None
    best = group.sort_values("rank").iloc[0]
    metric = best["metric"]
    note = (
        f"**The best of these {len(group)} rows is optimistic**: choosing the best of many "
        "pipelines by their outer-fold scores is itself a fit to those patients, and the "
        f"top row ({best['pipeline']} / {best['classifier']}, {LABELS[metric]} "
        f"{_fmt(best[metric])}) would score lower on new patients."
    )
    honest = group[group["classifier"] == SELECTED]
    if len(honest):
        cells = ", ".join(
            f"{r['pipeline']}: "
            + format_ci(r[metric], r[f"{metric}_ci_low"], r[f"{metric}_ci_high"])
            for _, r in honest.sort_values("pipeline").iterrows()
        )
        note += (
            " The honest estimate of the whole procedure is the *selected* model, whose inner "
            f"CV also chose the classifier in every outer fold: {cells}."
        )
    sizes = group["n_patients"]
    if sizes.nunique() > 1:
        # a modality missing for some patients: a fusion scores them all, that modality's
        # pipeline only those who have it, so their rows are not a comparison
        note += (
            f" The rows cover different patients (n = {sizes.min()} to {sizes.max()}: a "
            "modality is missing for some); compare a fusion with a single modality on the "
            "patients both scored, as the fusion comparison does."
        )
    return note


_MD_COMPARISON_HEADER = [
    "Fusion",
    "Baseline",
    "n",
    "AUC fusion",
    "AUC baseline",
    "Difference",
    "DeLong p (Holm)",
    "Corrected t p (Holm)",
]


def _p(value) -> str:
    if value is None or math.isnan(value):
        return MISSING
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def comparison_markdown(tests: pd.DataFrame, contributions: pd.DataFrame | None = None) -> str:
    """The fusion comparison of one endpoint (tables of :mod:`radiotx.compare`): each
    fusion model against each single-modality baseline on the patients both scored, and
    the mean weight and block permutation importance of each modality."""
    rows = [
        [
            f"{r.pipeline} / {r.model}",
            r.baseline,
            r.n_patients,
            _fmt(r.auc_a),
            _fmt(r.auc_b),
            f"{r.diff:+.2f}",
            _p(r.delong_p_holm),
            _p(r.t_p_holm),
        ]  # fmt: skip
        for r in tests.itertuples()
    ]
    parts = ["### Fusion against single modalities", pipe_table(_MD_COMPARISON_HEADER, rows)]
    if contributions is not None and not contributions.empty:
        rows = [
            [f"{r.pipeline} / {r.model}", r.modality, _fmt(r.weight), f"{r.importance:+.3f}"]
            for r in contributions.itertuples()
        ]
        header = ["Fusion", "Modality", "Mean weight", "Block importance (AUC drop)"]
        parts += ["### Modality contributions", pipe_table(header, rows)]
    return "\n\n".join(parts)


_SHAP_INTRO = (
    "Mean absolute SHAP value of each explained model's top features over every "
    "out-of-fold patient (each outer fold's model explaining its own test patients, against "
    "a background of its training patients; a fold whose model did not use a feature counts "
    "0), and in how many outer folds the feature was among that fold's top features. "
    "*Top-k overlap* is the mean pairwise Jaccard index of the folds' top-k sets (1: the "
    "same features in every fold). Per-patient values and figures: "
    "`results/models/<endpoint>/<pipeline>/<model>/shap/`."
)


def shap_markdown(stabilities: dict[tuple[str, str], pd.DataFrame], top: int = 5) -> str:
    """The SHAP section of one endpoint: per explained model ((pipeline, model) -> its
    stability.tsv, see :func:`radiotx.explain.tabular.stability`), its ``top`` features
    with mean |SHAP| and folds in the top k, and the top-k overlap across folds."""
    rows = []
    for (pipeline, model), table in sorted(stabilities.items()):
        cells = [
            f"{r.feature} {r.mean_abs_shap:.3f} ({r.folds_in_top_k}/{r.n_folds})"
            for r in table.head(top).itertuples()
        ]
        overlap = _fmt(float(table["jaccard"].iloc[0])) if len(table) else MISSING
        rows.append([f"{pipeline} / {model}", "; ".join(cells) or MISSING, overlap])
    header = ["Model", "Top features: mean abs SHAP (folds in top k)", "Top-k overlap"]
    return "\n\n".join(["### Explanations (SHAP)", _SHAP_INTRO, pipe_table(header, rows)])


def shap_sections(paths: Iterable[str | Path], top: int = 5) -> dict[str, str]:
    """Endpoint -> its SHAP section, from the models' ``.../<endpoint>/<pipeline>/<model>/
    shap/stability.tsv`` files."""
    by_endpoint: dict[str, dict] = {}
    for path in map(Path, paths):
        endpoint, pipeline, model = path.parts[-5:-2]
        table = pd.read_csv(path, sep="\t")
        by_endpoint.setdefault(endpoint, {})[(pipeline, model)] = table
    return {e: shap_markdown(tables, top) for e, tables in sorted(by_endpoint.items())}


_IMAGE_INTRO = (
    "Attributions of a supervised image encoder trained in each outer fold on its training "
    "patients, for the positive class on its test patients. *ROI share of attribution*: the "
    "positive attribution inside the lesion mask (chance: the ROI's share of the crop). "
    "Sanity checks: the maps of a model with re-randomised weights must differ (Spearman "
    "rho below 0.5), and blanking the top-attributed voxels first must lower the predicted "
    "probability faster than blanking in random order (deletion AUC below random). "
    "Overlays and per-patient values: `results/explain/<endpoint>/deep/`."
)


def image_markdown(sanity: pd.DataFrame) -> str:
    """The image-explanation section of one endpoint, from its sanity.tsv (see
    :func:`radiotx.explain.images.summarise_sanity`)."""
    rows = [
        [
            r.method,
            f"{r.mass_in_roi:.3f} (chance {r.roi_share:.3f})",
            f"{r.randomisation_spearman:.2f} ({'passed' if r.randomisation_passed else 'FAILED'})",
            f"{r.deletion_auc:.3f} vs {r.deletion_auc_random:.3f} "
            f"({'passed' if r.deletion_passed else 'FAILED'})",
            str(int(r.n_patients)),
        ]
        for r in sanity.itertuples()
    ]
    header = [
        "Method", "ROI share of attribution", "Randomised-model rho", "Deletion AUC vs random",
        "Patients",
    ]  # fmt: skip
    return "\n\n".join(["### Image explanations", _IMAGE_INTRO, pipe_table(header, rows)])


def image_sections(paths: Iterable[str | Path]) -> dict[str, str]:
    """Endpoint -> its image-explanation section, from ``results/explain/<endpoint>/deep/
    sanity.tsv`` files."""
    return {Path(path).parts[-3]: image_markdown(pd.read_csv(path, sep="\t")) for path in paths}


def summary_markdown(
    table: pd.DataFrame,
    title: str = "Model performance summary",
    comparisons: dict[str, str] | None = None,
    appendix: str = "",
    explanations: dict[str, str] | None = None,
) -> str:
    """Markdown report: title, how to read it, one ranked table per endpoint, each with a
    warning about the optimism of its best row and, for a study with fusion pipelines, its
    ``comparisons`` section (endpoint -> markdown, see :func:`comparison_markdown`) and,
    when models are explained, its ``explanations`` (endpoint -> markdown, see
    :func:`shap_markdown`); then the ``appendix`` (the reporting checklist)."""
    comparisons, explanations = comparisons or {}, explanations or {}
    parts = [f"# {title}", _MD_INTRO]
    for endpoint, group in table.groupby("endpoint", sort=True):
        ranked = group.sort_values("rank")
        if (group["metric"] == "c_index").all():
            header = _MD_SURVIVAL_HEADER
            rows = [_markdown_survival_row(r) for _, r in ranked.iterrows()]
        else:
            holdout = group["holdout_roc_auc"].notna().any()
            rows = [_markdown_row(r, holdout) for _, r in ranked.iterrows()]
            header = _MD_HEADER + (["Hold-out AUC [95 % CI]", "Hold-out n"] if holdout else [])
        parts += [f"## {endpoint}", pipe_table(header, rows)]
        note = optimism_note(group)
        if note:
            parts.append(note)
        if endpoint in comparisons:
            parts.append(comparisons[endpoint])
        if endpoint in explanations:
            parts.append(explanations[endpoint])
    if table.empty:
        parts.append("_No models were evaluated._")
    if appendix:
        parts.append(appendix)
    return "\n\n".join(parts) + "\n"


def write_summary(
    table: pd.DataFrame,
    tsv_path: str | Path,
    md_path: str | Path,
    comparisons: dict[str, str] | None = None,
    appendix: str = "",
    explanations: dict[str, str] | None = None,
) -> None:
    """Write the summary table as TSV and as a readable markdown report."""
    for path in (tsv_path, md_path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(tsv_path, sep="\t", index=False)
    markdown = summary_markdown(
        table, comparisons=comparisons, appendix=appendix, explanations=explanations
    )
    Path(md_path).write_text(markdown, encoding="utf-8")


# --------------------------------------------------------------------------- HTML pages

_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; max-width: 80em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
tr:nth-child(even) td { background: #fafafa; }
"""


def html_page(markdown_text: str, title: str) -> str:
    """A standalone HTML page of a markdown text (tables included), for the Snakemake
    report, which shows HTML but only offers other text files for download."""
    import markdown

    body = markdown.markdown(markdown_text, extensions=["tables"])
    return (
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{_CSS}</style></head><body>\n{body}\n</body></html>\n"
    )


def cohort_markdown(availability: pd.DataFrame, qa: dict[str, pd.DataFrame]) -> str:
    """The cohort page: patients per modality and per availability pattern, and each
    modality's quality-control table (``qa``: modality -> table with a status column)."""
    patterns = availability.apply(lambda r: "+".join(c for c in availability if r[c]), axis=1)
    counts = patterns.replace("", "none").value_counts()
    parts = [
        "# Cohort and quality control",
        f"{len(availability)} patients.",
        pipe_table(
            ["Modality", "Patients"], [[m, int(availability[m].sum())] for m in availability]
        ),
        "## Availability patterns",
        pipe_table(["Modalities", "Patients"], [[k, int(v)] for k, v in counts.items()]),
    ]
    for name, table in qa.items():
        status = table["status"].value_counts()
        parts += [
            f"## Quality control: {name}",
            ", ".join(f"{k}: {v}" for k, v in status.items()),
            pipe_table(
                [str(table.index.name or "patient_id"), *map(str, table.columns)],
                [
                    [i, *map(_qa_cell, row)]
                    for i, row in zip(table.index, table.values, strict=True)
                ],
            ),
        ]
    return "\n\n".join(parts) + "\n"


def _qa_cell(value):
    if isinstance(value, float):
        return MISSING if math.isnan(value) else f"{value:.4g}"
    return value
