"""One model job: an endpoint, a pipeline (a modality or a fusion of modalities) and a
classifier, evaluated by nested CV on the stored outer folds and refit on all patients."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import joblib
import mudata as md
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from radiotx import cohort, evaluate, models, permutation, report
from radiotx.stability import StabilityFilter

NEIGHBOUR_BALANCERS = {"smote", "adasyn", "borderline_smote", "smotenc"}
BATCH = "batch"  # obs column of the cohort with each patient's batch (ComBat)


@dataclass(frozen=True)
class Settings:
    """What the config says about modelling (see config/config.yaml, section model and cv)."""

    seed: int = 42
    inner_folds: int = 3
    k_features: tuple[int, ...] = (5, 20)
    smote_neighbors: int = 3
    selectors: tuple[str, ...] = ("anova",)  # feature selectors the inner CV chooses among
    balancers: tuple[str, ...] = ("smote",)  # balancing methods the inner CV chooses among
    candidates: tuple[str, ...] = ()  # classifiers the "selected" model chooses among
    search: dict | None = None  # per-classifier search spaces (config model.search)
    n_boot: int = 1000
    stability_threshold: float | None = None  # ICC threshold of the radiomics stability filter
    rnaseq: dict | None = None  # config rnaseq.preprocess: cohort-level expression steps

    @classmethod
    def from_params(cls, params: dict) -> Settings:
        """Settings from the workflow's params (YAML lists become tuples)."""
        params = dict(params)
        for key in ("k_features", "selectors", "balancers", "candidates"):
            params[key] = tuple(params[key])
        return cls(**params)


def design_matrix(
    mdata: md.MuData, modalities: list[str], endpoint: str, folds: pd.DataFrame
) -> tuple[pd.DataFrame, pd.Series, pd.Series, dict[str, list[str]]]:
    """Features, labels and outer folds of the patients this pipeline can be scored on.

    A single-modality pipeline uses the patients who have that modality; a fusion uses every
    patient with at least one of its modalities, the missing blocks left as NaN for the
    in-fold imputer. Patients keep the outer fold they were given, whatever the pipeline.
    """
    blocks, parts = {}, []
    for name in modalities:
        frame = cohort.modality_frame(mdata, name)
        frame.columns = [f"{name}{models.SEPARATOR}{c}" for c in frame.columns]
        blocks[name] = list(frame.columns)
        parts.append(frame)
    X = pd.concat(parts, axis=1, join="outer")
    fold = folds.set_index("patient_id")["fold"]
    labels = mdata.obs[endpoint]
    keep = X.index.intersection(fold.index)
    keep = keep[labels.reindex(keep).notna().to_numpy()]
    X = X.loc[sorted(keep)]
    return X, labels.loc[X.index].astype(int), fold.loc[X.index], blocks


def procedure(
    mdata: md.MuData,
    folds: pd.DataFrame,
    *,
    endpoint: str,
    pipeline: str,
    modalities: list[str],
    classifier: str,
    settings: Settings,
    perturbed: pd.DataFrame | None = None,
):
    """The modelling procedure of one job: its design matrix, labels, outer folds, the
    pipeline and the inner-CV search space that makes every choice."""
    X, y, fold, blocks = design_matrix(mdata, modalities, endpoint, folds)
    if set(settings.balancers) & NEIGHBOUR_BALANCERS:
        check_smote(y, fold, settings, f"{endpoint}/{pipeline}")
    stability = {}
    if perturbed is not None and settings.stability_threshold is not None and "radiomics" in blocks:
        stability["radiomics"] = StabilityFilter(perturbed, settings.stability_threshold)
    prepare = {}
    if settings.rnaseq is not None and "rnaseq" in blocks:
        prepare["rnaseq"] = rnaseq_steps(mdata, settings)
    estimator = models.build(
        blocks,
        classifier,
        seed=settings.seed,
        smote_neighbors=settings.smote_neighbors,
        stability=stability,
        prepare=prepare,
    )
    space = models.grid(
        blocks,
        classifier,
        list(settings.k_features),
        seed=settings.seed,
        selectors=tuple(settings.selectors),
        balancers=tuple(settings.balancers),
        smote_neighbors=settings.smote_neighbors,
        candidates=tuple(settings.candidates),
        search=settings.search,
    )
    return X, y, fold, estimator, space


