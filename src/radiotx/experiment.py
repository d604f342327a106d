"""The modelling procedure of one endpoint and pipeline (a modality or a fusion of
modalities): nested CV of every classifier on the stored outer folds, one outer fold at a
time (a workflow job each), and the final refit on every development patient."""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import joblib
import numpy as np
import pandas as pd
from sklearn.base import clone

from radiotx import (
    calibration,
    cohort,
    evaluate,
    final,
    followup,
    fusion,
    models,
    permutation,
    splits,
    survival,
)
from radiotx.evaluate import pooled_auc
from radiotx.stability import StabilityFilter

if TYPE_CHECKING:  # a job that reads no cohort (a model's outputs) skips mudata's import
    import mudata as md

log = logging.getLogger(__name__)

NEIGHBOUR_BALANCERS = {"smote", "adasyn", "borderline_smote", "smotenc"}
BINARY, MULTICLASS, SURVIVAL = "binary", "multiclass", "survival"  # kinds of endpoint
BATCH = "batch"  # obs column of the cohort with each patient's batch (ComBat)


@dataclass(frozen=True)
class Settings:
    """What the config says about modelling (see config/config.yaml, section model and cv)."""

    seed: int = 42
    inner_folds: int = 3
    inner_repeats: int = 1  # partitions of each inner CV (repeated stratified K-fold)
    choice: str = "one_se"  # the inner CV's pick: one_se, or best (radiotx.choice)
    k_features: tuple[int, ...] = (5, 20)
    smote_neighbors: int = 3
    selectors: tuple[str, ...] = ("anova",)  # feature selectors the inner CV chooses among
    balancers: tuple[str, ...] = ("smote",)  # balancing methods the inner CV chooses among
    candidates: tuple[str, ...] = ("logreg",)  # classifiers of the study (config model.classifiers)
    select: bool = True  # add the "selected" model, whose inner CV chooses among candidates
    search: dict | None = None  # per-classifier search spaces (config model.search)
    n_boot: int = 1000
    stability_threshold: float | None = None  # ICC threshold of the radiomics stability filter
    rnaseq: dict | None = None  # config rnaseq.preprocess: cohort-level expression steps
    survival_models: tuple[str, ...] = ("coxnet",)  # models of survival endpoints
    share: bool = True  # fit preprocessing shared by classifiers once per inner split
    strategies: tuple[str, ...] = ()  # fusion strategies of multi-modality pipelines
    block_selectors: dict | None = None  # modality -> its own selectors (config fusion.selectors)
    complete_cases: bool = False  # a fusion of only the patients with every modality
    deep: dict | None = None  # config deep: DeepEncoder parameters (without crop and explain)

    @classmethod
    def from_params(cls, params: dict) -> Settings:
        """Settings from the workflow's params (YAML lists become tuples)."""
        params = dict(params)
        for key in (
            "k_features",
            "selectors",
            "balancers",
            "candidates",
            "survival_models",
            "strategies",
        ):
            params[key] = tuple(params[key])
        return cls(**params)


def design_matrix(
    mdata: md.MuData, modalities: list[str], endpoint: str, patients
) -> tuple[pd.DataFrame, pd.Series, dict[str, list[str]]]:
    """Features and labels (for survival: the event) of those of ``patients`` this
    pipeline can be scored on.

    A single-modality pipeline uses the patients who have that modality; a fusion uses every
    patient with at least one of its modalities, the missing blocks left as NaN for the
    in-fold imputer.
    """
    blocks, parts = {}, []
    for name in modalities:
        frame = cohort.modality_frame(mdata, name)
        frame.columns = [f"{name}{models.SEPARATOR}{c}" for c in frame.columns]
        blocks[name] = list(frame.columns)
        parts.append(frame)
    X = pd.concat(parts, axis=1, join="outer")
    labels = mdata.obs[endpoint]
    keep = X.index.intersection(pd.Index(patients))
    keep = keep[labels.reindex(keep).notna().to_numpy()]
    X = X.loc[sorted(keep)]
    return X, labels.loc[X.index].astype(int), blocks


