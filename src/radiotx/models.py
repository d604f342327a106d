"""Model pipelines: per-modality preprocessing and selection, balancing, a classifier.

One imbalanced-learn ``Pipeline`` holds every fitted step, so cross-validation refits all of
them on the training rows of each fold; SMOTE acts only during ``fit`` and therefore never
touches a validation or test fold. Early fusion is the same pipeline with several blocks:
each modality is imputed, scaled, variance-filtered and selected on its own, and the
per-modality selections are weighted to equal total variance and concatenated (other
fusion strategies: :mod:`radiotx.fusion`).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

from imblearn.over_sampling import SMOTE
from imblearn.pipeline import Pipeline
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import AdaBoostClassifier, RandomForestClassifier
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.gaussian_process import GaussianProcessClassifier
from sklearn.gaussian_process.kernels import RBF, ConstantKernel
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline as SkPipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from radiotx import tables

SEPARATOR = ":"  # column names are "<modality>:<feature>" so blocks never collide


def _logreg(seed: int):
    return LogisticRegression(max_iter=5000, random_state=seed), {"C": [0.01, 0.1, 1.0]}


def _svm(seed: int):
    return SVC(kernel="rbf", gamma="scale", random_state=seed), {"C": [0.1, 1.0, 10.0]}


def _svm_linear(seed: int):
    return SVC(kernel="linear", random_state=seed), {"C": [0.01, 0.1, 1.0]}


def _knn(seed: int):
    return KNeighborsClassifier(weights="distance"), {"n_neighbors": [5, 11]}


def _gp(seed: int):
    # kernel hyper-parameters are fitted by marginal likelihood inside each fit: no grid
    kernel = ConstantKernel(1.0) * RBF(length_scale=10.0)
    return GaussianProcessClassifier(kernel=kernel, random_state=seed), {}


def _rf(seed: int):
    # 100 trees (scikit-learn's default): each tree costs about a millisecond of Python
    # overhead on a cohort-sized table, and a study fits hundreds of forests (inner CV,
    # refits, permutation draws); 200 made rf two thirds of a draw's time
    forest = RandomForestClassifier(n_estimators=100, n_jobs=1, random_state=seed)
    return forest, {"min_samples_leaf": [1, 3]}


def _adaboost(seed: int):
    boost = AdaBoostClassifier(random_state=seed)
    return boost, {"n_estimators": [50, 100], "learning_rate": [0.5, 1.0]}


def _tree(seed: int):
    tree = DecisionTreeClassifier(random_state=seed)
    return tree, {"max_depth": [2, 4], "min_samples_leaf": [3]}


def _xgboost(seed: int):
    from xgboost import XGBClassifier

    booster = XGBClassifier(
        n_estimators=200, learning_rate=0.05, n_jobs=1, random_state=seed, verbosity=0
    )
    return booster, {"max_depth": [2, 4], "subsample": [0.8]}


CLASSIFIERS = {
    "logreg": _logreg,
    "svm": _svm,
    "svm_linear": _svm_linear,
    "knn": _knn,
    "gp": _gp,
    "rf": _rf,
    "adaboost": _adaboost,
    "tree": _tree,
    "xgboost": _xgboost,
}


def classifier(name: str, seed: int = 42, search: dict | None = None):
    """An unfitted classifier and its hyper-parameter grid; ``search`` (config
    ``model.search.<name>``) replaces the default grid's values parameter by parameter."""
    if name not in CLASSIFIERS:
        raise ValueError(f"unknown classifier {name!r}; choose from {sorted(CLASSIFIERS)}")
    model, space = CLASSIFIERS[name](seed)
    search = search or {}
    unknown = sorted(set(search) - set(model.get_params()))
    if unknown:
        raise ValueError(
            f"model.search.{name} has parameters {unknown} that {type(model).__name__} "
            "does not take"
        )
    return model, {**space, **{key: list(values) for key, values in search.items()}}


def block(
    columns: list[str],
    k: int = 20,
    stability=None,
    prepare=None,
    weight: bool = False,
    name: str = "",
) -> SkPipeline:
    """Preprocessing and selection of one modality, fitted on training rows only.

    ``stability`` (a fitted-in-fold :class:`radiotx.stability.StabilityFilter`) first drops
    features whose ROI-perturbation ICC on the training patients is below its threshold.
    ``prepare`` is a modality-specific transformer applied before the common steps, e.g.
    :func:`expression_steps` for RNA-seq. The ``select`` step (ANOVA here) is replaced by
    the inner-CV search with any selector of :mod:`radiotx.selection`. ``weight`` (early
    fusion) scales the kept features so that every block has the total variance of k features
    (:class:`radiotx.fusion.BlockWeight`).
    """
    from radiotx.fusion import BlockWeight

    steps = [] if stability is None else [("stability", stability)]
    steps += [] if prepare is None else [("prepare", prepare)]
    return SkPipeline(
        steps
        + [
            ("values", tables.Values()),
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("scale", StandardScaler()),
            ("variance", tables.Varying(threshold=0.0, block=name)),
            ("select", SelectKBest(f_classif, k=min(k, len(columns)))),
        ]
        + ([("weight", BlockWeight())] if weight else [])
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
    named: bool = False,
) -> Pipeline:
    """[stability filter] -> [modality steps] -> impute -> scale -> variance filter ->
    selection [-> block weight, with several blocks] (per modality) -> balancing ->
    classifier, SMOTE and ANOVA by default.
    ``named`` makes the preprocessing hand a DataFrame to the balancer, for samplers that
    find columns by name (SMOTENC's categorical clinical indicators).
    ``stability`` maps a modality to its StabilityFilter, ``prepare`` a modality to its own
    transformer. ``classifier_name`` ``"selected"`` starts with logistic regression: the
    search space (:func:`grid`) then lets the inner CV choose the classifier."""
    stability, prepare = stability or {}, prepare or {}
    fused = len(blocks) > 1  # early fusion: every block weighted to the same total variance
    prep = ColumnTransformer(
        [
            (
                name,
                block(cols, k, stability.get(name), prepare.get(name), fused, name),
                tables.Columns(cols),
            )
            for name, cols in blocks.items()
        ],
        remainder="drop",
        verbose_feature_names_out=False,
    )
    if named:
        prep.set_output(transform="pandas")
    model, _ = classifier("logreg" if classifier_name == SELECTED else classifier_name, seed)
    return Pipeline(
        [
            ("prep", prep),
            ("balance", SMOTE(k_neighbors=smote_neighbors, random_state=seed)),
            ("clf", model),
        ]
    )


