"""A reporting checklist filled in from the run: the items of TRIPOD+AI and CLEAR that a
run can answer (cohort and event counts, events per candidate feature, validation scheme,
missing data, class balancing, calibration, hold-out use, software), so that a write-up
starts from facts. Items a run cannot answer (eligibility criteria, recruitment dates,
blinding of assessors...) stay with the authors."""

from __future__ import annotations

import math

import pandas as pd

from radiotx.report import MISSING, headline_models, pipe_table

HEADER = ["Item", "Guideline", "From this run"]


def _fmt(value, digits=2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _cohort(availability: pd.DataFrame) -> str:
    counts = ", ".join(f"{name} {int(availability[name].sum())}" for name in availability)
    return f"{len(availability)} patients; with each modality: {counts}"


def _outcomes(config: dict, metrics: list[dict]) -> str:
    parts = []
    for name, spec in config["endpoints"].items():
        rows = [m for m in metrics if m["endpoint"] == name]
        largest = max(rows, key=lambda m: m.get("n_patients") or 0) if rows else {}
        if "event" in spec:
            events = largest.get("n_events", largest.get("n_positive"))
            parts.append(
                f"{name}: survival, event {spec['event']} = {spec['positive']}, time "
                f"{spec.get('time') or spec.get('start')}; {events} events in "
                f"{largest.get('n_patients')} patients"
            )
        elif largest.get("class_counts"):
            counts = ", ".join(f"{k} {v}" for k, v in largest["class_counts"].items())
            parts.append(f"{name}: {spec['column']}, classes {counts}")
        else:
            parts.append(
                f"{name}: {spec['column']} = {spec['positive']}; {largest.get('n_positive')} "
                f"positive of {largest.get('n_patients')}"
            )
    return "; ".join(parts)


def _events_per_feature(headline: list[dict]) -> str:
    parts = []
    for m in headline:
        n, positive, p = m.get("n_patients"), m.get("n_positive"), m.get("n_features_in")
        events = m.get("n_events", positive)
        if not (n and p and events is not None):
            continue
        fewest = min(events, n - events)
        epv = fewest / p
        flag = " (below 1: high risk of overfitting)" if epv < 1 else ""
        parts.append(f"{m['endpoint']} / {m['pipeline']}: {fewest} / {p} = {epv:.2f}{flag}")
    return "; ".join(parts) or MISSING


def _validation(config: dict) -> str:
    cv = config["cv"]
    repeats = f" x {cv['repeats']} repeats" if cv.get("repeats", 1) > 1 else ""
    folds = (
        f"{cv['outer_folds']} outer folds, one {cv['leave_out']} left out in each"
        if cv.get("leave_out")
        else f"{cv['outer_folds']} stratified outer folds{repeats}"
    )
    text = (
        f"nested cross-validation: {folds}, "
        f"{cv['inner_folds']} inner folds"
        + (f" x {cv['inner_repeats']} repeats" if cv.get("inner_repeats", 1) > 1 else "")
        + " for every choice; all preprocessing, selection and "
        "balancing fitted on training folds only"
    )
    if cv.get("permutations"):
        text += f"; label-permutation test with {cv['permutations']} permutations"
    return text


def _choice(model: dict) -> str:
    if model.get("choice", "one_se") == "one_se":
        return (
            "; each inner CV takes the simplest candidate within one standard error of the "
            "best mean inner score (a fusion strategy by score, simplified within)"
        )
    return "; each inner CV takes the candidate of best mean inner score"


def _fairness(config: dict) -> str:
    fairness = config.get("fairness") or {}
    attributes = list(fairness.get("attributes") or {})
    if not attributes:
        return "not assessed (fairness.attributes empty)"
    text = (
        f"audited by {', '.join(attributes)}: the cohort per group, the subgroup metrics and "
        "gaps (equalised odds, demographic parity) of every binary model with CIs"
    )
    if fairness.get("shift"):
        text += f"; covariate shift between the groups of {', '.join(fairness['shift'])}"
    mitigate = fairness.get("mitigate") or {}
    if mitigate.get("attribute"):
        text += (
            f"; mitigation by {mitigate['attribute']} ({', '.join(mitigate['methods'])}) "
            "fitted inside the training folds, scored on the outer folds"
        )
    return text


def _holdout(config: dict, metrics: list[dict]) -> str:
    share = config["cv"].get("holdout") or 0
    if not share:
        return (
            "none: no patients were locked away; every estimate is internal (nested CV), "
            "external validation is still needed"
        )
    scored = [m for m in headline_models(metrics) if m.get("holdout")]
    parts = [
        f"{m['endpoint']} / {m['pipeline']}: AUC "
        f"{_fmt((m['holdout'].get('metrics') or {}).get('roc_auc'))} "
        f"(n {m['holdout'].get('n_patients')})"
        for m in scored
    ]
    return (
        f"{share:.0%} of patients locked away before modelling and scored once by the final "
        "models" + (f": {'; '.join(parts)}" if parts else "")
    )


def _missing(config: dict, availability: pd.DataFrame) -> str:
    complete = int(availability.all(axis=1).sum())
    patterns = availability.apply(lambda r: "+".join(c for c in availability if r[c]), axis=1)
    text = (
        f"{complete} of {len(availability)} patients have every modality "
        f"({patterns.nunique()} availability patterns). Single-modality pipelines use the "
        "patients with that modality; missing values within a modality are imputed by the "
        "training folds' median"
    )
    pipelines = config["pipelines"].values()
    if any(isinstance(p, dict) and p.get("complete_cases") for p in pipelines):
        text += "; pipelines marked complete_cases use only patients with every modality"
    if any(len(p if isinstance(p, list) else p["modalities"]) > 1 for p in pipelines):
        text += (
            "; fusion: late fusion and stacking use the modalities each patient has, early "
            "fusion and the kernel method impute a missing block inside the fold"
        )
    return text


def _calibration(headline: list[dict]) -> str:
    parts = []
    for m in headline:
        stats = (m.get("calibration") or {}).get("recalibrated")
        if stats:
            parts.append(
                f"{m['endpoint']} / {m['pipeline']}: slope {_fmt(stats['calibration_slope'])}, "
                f"intercept {_fmt(stats['calibration_intercept'])}"
            )
    if not parts:
        return MISSING
    return (
        "logistic recalibration on out-of-fold scores, assessed cross-fitted over the outer "
        "folds (calibration plots per model): " + "; ".join(parts)
    )


def _fusion(config: dict) -> str:
    fused = [
        name
        for name, spec in config["pipelines"].items()
        if len(spec if isinstance(spec, list) else spec["modalities"]) > 1
    ]
    strategies = (config.get("fusion") or {}).get("strategies") or []
    if not fused or not strategies:
        return ""
    return (
        f"; fusion pipelines {', '.join(fused)} scored by the strategies "
        f"{', '.join(strategies)}, and 'selected' among them"
    )


def _performance(headline: list[dict]) -> str:
    parts = []
    for m in headline:
        metric = m.get("primary_metric", "roc_auc")
        low, high = (m.get("ci95") or {}).get(metric) or (None, None)
        p = (m.get("permutation") or {}).get("p_value")
        parts.append(
            f"{m['endpoint']} / {m['pipeline']}: {'AUC' if metric == 'roc_auc' else 'C-index'} "
            f"{_fmt((m.get('pooled') or {}).get(metric))} [{_fmt(low)}, {_fmt(high)}]"
            + (f", permutation p {_fmt(p, 3)}" if p is not None else "")
        )
    return "; ".join(parts)


def _software(manifest: dict) -> str:
    packages = manifest.get("packages") or {}
    names = ("radiotx", "pyradiomics-bhklab", "scikit-learn", "imbalanced-learn", "scanpy")
    versions = ", ".join(f"{n} {packages[n]}" for n in names if n in packages)
    git = manifest.get("git") or {}
    code = ""
    if git:
        code = f"git {git['commit'][:12]}{' (uncommitted changes)' if git['dirty'] else ''}; "
    return (
        f"{versions}; {code}config sha256 {manifest['config_sha256'][:12]}, inputs sha256 "
        f"{manifest['inputs_sha256'][:12]} (results/manifest.json)"
    )


def items(
    config: dict, metrics: list[dict], availability: pd.DataFrame, manifest: dict
) -> list[list[str]]:
    """[item, guideline reference, answer] rows of the checklist."""
    headline = headline_models(metrics)
    model = config["model"]
    radiomics = config.get("radiomics") or {}
    stability = radiomics.get("stability") or {}
    rows = [
        ["Study and data", "TRIPOD+AI", f"{config['study']}; {_cohort(availability)}"],
        ["Outcomes and event counts", "TRIPOD+AI", _outcomes(config, metrics)],
        ["Events per candidate feature", "TRIPOD+AI, CLEAR", _events_per_feature(headline)],
        ["Missing data", "TRIPOD+AI", _missing(config, availability)],
        [
            "Feature selection",
            "CLEAR",
            f"inside the folds, chosen by the inner CV among {', '.join(model['selectors'])}, "
            f"keeping {', '.join(map(str, model['k_features']))} features per modality",
        ],
        [
            "Class imbalance",
            "TRIPOD+AI",
            f"inside the training folds only, chosen by the inner CV among "
            f"{', '.join(model['balancers'])}",
        ],
        [
            "Models and tuning",
            "TRIPOD+AI, CLEAR",
            f"classifiers {', '.join(model['classifiers'])}"
            + (
                ", and a 'selected' model whose inner CV chooses among them (the honest headline)"
                if model.get("select_classifier") and len(model["classifiers"]) > 1
                else ""
            )
            + _fusion(config)
            + _choice(model),
        ],  # fmt: skip
        ["Validation", "TRIPOD+AI, CLEAR", _validation(config)],
        ["Hold-out / test set", "TRIPOD+AI, CLEAR", _holdout(config, metrics)],
        ["Performance with CIs (headline models)", "TRIPOD+AI", _performance(headline)],
        ["Calibration", "TRIPOD+AI", _calibration(headline)],
        ["Fairness and subgroups", "TRIPOD+AI", _fairness(config)],
        [
            "Segmentation robustness",
            "CLEAR",
            (
                f"ROI perturbations {', '.join(stability.get('perturbations') or [])}, ICC "
                f"threshold {stability.get('threshold')}"
                + (
                    ", unstable features removed inside the folds"
                    if stability.get("filter")
                    else ""
                )
            )
            if stability.get("enabled")
            else "not assessed (radiomics.stability.enabled: false)",
        ],  # fmt: skip
        ["Software and reproducibility", "TRIPOD+AI, CLEAR", _software(manifest)],
    ]
    if any("radiomics" in m.get("modalities", []) for m in metrics):
        extraction = f"pyradiomics, parameter file {radiomics.get('params', MISSING)}"
        rows.insert(-1, ["Radiomics extraction", "CLEAR", extraction])
    else:
        rows.pop(-2)  # segmentation robustness: no image features extracted in this run
    return rows


def markdown(rows: list[list[str]]) -> str:
    return "\n\n".join(
        [
            "## Reporting checklist",
            "Filled in from this run for the items of TRIPOD+AI (Collins et al., BMJ 2024) "
            "and CLEAR (Kocak et al., Insights Imaging 2023) that a run can answer; the "
            "others (eligibility, recruitment, blinding, intended use) are for the authors.",
            pipe_table(HEADER, rows),
        ]
    )