@dataclass
class Procedure:
    """The modelling procedure of one (endpoint, pipeline): the development patients'
    features and labels, the stored splits, the pipeline and one inner-CV search space per
    classifier (``union`` names the model whose inner CV also chooses the classifier)."""

    X: pd.DataFrame
    y: pd.Series
    folds: pd.DataFrame
    estimator: object
    spaces: dict[str, list[dict]]
    union: str | None
    settings: Settings
    meta: dict  # endpoint, pipeline, modalities and the size of the design
    survival: pd.DataFrame | None = None  # time and event, for a survival endpoint
    blocks: dict[str, list[str]] | None = None  # modality -> columns, for a fusion

    @property
    def fused(self) -> bool:
        """Whether the models are fusion strategies (see :mod:`radiotx.fusion`)."""
        return bool(self.meta.get("strategies"))

    @property
    def target(self):
        """What the models are fitted to: labels, or the (time, event) table."""
        return self.y if self.survival is None else self.survival

    def outer(self, repeat: int) -> pd.Series:
        return splits.outer(self.folds, repeat).loc[self.X.index]

    def evaluate_fold(
        self, repeat: int, fold: int, target=None, select=True, rows=None, shap=None,
        mitigate=None,
    ):  # fmt: skip
        """Every model's :class:`~radiotx.evaluate.FoldResult` on one outer fold (of the
        patients in the boolean mask ``rows``, by default all). ``shap``
        (:class:`radiotx.explain.tabular.Options`) adds the SHAP values of the models it
        names on the fold's test patients as their ``explanation``; ``mitigate``
        (:class:`radiotx.fairness.outer.Options`) the test predictions of the bias
        mitigations of the models it names, fitted on the fold's training patients."""
        X, target = self.X, self.target if target is None else target
        outer = self.outer(repeat)
        if rows is not None:
            X, target, outer = X.loc[rows], target.loc[rows], outer.loc[rows]
        with self._pretraining(X.loc[(outer != fold).to_numpy()]):
            return self._evaluate_fold(X, target, outer, repeat, fold, select, shap, mitigate)

    def _evaluate_fold(self, X, target, outer, repeat, fold, select, shap, mitigate):
        s = self.settings
        if self.survival is not None:
            self._attribution(shap, repeat, fold)  # logs that survival is not explained
            return survival.evaluate_fold(
                self.estimator, self.spaces, X, target, outer, fold, inner_folds=s.inner_folds,
                inner_repeats=s.inner_repeats, seed=s.seed, repeat=repeat, union=self.union,
                share=s.share, rule=s.choice,
                selected=models.selected_features if select else None,
            )  # fmt: skip
        named = fusion.selected_features if self.fused else models.selected_features
        return evaluate.evaluate_fold(
            self.estimator, self.spaces, X, target, outer, fold, inner_splits=s.inner_folds,
            inner_repeats=s.inner_repeats, seed=s.seed, repeat=repeat, union=self.union,
            share=s.share, rule=s.choice,
            selected=named if select else None,
            explain=self._contribution if self.fused and select else None,
            attribute=self._attribution(shap, repeat, fold),
            mitigate=self._mitigation(mitigate, repeat, fold),
        )  # fmt: skip

    def _pretraining(self, X_train: pd.DataFrame):
        """The outer training set that a label-free encoder is pretrained on (see
        :func:`radiotx.deep.encoder.pretraining`); nothing without a deep modality."""
        if not self.settings.deep:
            return contextlib.nullcontext()
        from radiotx.deep.encoder import pretraining

        return pretraining(X_train)

    def _mitigation(self, options, repeat: int, fold: int):
        """The ``mitigate`` hook of :func:`radiotx.evaluate.evaluate_fold`, or None.
        Binary endpoints only: the fairness metrics compare one decision per patient."""
        if options is None or not options.models:
            return None
        if self.meta.get("kind") != BINARY:
            log.info(
                "bias mitigation is evaluated for binary endpoints only: %s/%s is %s",
                self.meta["endpoint"], self.meta["pipeline"], self.meta.get("kind"),
            )  # fmt: skip
            return None
        from radiotx.fairness import outer

        seed = evaluate.inner_seed(self.settings.seed, repeat) + int(fold)
        return outer.fold_hook(options, repeat, fold, self.settings.inner_folds, seed)

    def _attribution(self, options, repeat: int, fold: int):
        """The ``attribute`` hook of :func:`radiotx.evaluate.evaluate_fold` for SHAP, or
        None. Binary endpoints only: a survival risk or a multiclass probability vector has
        no single output to explain. A model chosen under two names (``selected`` is one of
        the others) is explained once."""
        if options is None or not options.models:
            return None
        if self.meta.get("kind") != BINARY:
            log.info(
                "SHAP explanations are computed for binary endpoints only: %s/%s is %s, "
                "so %s are not explained", self.meta["endpoint"], self.meta["pipeline"],
                self.meta.get("kind"), ", ".join(options.models),
            )  # fmt: skip
            return None
        from radiotx.explain import tabular

        done: dict[int, dict] = {}

        def attribute(name, fitted, X_train, X_test):
            if name not in options.models:
                return None
            if id(fitted) not in done:
                log.info("SHAP of %s, repeat %d, outer fold %d", name, repeat, fold)
                done[id(fitted)] = tabular.explain(
                    fitted, X_train, X_test, background=options.background,
                    max_evals=options.max_evals,
                    seed=evaluate.inner_seed(self.settings.seed, repeat) + int(fold),
                ).to_dict()  # fmt: skip
            return done[id(fitted)]

        return attribute

    def _contribution(self, fitted, X_test, y_test) -> dict:
        seed = self.settings.seed
        return {
            **fusion.describe(fitted),
            "contribution": fusion.contribution(fitted, X_test, y_test, self.blocks, seed=seed),
        }

    def evaluate(self, target=None, select=True) -> dict:
        """Nested CV over every repeat and outer fold: a NestedCVResult per model."""
        parts: dict[str, list] = {}
        for repeat in splits.repeat_ids(self.folds):
            for fold in sorted(self.outer(repeat).unique()):
                for name, part in self.evaluate_fold(repeat, fold, target, select).items():
                    parts.setdefault(name, []).append(part)
        return {name: evaluate.NestedCVResult.combine(p) for name, p in parts.items()}

    def learning_curve(self, fractions) -> pd.DataFrame:
        """Every model's nested-CV score (first repeat) when each outer training set is
        cut to a stratified ``fraction`` of its patients; the test folds stay whole."""
        from sklearn.model_selection import StratifiedShuffleSplit

        outer, tables = self.outer(0), []
        for fraction in fractions:
            parts: dict[str, list] = {}
            for fold in sorted(outer.unique()):
                test = (outer == fold).to_numpy()
                train = self.X.index[~test]
                cut = StratifiedShuffleSplit(
                    1, train_size=fraction, random_state=self.settings.seed + int(fold)
                )
                keep, _ = next(cut.split(train.to_frame(), self.y.loc[train]))
                rows = test | self.X.index.isin(train[keep])
                # survival models are not balanced (censored data have no classes)
                if self.survival is None and set(self.settings.balancers) & NEIGHBOUR_BALANCERS:
                    self._check_cut(train[keep], fold, fraction)
                for name, part in self.evaluate_fold(0, fold, select=False, rows=rows).items():
                    parts.setdefault(name, []).append(part)
            combined = {name: evaluate.NestedCVResult.combine(p) for name, p in parts.items()}
            tables.append(self.curve_points(combined, fraction))
        return pd.concat(tables, ignore_index=True)

    def _check_cut(self, kept: pd.Index, fold: int, fraction: float) -> None:
        """SMOTE on a cut training set: the same check as for the full folds."""
        s, y = self.settings, self.y.loc[kept].astype(int)
        inner = evaluate.inner_cv(fold, s.inner_folds, s.seed, s.inner_repeats)
        fewest = min(np.bincount(y.iloc[t]).min() for t, _ in inner.split(y.to_frame(), y))
        if fewest <= s.smote_neighbors:
            raise ValueError(
                f"{self.meta['endpoint']}/{self.meta['pipeline']}: at cv.learning_curve share "
                f"{fraction:g} an inner training set has only {fewest} minority patients, not "
                f"more than model.smote_neighbors ({s.smote_neighbors}). Fix: use larger "
                "shares, lower model.smote_neighbors, or balance by class_weight"
            )

    def curve_points(self, results: dict, fraction: float) -> pd.DataFrame:
        """One learning-curve point per model: mean training size and pooled score."""
        metric = "roc_auc" if self.survival is None else "c_index"
        score = pooled_auc if self.survival is None else survival.pooled_c_index
        return pd.DataFrame(
            [
                {
                    "model": name,
                    "fraction": float(fraction),
                    "n_train": float(np.mean([r["n_train"] for r in result.folds])),
                    "metric": metric,
                    "score": score(result.predictions),
                }
                for name, result in results.items()
            ]
        )

    def refit(self) -> dict:
        """The models to apply to new patients: the same inner-CV tuning on every
        development patient, one fitted pipeline per model."""
        return {name: tuned.estimator for name, tuned in self.tune_final().items()}

    def final_models(self) -> dict[str, evaluate.Tuned]:
        """:meth:`tune_final`, and the cross-fitted scores (:meth:`cross_fit`) that the
        final model's recalibration is learned from where the nested CV's out-of-fold
        scores may mix scales: models that give decision values (their scale moves with
        the hyper-parameters each fold chose; binary and multiclass endpoints), and a
        binary endpoint's ``selected`` model when one of its candidates does (its folds
        may give a probability in one fold, a decision value in the next)."""
        tuned = self.tune_final()
        kind = self.meta.get("kind")
        if kind not in (BINARY, MULTICLASS):
            return tuned
        scales = {n: hasattr(t.estimator, "predict_proba") for n, t in tuned.items()}
        mixed = kind == BINARY and not all(scales.values())  # selected's folds may differ
        needed = [n for n in tuned if not scales[n] or (n == models.SELECTED and mixed)]
        scores = self.cross_fit({name: tuned[name] for name in needed})
        # copies: "selected" may share its choice with the model it chose
        return {n: replace(t, cross_fitted=scores.get(n)) for n, t in tuned.items()}

    def cross_fit(self, tuned: dict[str, evaluate.Tuned]) -> dict[str, pd.DataFrame]:
        """Out-of-fold scores of final configurations: each pipeline with its chosen
        parameters refitted on each outer training set of the first repeat (no search),
        scoring that fold's test patients. Every score of one model comes from the same
        configuration, so its scores are comparable across folds, unlike the nested CV's
        when its folds chose different models; the final model's recalibration is
        learned from them. A pipeline chosen under two names is fitted once per fold, and
        a label-free encoder pretrained once per fold."""
        repeat = splits.repeat_ids(self.folds)[0]
        outer = self.outer(repeat)
        parts: dict[str, list] = {name: [] for name in tuned}
        for fold in sorted(outer.unique()) if tuned else []:
            train = (outer != fold).to_numpy()
            X_train, X_test = self.X.loc[train], self.X.loc[~train]
            fitted: dict[int, np.ndarray] = {}
            with self._pretraining(X_train), evaluate.quiet_search():
                for name, choice in tuned.items():
                    if id(choice.estimator) not in fitted:
                        model = clone(choice.estimator).fit(X_train, self.y.loc[train])
                        fitted[id(choice.estimator)] = evaluate.scores(model, X_test)
                    score = fitted[id(choice.estimator)]
                    columns = (
                        {"score": score} if score.ndim == 1
                        else {f"{evaluate.SCORE_PREFIX}{k}": score[:, k]
                              for k in range(score.shape[1])}
                    )  # fmt: skip
                    parts[name].append(
                        pd.DataFrame(
                            {
                                "patient_id": X_test.index, "repeat": repeat, "fold": fold,
                                "y_true": self.y.loc[~train].astype(int).to_numpy(), **columns,
                            }
                        )
                    )  # fmt: skip
        return {name: pd.concat(frames, ignore_index=True) for name, frames in parts.items()}

    def tune_final(self) -> dict[str, evaluate.Tuned]:
        """:meth:`refit` with each model's chosen parameters and inner-CV score."""
        s = self.settings
        cv = evaluate.inner_cv(0, s.inner_folds, s.seed, s.inner_repeats)
        if self.survival is None:
            target, scoring = self.y, evaluate.scoring_for(self.y)
        else:
            target, scoring = survival.as_structured(self.survival), None
            cv = list(cv.split(self.X, self.y))  # stratified by event
        with self._pretraining(self.X):
            return evaluate.tune_each(
                self.estimator, self.spaces, self.X, target, cv, union=self.union,
                share=s.share, scoring=scoring, rule=s.choice,
            )  # fmt: skip