SELECTED = "selected"  # the model whose inner CV also chooses the classifier


def grid(
    blocks: dict[str, list[str]],
    classifier_name: str,
    k_values: list[int],
    seed: int = 42,
    *,
    prefix: str = "",
    **options,
) -> list[dict]:
    """Inner-CV search space of one model job.

    Every choice is made by the inner CV: the selector and its number of features per
    block (the same for every block, capped by the block's width), the balancer, the
    classifier's hyper-parameters and, for ``classifier_name == "selected"``, the
    classifier itself among ``candidates``. The outer score is then that of the whole
    selection procedure, not of the best of many tried pipelines.

    ``categorical`` names the columns SMOTENC treats as categorical.
    ``class_weight`` as a balancer means no resampling and ``class_weight="balanced"`` on
    classifiers that take it (others are left out of that part of the space).
    ``block_selectors`` gives some blocks their own selectors (config
    ``fusion.selectors``); ``prefix`` names the pipeline's step when it sits inside another.
    ``options`` are those of :func:`choices` (``selectors``, ``balancers``,
    ``smote_neighbors``, ``candidates``, ``search``, ``categorical``, ``block_selectors``).
    """
    from radiotx import selection

    spaces = []
    for choice in choices(blocks, classifier_name, k_values, seed, **options):
        space = {}
        for block_name, cols in blocks.items():
            name = choice.selection[block_name]
            step = f"{prefix}prep__{block_name}__select"
            space[step] = [selection.selector(name, k=min(choice.k, len(cols)), seed=seed)]
            if len(blocks) > 1:  # early fusion: every block weighted to k features' variance
                space[f"{prefix}prep__{block_name}__weight__total"] = [choice.k]
            for key, values in selection.grid(name).items():  # the selector's own penalty
                space[f"{step}__{key}"] = values
        space[f"{prefix}balance"] = [choice.balancer]
        if classifier_name == SELECTED:
            space[f"{prefix}clf"] = [choice.model]
        space.update({f"{prefix}clf__{key}": values for key, values in choice.clf_grid.items()})
        spaces.append(space)
    return spaces


@dataclass(frozen=True)
class Choice:
    """One combination of the inner-CV search: a classifier (and its hyper-parameter grid,
    ``class_weight="balanced"`` included when the balancer says so), a balancer, the
    selector of each block and the number of features ``k``."""

    model: object
    clf_grid: dict
    balancer: object
    selection: dict
    k: int


def choices(
    blocks: dict[str, list[str]],
    classifier_name: str,
    k_values: list[int],
    seed: int = 42,
    *,
    selectors: tuple[str, ...] = ("anova",),
    balancers: tuple[str, ...] = ("smote",),
    smote_neighbors: int = 3,
    candidates: tuple[str, ...] = (),
    search: dict | None = None,
    categorical: list[str] | None = None,
    block_selectors: dict[str, tuple[str, ...]] | None = None,
) -> list[Choice]:
    """The combinations of :func:`grid` (arguments as there). Blocks without their own
    selectors share one selector per combination; those with their own vary on their own."""
    from radiotx import balancing

    search = search or {}
    own = {b: tuple(v) for b, v in (block_selectors or {}).items() if b in blocks}
    shared = [b for b in blocks if b not in own]
    selections = [
        {**dict.fromkeys(shared, common), **dict(zip(own, picks, strict=True))}
        for common in (selectors if shared else (None,))
        for picks in product(*own.values())
    ]
    names = list(candidates) if classifier_name == SELECTED else [classifier_name]
    out = []
    for name in names:
        model, clf_grid = classifier(name, seed, search.get(name))
        weighted = "class_weight" in model.get_params()
        for balancer_name in balancers:
            if balancing.uses_class_weight(balancer_name) and not weighted:
                continue
            sampler = balancing.balancer(
                balancer_name, seed=seed, k_neighbors=smote_neighbors,
                categorical=categorical if balancer_name == "smotenc" else None,
            )  # fmt: skip
            grid_ = dict(clf_grid)
            if balancing.uses_class_weight(balancer_name):
                grid_ = {"class_weight": ["balanced"], **grid_}
            for selection_, k in product(selections, sorted(set(k_values))):
                out.append(Choice(model, grid_, sampler, selection_, k))
    return out


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
