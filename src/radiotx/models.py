"""Model pipelines: per-modality preprocessing and selection, balancing, a classifier.

One imbalanced-learn ``Pipeline`` holds every fitted step, so cross-validation refits all of
them on the training rows of each fold; SMOTE acts only during ``fit`` and therefore never
touches a validation or test fold. Early fusion is the same pipeline with several blocks:
each modality is imputed, scaled, variance-filtered and ANOVA-selected on its own, and the
per-modality selections are concatenated.
"""

from __future__ import annotations

from imblearn.over_sampling import SMOTE
from imblearn.pipeline import Pipeline
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_selection import SelectKBest, VarianceThreshold, f_classif
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline as SkPipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

SEPARATOR = ":"  # column names are "<modality>:<feature>" so blocks never collide


def _logreg(seed: int):
    return LogisticRegression(max_iter=5000, random_state=seed), {"C": [0.01, 0.1, 1.0]}


def _svm(seed: int):
    return SVC(kernel="rbf", gamma="scale", random_state=seed), {"C": [0.1, 1.0, 10.0]}


def _rf(seed: int):
    forest = RandomForestClassifier(n_estimators=200, n_jobs=1, random_state=seed)
    return forest, {"min_samples_leaf": [1, 3]}


def _xgboost(seed: int):
    from xgboost import XGBClassifier

    booster = XGBClassifier(
        n_estimators=200, learning_rate=0.05, n_jobs=1, random_state=seed, verbosity=0
    )
    return booster, {"max_depth": [2, 4], "subsample": [0.8]}


CLASSIFIERS = {"logreg": _logreg, "svm": _svm, "rf": _rf, "xgboost": _xgboost}


def classifier(name: str, seed: int = 42):
    """An unfitted classifier and its hyper-parameter grid."""
    if name not in CLASSIFIERS:
        raise ValueError(f"unknown classifier {name!r}; choose from {sorted(CLASSIFIERS)}")
    return CLASSIFIERS[name](seed)


def block(columns: list[str], k: int = 20, stability=None, prepare=None) -> SkPipeline:
    """Preprocessing and selection of one modality, fitted on training rows only.

    ``stability`` (a fitted-in-fold :class:`radiotx.stability.StabilityFilter`) first drops
    features whose ROI-perturbation ICC on the training patients is below its threshold.
    ``prepare`` is a modality-specific transformer applied before the common steps, e.g.
    :func:`expression_steps` for RNA-seq.
    """
    steps = [] if stability is None else [("stability", stability)]
    steps += [] if prepare is None else [("prepare", prepare)]
    return SkPipeline(
        steps
        + [
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("scale", StandardScaler()),
            ("variance", VarianceThreshold(threshold=0.0)),
            ("anova", SelectKBest(f_classif, k=min(k, len(columns)))),
        ]
    )


def build(
    blocks: dict[str, list[str]],
    classifier_name: str,
    *,
    seed: int = 42,
    k: int = 20,
    smote_neighbors: int = 3,
    stability: dict | None = None,
    prepare: dict | None = None,
) -> Pipeline:
    """[stability filter] -> [modality steps] -> impute -> scale -> variance filter -> ANOVA
    (per modality) -> SMOTE -> classifier. ``stability`` maps a modality to its
    StabilityFilter, ``prepare`` a modality to its own transformer."""
    stability, prepare = stability or {}, prepare or {}
    prep = ColumnTransformer(
        [
            (name, block(cols, k, stability.get(name), prepare.get(name)), cols)
            for name, cols in blocks.items()
        ],
        remainder="drop",
        verbose_feature_names_out=False,
    )
    model, _ = classifier(classifier_name, seed)
    return Pipeline(
        [
            ("prep", prep),
            ("smote", SMOTE(k_neighbors=smote_neighbors, random_state=seed)),
            ("clf", model),
        ]
    )


def grid(
    blocks: dict[str, list[str]], classifier_name: str, k_values: list[int], seed: int = 42
) -> list[dict]:
    """Inner-CV search space: the number of ANOVA-selected features per block (the same k
    for every block, capped by the block's width) crossed with the classifier's grid."""
    _, clf_grid = classifier(classifier_name, seed)
    spaces = []
    for k in sorted(set(k_values)):
        space = {f"prep__{name}__anova__k": [min(k, len(cols))] for name, cols in blocks.items()}
        space.update({f"clf__{key}": values for key, values in clf_grid.items()})
        spaces.append(space)
    return spaces


def selected_features(fitted: Pipeline) -> list[tuple[str, str]]:
    """(modality, feature) pairs that the fitted pipeline passes to its classifier."""
    names = fitted.named_steps["prep"].get_feature_names_out()
    return [tuple(name.split(SEPARATOR, 1)) for name in names]


def expression_steps(settings: dict, batches=None, gene_sets: dict | None = None):
    """The cohort-level RNA-seq steps of config ``rnaseq.preprocess``, fitted per fold:
    impute gaps -> [ComBat] -> [expressed-gene filter] -> (most variable genes
    [-> scale -> PCA]) next to [gene-set scores]. Patients without RNA-seq (all-NaN rows
    in a fusion) pass through as NaN and are imputed later. ``batches`` maps patient id to
    batch when ComBat is on."""
    from sklearn.decomposition import PCA
    from sklearn.pipeline import FeatureUnion, make_pipeline

    from radiotx import expression

    # Genes a sample lacks (gaps of a published matrix) get the training patients' median.
    steps = [SimpleImputer(strategy="median", keep_empty_features=True)]
    if settings.get("batch"):
        steps.append(
            expression.BatchHarmoniser(batches, unseen=settings.get("unseen_batch", "error"))
        )
    if settings.get("min_expression") is not None:
        steps.append(
            expression.ExpressedGenes(
                settings["min_expression"], settings.get("min_expressed_fraction", 0.1)
            )
        )
    genes = [
        expression.VariableGenes(settings.get("n_genes", 2000), settings.get("genes", "variance"))
    ]
    if settings.get("pca"):
        genes += [StandardScaler(), PCA(settings["pca"], random_state=settings.get("seed", 42))]
    if gene_sets:
        scores = expression.GeneSetScores(
            gene_sets,
            method=settings.get("gene_set_method", "ulm"),
            min_size=settings.get("gene_set_min_size", 5),
            keep_genes=False,
        )
        parts = [("sets", scores)]
        if settings.get("keep_genes", True):
            parts.insert(0, ("genes", make_pipeline(*genes)))
        union = FeatureUnion(parts, verbose_feature_names_out=False)
        steps.append(union.set_output(transform="pandas"))
    else:
        steps += genes
    return expression.PresentRows(make_pipeline(*steps).set_output(transform="pandas"))