def procedure(
    mdata: md.MuData,
    folds: pd.DataFrame,
    *,
    endpoint: str,
    pipeline: str,
    modalities: list[str],
    settings: Settings,
    classifiers: list[str] | None = None,
    perturbed: pd.DataFrame | None = None,
) -> Procedure:
    """The :class:`Procedure` of one (endpoint, pipeline) for ``classifiers`` (by default
    the configured candidates, plus the "selected" model when ``settings.select``)."""
    development = splits.development_patients(folds)
    X, y, blocks = design_matrix(mdata, modalities, endpoint, development)
    if settings.complete_cases:
        complete = np.logical_and.reduce([fusion.present(X, cols) for cols in blocks.values()])
        X, y = X.loc[complete], y.loc[complete]
    time_column = followup.time_column(endpoint)
    if time_column in mdata.obs:
        meta = {"endpoint": endpoint, "pipeline": pipeline, "kind": SURVIVAL}
        meta["modalities"] = list(modalities)
        return _survival_procedure(mdata, X, y, blocks, folds, settings, classifiers, meta)
    if set(settings.balancers) & NEIGHBOUR_BALANCERS:
        for repeat in splits.repeat_ids(folds):
            fold = splits.outer(folds, repeat).loc[X.index]
            check_smote(y, fold, settings, f"{endpoint}/{pipeline}", repeat)
    stability = {}
    if perturbed is not None and settings.stability_threshold is not None and "radiomics" in blocks:
        stability["radiomics"] = StabilityFilter(perturbed, settings.stability_threshold)
    prepare = {}
    if settings.rnaseq is not None and "rnaseq" in blocks:
        prepare["rnaseq"] = rnaseq_steps(mdata, settings)
    if "deep" in blocks:
        prepare["deep"] = deep_encoder(settings)
    # SMOTENC: the clinical one-hot indicators ("<column>=<level>") are categorical
    categorical = None
    if "smotenc" in settings.balancers:
        categorical = [c for c in blocks.get("clinical", []) if "=" in c]
        if not categorical:
            raise ValueError(
                f"{endpoint}/{pipeline}: model.balancers has smotenc, which needs categorical "
                "clinical columns, but this pipeline has none. Fix: use smote, or list "
                "clinical.categorical columns and the clinical modality in the pipeline"
            )
    meta = {
        "endpoint": endpoint,
        "pipeline": pipeline,
        "kind": BINARY,
        "modalities": list(modalities),
        "n_patients": int(len(y)),
        "n_positive": int(y.sum()),
        "n_features_in": int(X.shape[1]),
    }
    names_column = f"{endpoint}{cohort.CLASS_SUFFIX}"
    if names_column in mdata.obs:  # multiclass: class sizes instead of positives
        classes = mdata.obs.loc[X.index, names_column].astype(str)
        meta.update(kind=MULTICLASS, n_positive=None)
        meta["classes"] = {str(k): name for k, name in enumerate(sorted(classes.unique()))}
        meta["class_counts"] = classes.value_counts().sort_index().to_dict()
    if len(blocks) > 1 and settings.strategies:
        names = list(classifiers or settings.strategies)
        estimator, spaces = fusion.estimator_and_spaces(
            names, blocks, k_values=list(settings.k_features), seed=settings.seed,
            inner_folds=settings.inner_folds, selectors=settings.selectors,
            balancers=settings.balancers, smote_neighbors=settings.smote_neighbors,
            candidates=settings.candidates, search=settings.search, categorical=categorical,
            block_selectors=settings.block_selectors, prepare=prepare, stability=stability,
            named=categorical is not None,
        )  # fmt: skip
        meta["strategies"] = names
        meta["availability"] = fusion.availability_pattern(X, blocks).value_counts().to_dict()
        union = models.SELECTED if settings.select and len(names) > 1 else None
        return Procedure(X, y, folds, estimator, spaces, union, settings, meta, blocks=blocks)
    estimator = models.build(
        blocks,
        models.SELECTED,
        seed=settings.seed,
        smote_neighbors=settings.smote_neighbors,
        stability=stability,
        prepare=prepare,
        named=categorical is not None,
    )
    names = list(classifiers or settings.candidates)
    union = models.SELECTED if settings.select and len(names) > 1 else None
    spaces = {
        name: models.grid(
            blocks,
            models.SELECTED,
            list(settings.k_features),
            seed=settings.seed,
            selectors=tuple(settings.selectors),
            balancers=tuple(settings.balancers),
            smote_neighbors=settings.smote_neighbors,
            candidates=(name,),
            search=settings.search,
            categorical=categorical,
        )
        for name in names
    }
    return Procedure(X, y, folds, estimator, spaces, union, settings, meta, blocks=blocks)