def permuted(
    mdata: md.MuData, folds: pd.DataFrame, *, index: int, settings: Settings, **job
) -> float:
    """Pooled out-of-fold AUC of the whole procedure on labels shuffled across patients
    (permutation ``index``), on the same outer folds: one draw of the null distribution."""
    X, y, fold, estimator, space = procedure(mdata, folds, settings=settings, **job)
    shuffled = permutation.permute(y, settings.seed, index)
    result = evaluate.nested_cv(
        estimator, space, X, shuffled, fold, inner_splits=settings.inner_folds, seed=settings.seed
    )
    p = result.predictions
    return float(roc_auc_score(p["y_true"], p["score"]))


def run(
    mdata: md.MuData,
    folds: pd.DataFrame,
    *,
    endpoint: str,
    pipeline: str,
    modalities: list[str],
    classifier: str,
    settings: Settings,
    outdir,
    perturbed: pd.DataFrame | None = None,
) -> dict:
    """Nested CV, final refit and every output of one model job, written to ``outdir``.

    ``perturbed`` (radiomics features of perturbed ROIs, long format) switches on the
    in-fold stability filter of the radiomics block when ``settings.stability_threshold``
    is set.
    """
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    X, y, fold, estimator, space = procedure(
        mdata,
        folds,
        endpoint=endpoint,
        pipeline=pipeline,
        modalities=modalities,
        classifier=classifier,
        settings=settings,
        perturbed=perturbed,
    )
    result = evaluate.nested_cv(
        estimator,
        space,
        X,
        y,
        fold,
        inner_splits=settings.inner_folds,
        seed=settings.seed,
        selected=models.selected_features,
    )
    summary = {
        "endpoint": endpoint,
        "pipeline": pipeline,
        "classifier": classifier,
        "modalities": list(modalities),
        "n_patients": int(len(y)),
        "n_positive": int(y.sum()),
        "n_features_in": int(X.shape[1]),
        **result.summary(n_boot=settings.n_boot, seed=settings.seed),
    }
    (outdir / "metrics.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    result.predictions.to_csv(outdir / "predictions.tsv", sep="\t", index=False)
    result.selected.to_csv(outdir / "selected_features.tsv", sep="\t", index=False)
    report.plot_roc(result.predictions, outdir / "roc.png", title=f"{pipeline} / {classifier}")
    joblib.dump(refit(estimator, space, X, y, settings), outdir / "model.joblib")
    return summary


def rnaseq_steps(mdata: md.MuData, settings: Settings):
    """The in-fold expression steps, with the patients' batches (``obs['batch']``, from the
    clinical column named in config) and the gene sets they ask for."""
    from radiotx import expression

    options = {**settings.rnaseq, "seed": settings.seed}
    batches = None
    if options.get("batch"):
        if BATCH not in mdata.obs:
            raise ValueError("rnaseq.preprocess.batch is set but the cohort has no batch column")
        batches = mdata.obs[BATCH].dropna().astype(str)
    sets = expression.load_gene_sets(options["gene_sets"]) if options.get("gene_sets") else None
    return models.expression_steps(options, batches, sets)


def check_smote(y: pd.Series, fold: pd.Series, settings: Settings, name: str) -> None:
    """SMOTE needs more minority patients than neighbours in every inner training set; say
    so before the search fails deep inside imbalanced-learn."""
    fewest = evaluate.smallest_inner_class(y, fold, settings.inner_folds, settings.seed)
    if fewest <= settings.smote_neighbors:
        raise ValueError(
            f"{name}: an inner training set has only {fewest} patients of the minority "
            f"class, not more than model.smote_neighbors ({settings.smote_neighbors}). Fix: "
            "lower model.smote_neighbors, use fewer cv folds, or add patients"
        )


def refit(estimator, space, X: pd.DataFrame, y: pd.Series, settings: Settings):
    """The model to apply to new patients: the same inner-CV tuning, on every patient."""
    cv = StratifiedKFold(n_splits=settings.inner_folds, shuffle=True, random_state=settings.seed)
    return evaluate.tune(estimator, space, X, y, cv).best_estimator_