def _survival_procedure(mdata, X, events, blocks, folds, settings, names, meta) -> Procedure:
    """The procedure of a survival endpoint: no balancing (censored data have no classes),
    Cox-score selection and the survival models, tuned by C-index."""
    times = mdata.obs[followup.time_column(meta["endpoint"])]
    keep = times.reindex(X.index).notna().to_numpy()
    X, events = X.loc[keep], events.loc[keep]
    target = pd.DataFrame({"time": times.loc[X.index].astype(float), "event": events})
    prepare = {}
    if settings.rnaseq is not None and "rnaseq" in blocks:
        prepare["rnaseq"] = rnaseq_steps(mdata, settings)
    if "deep" in blocks:
        prepare["deep"] = deep_encoder(settings)
    names = list(names or settings.survival_models)
    estimator = survival.build(blocks, names[0], seed=settings.seed, prepare=prepare)
    spaces = survival.spaces(blocks, names, settings.k_features, settings.seed, settings.search)
    union = models.SELECTED if settings.select and len(names) > 1 else None
    meta = {
        **meta,
        "n_patients": int(len(events)),
        "n_events": int(events.sum()),
        "n_features_in": int(X.shape[1]),
    }
    return Procedure(X, events, folds, estimator, spaces, union, settings, meta, target)


def permuted(procedure: Procedure, index: int) -> dict[str, float]:
    """Pooled out-of-fold AUC or C-index (averaged over repeats) of every model's whole
    procedure on outcomes shuffled across patients (permutation ``index``), on the same
    outer folds: one draw of each model's null distribution."""
    shuffled = permutation.permute(procedure.target, procedure.settings.seed, index)
    results = procedure.evaluate(shuffled, select=False)
    score = pooled_auc if procedure.survival is None else survival.pooled_c_index
    return {name: score(result.predictions) for name, result in results.items()}


def score_holdout(
    model, mdata: md.MuData, folds: pd.DataFrame, *, endpoint: str, modalities: list[str],
    settings: Settings,
) -> tuple[dict, pd.DataFrame]:  # fmt: skip
    """The final model of a pipeline on the locked hold-out patients (those the pipeline
    can score): metrics with patient-bootstrap CIs, and the predictions. The hold-out
    patients took no part in the outer CV nor in fitting ``model``."""
    X, y, _ = design_matrix(mdata, modalities, endpoint, splits.holdout_patients(folds))
    time_column = followup.time_column(endpoint)
    if time_column in mdata.obs:
        X = X.loc[mdata.obs[time_column].reindex(X.index).notna().to_numpy()]
        predictions = pd.DataFrame(
            {
                "patient_id": X.index,
                "time": mdata.obs.loc[X.index, time_column].to_numpy(dtype=float),
                "event": y.loc[X.index].to_numpy(dtype=int),
                "score": np.asarray(model.predict(X), dtype=float),
            }
        )
        summary = {
            "n_patients": len(X),
            "n_events": int(predictions["event"].sum()),
            "metrics": {"c_index": survival.pooled_c_index(predictions)},
            "ci95": {
                "c_index": survival.bootstrap_c_index(predictions, settings.n_boot, settings.seed)
            },
        }
        return summary, predictions
    score = evaluate.scores(model, X)
    predictions = pd.DataFrame(
        {
            "patient_id": X.index,
            "y_true": y.to_numpy(),
            **evaluate.score_frame(score),
            "y_pred": np.asarray(model.predict(X), dtype=int),
        }
    )
    probability = hasattr(model, "predict_proba")
    values = evaluate.metrics(y, score, predictions["y_pred"], probability)
    if probability and score.ndim == 1:
        values.update(evaluate.calibration(y, score))
    summary = {
        "n_patients": int(len(y)),
        "n_positive": int(y.sum()),
        "metrics": values,
        "ci95": evaluate.bootstrap_ci(
            predictions, n_boot=settings.n_boot, seed=settings.seed, probability=probability
        ),
    }
    return summary, predictions


def from_job(inputs, wildcards, params) -> Procedure:
    """The :class:`Procedure` of a workflow job, from its input files (``cohort``,
    ``folds``, ``perturbed``), wildcards (``endpoint``, ``pipeline``) and params
    (``modalities``, ``settings``)."""
    return procedure(
        cohort.read(inputs.cohort),
        splits.read(inputs.folds),
        endpoint=wildcards.endpoint,
        pipeline=wildcards.pipeline,
        modalities=list(params.modalities),
        settings=Settings.from_params(params.settings),
        perturbed=pd.read_parquet(inputs.perturbed) if inputs.perturbed else None,
    )


def calibration_scores(result: evaluate.NestedCVResult, tuned=None) -> tuple[pd.DataFrame, bool]:
    """The out-of-fold scores that calibration is assessed and learned on, and whether
    they are probabilities: the nested CV's when every fold gave probabilities (one scale
    across folds); else the cross-fitted scores of the final configuration
    (:meth:`Procedure.cross_fit`), whose folds share one model and so one scale."""
    if result.probability or tuned is None or tuned.cross_fitted is None:
        return result.predictions, result.probability
    return tuned.cross_fitted, hasattr(tuned.estimator, "predict_proba")


def write_model(
    result: evaluate.NestedCVResult,
    meta: dict,
    classifier: str,
    settings: Settings,
    outdir,
    tuned: evaluate.Tuned | None = None,
) -> dict:
    """Every output of one model: metrics.json, predictions.tsv, selected_features.tsv,
    performance.png (ROC curves; for survival, Kaplan-Meier curves by predicted risk) and
    plots/ (precision-recall, calibration, decision curve and confusion matrix of a binary
    endpoint; the confusion matrix of a multiclass one). With ``tuned`` (the inner CV's
    choice on every development patient), model.joblib holds the
    :class:`~radiotx.final.FinalModel` and metrics.json its parameters."""
    from radiotx import plots  # matplotlib: only the jobs that draw pay its import

    outdir = Path(outdir)
    (outdir / "plots").mkdir(parents=True, exist_ok=True)
    title = f"{meta['pipeline']} / {classifier}"
    predictions = result.predictions
    if meta.get("kind") == SURVIVAL:
        metrics = {
            "primary_metric": "c_index",
            **survival.summary(result, settings.n_boot, settings.seed),
        }
        plots.plot_risk_groups(predictions, outdir / "performance.png", title=title)
    else:
        metrics = {"primary_metric": "roc_auc", **result.summary(settings.n_boot, settings.seed)}
        plots.plot_roc(predictions, outdir / "performance.png", title=title)
    if meta.get("kind") == BINARY:
        scored = calibration_scores(result, tuned)
        metrics["calibration"] = calibration.summary(*scored)
        if scored[0] is not predictions:
            metrics["calibration"]["scores"] = "final configuration, cross-fitted"
        plots.write_binary(predictions, result.probability, outdir / "plots", title, scored)
    elif meta.get("kind") == MULTICLASS:
        path = outdir / "plots" / "confusion_matrix.png"
        plots.plot_confusion_matrix(predictions, path, title, labels=meta.get("classes"))
    if tuned is not None:
        metrics["final"] = {
            "params": {key: evaluate.plain(value) for key, value in tuned.params.items()},
            "inner_score": tuned.inner_score,
        }
        scored, probability = calibration_scores(result, tuned)
        model = final.FinalModel.from_out_of_fold(
            tuned.estimator, {**meta, "classifier": classifier}, scored, probability
        )
        joblib.dump(model, outdir / "model.joblib")
    summary = {
        "endpoint": meta["endpoint"],
        "pipeline": meta["pipeline"],
        "classifier": classifier,
        **meta,
        **metrics,
    }
    (outdir / "metrics.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    predictions.to_csv(outdir / "predictions.tsv", sep="\t", index=False)
    result.selected.to_csv(outdir / "selected_features.tsv", sep="\t", index=False)
    return summary


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
    """Nested CV, final refit and every output of one model, in one process (the workflow
    runs the same steps as a job per outer fold); written to ``outdir``.

    ``classifier`` is one of :data:`radiotx.models.CLASSIFIERS` (of
    :data:`radiotx.fusion.STRATEGIES` for a fusion when ``settings.strategies`` is set), or
    ``"selected"`` for the inner-CV choice among ``settings.candidates`` (strategies).
    ``perturbed`` (radiomics features of perturbed ROIs, long format) switches on the
    in-fold stability filter of the radiomics block when ``settings.stability_threshold``
    is set.
    """
    if classifier == models.SELECTED:
        settings = replace(settings, select=True)
        fused = len(modalities) > 1 and settings.strategies
        names = list(settings.strategies if fused else settings.candidates)
    else:
        settings, names = replace(settings, select=False), [classifier]
    job = procedure(
        mdata, folds, endpoint=endpoint, pipeline=pipeline, modalities=modalities,
        settings=settings, classifiers=names, perturbed=perturbed,
    )  # fmt: skip
    result = job.evaluate()[classifier]
    return write_model(
        result, job.meta, classifier, settings, outdir, tuned=job.final_models()[classifier]
    )


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


def deep_encoder(settings: Settings):
    """The in-fold encoder of the deep modality's crops."""
    from radiotx.deep.encoder import DeepEncoder

    return DeepEncoder(**(settings.deep or {}), seed=settings.seed)


def check_smote(
    y: pd.Series, fold: pd.Series, settings: Settings, name: str, repeat: int = 0
) -> None:
    """SMOTE needs more minority patients than neighbours in every inner training set; say
    so before the search fails deep inside imbalanced-learn."""
    seed = evaluate.inner_seed(settings.seed, repeat)
    fewest = evaluate.smallest_inner_class(
        y, fold, settings.inner_folds, seed, settings.inner_repeats
    )
    if fewest <= settings.smote_neighbors:
        raise ValueError(
            f"{name}: an inner training set has only {fewest} patients of the minority "
            f"class, not more than model.smote_neighbors ({settings.smote_neighbors}). Fix: "
            "lower model.smote_neighbors, use fewer cv folds, or add patients"
        )
