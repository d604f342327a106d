"""Multi-modal fusion strategies, each one scikit-learn classifier over the blocks
(modalities) of a design matrix, fitted on training rows only.

- early fusion is :func:`radiotx.models.build` with several blocks: per-block
  preprocessing and selection, then :class:`BlockWeight` so that each block enters the
  classifier with the same total variance, however many features it keeps;
- :class:`LateFusion`: a model per modality, its probabilities combined by mean, weighted
  mean, majority vote or weighted vote; weights from each model's internal out-of-fold AUC;
- :class:`StackedFusion`: a model per modality, a logistic meta-learner trained on their
  internal out-of-fold predictions only;
- :class:`MultipleKernel` (multi-view): an SVM on a weighted sum of per-modality RBF kernels,
  the view weights learned by centred kernel-target alignment;
- ``single``: one modality alone, the inner CV choosing which. It is the fallback that lets
  the inner CV's choice among strategies (the ``selected`` model) keep a single modality
  when fusing gains nothing.

A patient lacking a modality has an all-NaN block. Late fusion and stacking then use the
modalities the patient has (each per-modality model is fitted on the patients who have its
modality); early fusion and the kernel method impute the block inside the fold.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    OneToOneFeatureMixin,
    TransformerMixin,
    clone,
)
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.metrics.pairwise import rbf_kernel
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.preprocessing import LabelEncoder
from sklearn.svm import SVC
from sklearn.utils.validation import check_is_fitted, validate_data

from radiotx import fitcache, models

STRATEGIES = ("early", "late", "stacking", "mkl", "single")
RULES = ("mean", "weighted_mean", "vote", "weighted_vote", "best")


class BlockWeight(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Scales a block's columns by ``sqrt(total / width)``: after standard scaling every
    block then has the same total variance ``total``, so a 1,700-feature block does not
    drown a 10-feature one in a distance, kernel or penalised linear model. ``total`` is
    the number of features each block is meant to keep (the grid's k), so a block that
    keeps k features is left as it is and the classifiers' penalties keep their meaning."""

    def __init__(self, total=20):
        self.total = total

    def fit(self, X, y=None):
        X = validate_data(self, X)
        self.scale_ = np.sqrt(self.total / max(X.shape[1], 1))
        return self

    def transform(self, X):
        check_is_fitted(self, "scale_")
        return validate_data(self, X, reset=False) * self.scale_


def present(X: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Rows (patients) that have the block: not every one of its columns missing."""
    return X[columns].notna().any(axis=1).to_numpy()


def availability_pattern(X: pd.DataFrame, blocks: dict[str, list[str]]) -> pd.Series:
    """Each patient's available modalities, e.g. ``"clinical+rnaseq"``."""
    have = pd.DataFrame({name: present(X, cols) for name, cols in blocks.items()}, index=X.index)
    return have.apply(lambda row: "+".join(n for n in have.columns if row[n]) or "none", axis=1)


def member(modality, columns, *, selector=None, balance=None, clf=None, prepare=None, seed=42):
    """The single-modality pipeline of a late-fusion or stacking member: the modality's
    preprocessing, ``selector`` (default ANOVA), ``balance`` (a sampler, or None) and
    ``clf`` (default logistic regression). An SVM is given Platt-scaled probabilities,
    which the combination rules need."""
    pipeline = models.build(
        {modality: columns}, "logreg", seed=seed,
        prepare={modality: clone(prepare)} if prepare is not None else None,
    )  # fmt: skip
    clf = clone(pipeline.named_steps["clf"] if clf is None else clf)
    if "probability" in clf.get_params():
        clf.set_params(probability=True)
    params = {"balance": None if balance is None else clone(balance), "clf": clf}
    if selector is not None:
        params[f"prep__{modality}__select"] = clone(selector)
    return pipeline.set_params(**params)


def _choice(value, modality):
    """A per-modality parameter: one value for every modality, or a dict by modality."""
    return value[modality] if isinstance(value, dict) else value


def _record_columns(estimator, X: pd.DataFrame) -> None:
    """The fitted-attribute convention of scikit-learn: the columns seen in ``fit``."""
    estimator.feature_names_in_ = np.asarray(X.columns, dtype=object)
    estimator.n_features_in_ = X.shape[1]


# Late fusion and stacking with the same member settings fit the same per-modality models
# on the same rows (in the inner CV, the refit and the bias mitigations of one job): each
# is fitted once per process. The search tries every late-fusion candidate on every split
# before the first stacking one, so the memo holds a whole grid's members (a few hundred
# kB each).
_MEMBERS = fitcache.Memo(size=512)


def _fit_member(estimator, X, codes, folds):
    """A member's internal out-of-fold probabilities and the member fitted on all rows."""

    def fit():
        oof = cross_val_predict(estimator, X, codes, cv=folds, method="predict_proba")
        return oof, clone(estimator).fit(X, codes)

    return _MEMBERS.get(fitcache.digest(estimator, X, codes, folds), fit)


class _PerModality(ClassifierMixin, BaseEstimator):
    """Shared machinery of late fusion and stacking: one member per modality fitted on the
    patients who have it, and its internal out-of-fold probabilities."""

    def _fit_members(self, X, y):
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"{type(self).__name__} needs a DataFrame with the blocks' columns")
        _record_columns(self, X)
        self.label_encoder_ = LabelEncoder().fit(y)
        self.classes_ = self.label_encoder_.classes_
        codes = self.label_encoder_.transform(np.asarray(y))
        self.prior_ = np.bincount(codes, minlength=len(self.classes_)) / len(codes)
        self.members_, self.skipped_ = {}, {}
        oof = {}
        for name, cols in self.blocks.items():
            rows = present(X, cols)
            counts = np.bincount(codes[rows], minlength=len(self.classes_))
            if counts.min() < 2:
                self.skipped_[name] = f"{int(rows.sum())} patients, class counts {counts.tolist()}"
                continue
            estimator = member(
                name, cols, selector=_choice(self.selector, name), balance=self.balance,
                clf=self.clf, prepare=(self.prepare or {}).get(name), seed=self.seed,
            )  # fmt: skip
            folds = StratifiedKFold(
                min(self.cv, int(counts.min())), shuffle=True, random_state=self.seed
            )
            probability = np.empty((len(codes), len(self.classes_)))
            probability[rows], self.members_[name] = _fit_member(
                estimator, X.loc[rows], codes[rows], folds
            )
            oof[name] = (rows, probability)
        if not self.members_:
            raise ValueError(
                f"{type(self).__name__}: no modality has two patients of every class "
                f"({self.skipped_}); fix: add patients or use early fusion"
            )
        return codes, oof

    def _member_probabilities(self, X) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per member: the rows that have its modality and their probabilities."""
        check_is_fitted(self, "members_")
        out = {}
        for name, estimator in self.members_.items():
            rows = present(X, self.blocks[name])
            probability = np.empty((len(X), len(self.classes_)))
            if rows.any():
                probability[rows] = estimator.predict_proba(X.loc[rows])
            out[name] = (rows, probability)
        return out

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


def _auc(codes, probability) -> float:
    if probability.shape[1] == 2:
        return float(roc_auc_score(codes, probability[:, 1]))
    return float(roc_auc_score(codes, probability, multi_class="ovr", average="macro"))


class LateFusion(_PerModality):
    """A classifier per modality, their class probabilities combined per patient over the
    modalities the patient has.

    Rules: ``mean`` and ``weighted_mean`` of probabilities; ``vote`` and ``weighted_vote``,
    the (weighted) share of members voting for each class, which is the returned
    "probability"; ``best``, the member with the highest weight alone for the patients who
    have its modality (the weighted mean for the others), so that a fusion can fall back on
    its best single modality when the others only add noise. A member's weight is
    ``max(AUC - 0.5, 0)`` of its internal out-of-fold predictions on the training
    patients (``cv`` folds), all members equal when none beats chance. ``rule="auto"``
    picks the rule whose combined out-of-fold predictions have the
    highest AUC on the training patients. A patient with none of the fitted modalities gets
    the training class shares.

    Parameters: ``blocks`` (modality -> columns), ``selector``, ``balance`` and ``clf`` of
    every member (``selector`` may be a dict by modality), ``prepare`` (modality ->
    modality-specific transformer), ``rule``, ``cv``, ``seed``.

    Attributes: ``members_``, ``weights_`` (modality -> normalised weight), ``rule_``,
    ``rule_scores_`` (rule -> out-of-fold AUC), ``skipped_`` (modalities left out: too few
    patients of a class).
    """

    def __init__(
        self, blocks, selector=None, balance=None, clf=None, prepare=None, rule="auto", cv=3,
        seed=42,
    ):  # fmt: skip
        self.blocks = blocks
        self.selector = selector
        self.balance = balance
        self.clf = clf
        self.prepare = prepare
        self.rule = rule
        self.cv = cv
        self.seed = seed

    def fit(self, X, y):
        codes, oof = self._fit_members(X, y)
        raw = {name: max(_auc(codes[rows], p[rows]) - 0.5, 0.0) for name, (rows, p) in oof.items()}
        total = sum(raw.values())
        n = len(raw)
        self.weights_ = {k: (v / total if total > 0 else 1.0 / n) for k, v in raw.items()}
        rules = RULES if self.rule == "auto" else (self.rule,)
        unknown = sorted(set(rules) - set(RULES))
        if unknown:
            raise ValueError(f"unknown late-fusion rule {unknown}; choose from {RULES} or auto")
        self.rule_scores_ = {r: _auc(codes, self._combine(oof, r, len(codes))) for r in rules}
        self.rule_ = max(rules, key=lambda r: self.rule_scores_[r])  # first of the best
        return self

    def _combine(self, parts, rule, n_rows) -> np.ndarray:
        if rule == "best":  # the best member where the patient has it, weighted mean elsewhere
            combined = self._combine(parts, "weighted_mean", n_rows)
            rows, probability = parts[max(self.weights_, key=self.weights_.get)]
            combined[rows] = probability[rows]
            return combined
        weighted = rule.startswith("weighted")
        total = np.zeros((n_rows, len(self.classes_)))
        mass = np.zeros(n_rows)
        for name, (rows, probability) in parts.items():
            w = self.weights_[name] if weighted else 1.0
            if rule.endswith("vote"):
                votes = np.zeros_like(probability[rows])
                votes[np.arange(rows.sum()), np.argmax(probability[rows], axis=1)] = 1.0
                total[rows] += w * votes
            else:
                total[rows] += w * probability[rows]
            mass[rows] += w
        combined = np.tile(self.prior_, (n_rows, 1))
        seen = mass > 0
        combined[seen] = total[seen] / mass[seen, None]
        return combined

    def predict_proba(self, X):
        return self._combine(self._member_probabilities(X), self.rule_, len(X))

    @property
    def modality_weights_(self) -> dict[str, float]:
        check_is_fitted(self, "weights_")
        if self.rule_ == "best":
            best = max(self.weights_, key=self.weights_.get)
            return {name: float(name == best) for name in self.weights_}
        if self.rule_.startswith("weighted"):
            return dict(self.weights_)
        return {name: 1.0 / len(self.weights_) for name in self.weights_}


class StackedFusion(_PerModality):
    """Stacking: a classifier per modality and a logistic-regression meta-learner trained on
    the members' internal out-of-fold predictions only (``cv`` folds within the training
    rows), never on predictions of patients a member was fitted on.

    The meta-features are the members' log-odds of each class (one per modality for two
    classes); a patient lacking a modality gets the log-odds of the training class shares
    there, i.e. no information. Parameters as :class:`LateFusion`, plus ``C`` of the
    meta-learner.

    Attributes: ``members_``, ``meta_`` (the fitted meta-learner), ``skipped_``.
    """

    def __init__(
        self, blocks, selector=None, balance=None, clf=None, prepare=None, C=1.0, cv=3, seed=42
    ):  # fmt: skip
        self.blocks = blocks
        self.selector = selector
        self.balance = balance
        self.clf = clf
        self.prepare = prepare
        self.C = C
        self.cv = cv
        self.seed = seed

    def fit(self, X, y):
        codes, oof = self._fit_members(X, y)
        self.meta_ = LogisticRegression(C=self.C, max_iter=5000, random_state=self.seed)
        self.meta_.fit(self._meta_features(oof, len(codes)), codes)
        return self

    def _meta_features(self, parts, n_rows) -> np.ndarray:
        columns = []
        odds = slice(1, 2) if len(self.classes_) == 2 else slice(None)
        for name in self.members_:
            rows, probability = parts[name]
            block = np.tile(self.prior_, (n_rows, 1))
            block[rows] = probability[rows]
            block = np.clip(block, 1e-6, 1 - 1e-6)
            columns.append(np.log(block / (1 - block))[:, odds])
        return np.hstack(columns)

    def predict_proba(self, X):
        return self.meta_.predict_proba(self._meta_features(self._member_probabilities(X), len(X)))

    @property
    def modality_weights_(self) -> dict[str, float]:
        """Share of the meta-learner's absolute coefficients per modality."""
        check_is_fitted(self, "meta_")
        per = np.abs(self.meta_.coef_).reshape(self.meta_.coef_.shape[0], len(self.members_), -1)
        size = per.sum(axis=(0, 2))
        total = size.sum()
        return {
            name: float(s / total) if total > 0 else 1.0 / len(size)
            for name, s in zip(self.members_, size, strict=True)
        }


class MultipleKernel(ClassifierMixin, BaseEstimator):
    """Multiple-kernel learning: an SVM on ``sum_m w_m K_m``, one RBF kernel per modality
    (on its imputed, scaled and selected features, width ``1 / n_features``).

    The view weights ``w_m`` are proportional to each kernel's centred alignment with the
    labels (the "align" method of Cortes, Mohri & Rostamizadeh, JMLR 2012), kernels with
    negative alignment given weight 0. The alignment is cross-fitted (``cv`` folds of the
    training rows): each view is selected on the other folds and aligned on the held-out
    one, because features selected for their association with the labels would otherwise
    align with them even in a block of noise. For more than two classes the target kernel
    is ``Y Y^T`` of the one-hot labels.

    A patient lacking a modality is placed at the mean of the present training patients
    in that kernel's feature space (its kernel values are the averages over them), which
    keeps every kernel positive semi-definite and makes the missing block uninformative;
    each view is selected and aligned on the patients who have it.

    Parameters: ``blocks``, ``selector`` (or a dict by modality), ``prepare``, ``C`` and
    ``class_weight`` of the SVM, ``cv``, ``seed``.

    Attributes: ``views_`` (modality -> fitted preprocessing), ``weights_``,
    ``alignment_``, ``svm_``.
    """

    def __init__(
        self, blocks, selector=None, prepare=None, C=1.0, class_weight=None, cv=3, seed=42
    ):  # fmt: skip
        self.blocks = blocks
        self.selector = selector
        self.prepare = prepare
        self.C = C
        self.class_weight = class_weight
        self.cv = cv
        self.seed = seed

    def _view(self, name):
        prepare = (self.prepare or {}).get(name)
        view = models.block(
            self.blocks[name], prepare=None if prepare is None else clone(prepare), name=name
        )
        if self.selector is not None:
            view.set_params(select=clone(_choice(self.selector, name)))
        return view

    def fit(self, X, y):
        if not isinstance(X, pd.DataFrame):
            raise TypeError("MultipleKernel needs a DataFrame with the blocks' columns")
        _record_columns(self, X)
        self.label_encoder_ = LabelEncoder().fit(y)
        self.classes_ = self.label_encoder_.classes_
        codes = self.label_encoder_.transform(np.asarray(y))
        self.views_, self.train_, self.alignment_ = {}, {}, {}
        kernels = {}
        for name, cols in self.blocks.items():
            rows = present(X, cols)
            if np.bincount(codes[rows], minlength=len(self.classes_)).min() < 2:
                continue  # too few patients of a class have this modality
            self.alignment_[name] = self._cross_fitted_alignment(name, X.loc[rows], codes[rows])
            self.views_[name] = self._view(name).fit(X.loc[rows, cols], codes[rows])
            Z = np.asarray(self.views_[name].transform(X.loc[rows, cols]), dtype=float)
            gram = _kernel(Z, Z)
            self.train_[name] = (rows, Z, gram.mean(axis=0), gram.mean())
            kernels[name] = self._embed(name, gram, rows)
        if not kernels:
            raise ValueError("MultipleKernel: no modality has two patients of every class")
        raw = {name: max(a, 0.0) for name, a in self.alignment_.items()}
        total = sum(raw.values())
        self.weights_ = {k: (v / total if total > 0 else 1.0 / len(raw)) for k, v in raw.items()}
        self.svm_ = SVC(
            kernel="precomputed", C=self.C, class_weight=self.class_weight, random_state=self.seed
        ).fit(self._combined(kernels), codes)
        return self

    def _cross_fitted_alignment(self, name, X, codes) -> float:
        cols = self.blocks[name]
        n_splits = min(self.cv, int(np.bincount(codes).min()))
        folds = StratifiedKFold(n_splits, shuffle=True, random_state=self.seed)
        aligned = []
        for train, test in folds.split(X, codes):
            view = self._view(name).fit(X[cols].iloc[train], codes[train])
            Z = np.asarray(view.transform(X[cols].iloc[test]), dtype=float)
            aligned.append(_centred_alignment(_kernel(Z, Z), _target(codes[test])))
        return float(np.mean(aligned))

    def _embed(self, name, cross, rows_in) -> np.ndarray:
        """The kernel between rows (``rows_in`` marking those that have the modality, whose
        kernel with the present training patients is ``cross``) and every training row."""
        rows_train, _, column_means, grand_mean = self.train_[name]
        full = np.empty((len(rows_in), len(rows_train)))
        inner = np.full((int(rows_in.sum()), len(rows_train)), 0.0)
        inner[:, rows_train] = cross
        inner[:, ~rows_train] = cross.mean(axis=1, keepdims=True)
        full[rows_in] = inner
        full[~rows_in] = np.where(rows_train, 0.0, grand_mean)
        full[np.ix_(~rows_in, rows_train)] = column_means
        return full

    def _combined(self, kernels):
        return sum(self.weights_[name] * kernel for name, kernel in kernels.items())

    def _test_kernel(self, X):
        check_is_fitted(self, "svm_")
        kernels = {}
        for name, view in self.views_.items():
            cols = self.blocks[name]
            rows = present(X, cols)
            Z = np.asarray(view.transform(X.loc[rows, cols]), dtype=float) if rows.any() else None
            cross = _kernel(Z, self.train_[name][1]) if Z is not None else np.empty((0, 0))
            kernels[name] = self._embed(name, cross, rows)
        return self._combined(kernels)

    def decision_function(self, X):
        return self.svm_.decision_function(self._test_kernel(X))

    def predict(self, X):
        return self.classes_[self.svm_.predict(self._test_kernel(X))]

    @property
    def modality_weights_(self) -> dict[str, float]:
        check_is_fitted(self, "weights_")
        return dict(self.weights_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


def _target(codes) -> np.ndarray:
    """The ideal kernel of the labels: y y^T with y = +-1, or Y Y^T of one-hot classes."""
    if codes.max() <= 1:
        signs = 2.0 * codes - 1
        return np.outer(signs, signs)
    onehot = np.eye(codes.max() + 1)[codes]
    return onehot @ onehot.T


def _kernel(A, B) -> np.ndarray:
    return rbf_kernel(A, B, gamma=1.0 / max(A.shape[1], 1))


def _centred_alignment(K, T) -> float:
    """<Kc, Tc>_F / (||Kc|| ||Tc||) with Kc = HKH (H the centring matrix), over the
    off-diagonal entries: a kernel's diagonal (1 for RBF) aligns with any target's and
    would give a block of noise a weight of about 1 / sqrt(n)."""
    n = len(K)
    H = np.eye(n) - 1.0 / n
    Kc, Tc = H @ K @ H, H @ T @ H
    np.fill_diagonal(Kc, 0.0)
    np.fill_diagonal(Tc, 0.0)
    norm = np.linalg.norm(Kc) * np.linalg.norm(Tc)
    return float(np.sum(Kc * Tc) / norm) if norm > 0 else 0.0


# ------------------------------------------------------------------ search spaces


def estimator_and_spaces(
    strategies, blocks: dict[str, list[str]], *, k_values, seed=42, inner_folds=3,
    selectors=("anova",), balancers=("smote",), smote_neighbors=3, candidates=("logreg",),
    search=None, categorical=None, block_selectors=None, prepare=None, stability=None,
    named=False,
) -> tuple[object, dict[str, list[dict]]]:  # fmt: skip
    """The estimator of a fusion pipeline (one step, ``fusion``, that each strategy
    replaces) and the inner-CV search space of each strategy in ``strategies``.

    Every strategy's space holds the choices of a single-modality model: classifier among
    ``candidates`` with its hyper-parameters, balancer, selector (per block when
    ``block_selectors`` says so) and k; the kernel method chooses its selector, k and C.
    The members of late fusion and stacking use each selector with its default penalty.
    ``single`` adds the modality to these choices: a model of one block alone.
    """
    from imblearn.pipeline import Pipeline

    from radiotx import selection

    unknown = sorted(set(strategies) - set(STRATEGIES))
    if unknown:
        raise ValueError(f"unknown fusion strategies {unknown}; choose from {list(STRATEGIES)}")
    built = dict(
        seed=seed, smote_neighbors=smote_neighbors, stability=stability, prepare=prepare,
        named=named,
    )  # fmt: skip
    early = models.build(blocks, models.SELECTED, **built)
    options = dict(
        selectors=tuple(selectors), balancers=tuple(balancers), smote_neighbors=smote_neighbors,
        candidates=tuple(candidates), search=search, categorical=categorical,
        block_selectors=block_selectors,
    )  # fmt: skip
    steps = _member_steps(blocks, prepare, stability)
    members = {
        "late": LateFusion(blocks, prepare=steps, cv=inner_folds, seed=seed),
        "stacking": StackedFusion(blocks, prepare=steps, cv=inner_folds, seed=seed),
    }
    spaces = {}
    for strategy in strategies:
        if strategy == "early":
            space = models.grid(
                blocks, models.SELECTED, k_values, seed, prefix="fusion__", **options
            )
            spaces[strategy] = [{"fusion": [early], **part} for part in space]
            continue
        if strategy == "single":
            alone = {
                name: models.build({name: cols}, models.SELECTED, **built)
                for name, cols in blocks.items()
            }
            spaces[strategy] = [
                {"fusion": [alone[name]], **part}
                for name, cols in blocks.items()
                for part in models.grid(
                    {name: cols}, models.SELECTED, k_values, seed, prefix="fusion__", **options
                )
            ]
            continue
        chosen = models.choices(blocks, models.SELECTED, k_values, seed, **options)
        per_block = {}  # one selector per block and (selection, k), shared by the choices
        for choice in chosen:
            per_block[_key(choice)] = {
                b: selection.selector(name, k=choice.k, seed=seed)
                for b, name in choice.selection.items()
            }
        if strategy == "mkl":
            kernel = MultipleKernel(blocks, prepare=steps, cv=inner_folds, seed=seed)
            spaces[strategy] = [
                {
                    "fusion": [kernel],
                    "fusion__selector": [picked],
                    "fusion__C": [0.1, 1.0, 10.0],
                    "fusion__class_weight": ["balanced"],
                }
                for picked in per_block.values()
            ]
            continue
        spaces[strategy] = [
            {
                "fusion": [members[strategy]],
                "fusion__selector": [per_block[_key(choice)]],
                "fusion__balance": [choice.balancer],
                "fusion__clf": [choice.model],
                **{f"fusion__clf__{key}": values for key, values in choice.clf_grid.items()},
            }
            for choice in chosen
        ]
    return Pipeline([("fusion", early)]), spaces


def _key(choice) -> tuple:
    return tuple(choice.selection.items()), choice.k


def _member_steps(blocks, prepare, stability) -> dict:
    """Modality-specific steps of the per-modality models: the stability filter and the
    modality's own transformer, in that order."""
    from sklearn.pipeline import make_pipeline

    prepare, stability = prepare or {}, stability or {}
    steps = {}
    for name in blocks:
        parts = [p for p in (stability.get(name), prepare.get(name)) if p is not None]
        if parts:
            steps[name] = parts[0] if len(parts) == 1 else make_pipeline(*parts)
    return steps


def fused_model(fitted):
    """The strategy estimator inside a fitted fusion pipeline."""
    return fitted.named_steps["fusion"] if hasattr(fitted, "named_steps") else fitted


def strategy_of(fitted) -> str:
    """The name (one of :data:`STRATEGIES`) of a fitted fusion model's strategy."""
    model = fused_model(fitted)
    if hasattr(model, "named_steps"):
        return "single" if len(_early_blocks(model)) == 1 else "early"
    names = {LateFusion: "late", StackedFusion: "stacking", MultipleKernel: "mkl"}
    return names[type(model)]


def describe(fitted) -> dict:
    """What a fitted fusion model's inner CV chose: its ``strategy``, the combination
    ``rule`` of late fusion, the ``modality`` of a single-modality model."""
    model, strategy = fused_model(fitted), strategy_of(fitted)
    out = {"strategy": strategy}
    if strategy == "late":
        out["rule"] = model.rule_
    if strategy == "single":
        out["modality"] = _early_blocks(model)[0]
    return out


def _early_blocks(pipeline) -> list[str]:
    return [name for name, _, _ in pipeline.named_steps["prep"].transformers]


def selected_features(fitted) -> list[tuple[str, str]]:
    """(modality, feature) pairs that a fitted fusion model uses."""
    model = fused_model(fitted)
    if hasattr(model, "named_steps"):  # early fusion
        return models.selected_features(model)
    if hasattr(model, "members_"):
        return [pair for m in model.members_.values() for pair in models.selected_features(m)]
    return [
        tuple(name.split(models.SEPARATOR, 1))
        for view in model.views_.values()
        for name in view.get_feature_names_out()
    ]


def contribution(fitted, X: pd.DataFrame, y, blocks, *, n_repeats=5, seed=42) -> dict:
    """Each modality's learned weight (None for early fusion, whose block weights are
    fixed; 1 for the modality of a single-modality model, 0 for the others) and block
    permutation importance on (X, y): the mean drop in AUC when the block's rows are
    shuffled together across the patients who have it."""
    y = np.asarray(y)
    weights = getattr(fused_model(fitted), "modality_weights_", None) or {}
    if strategy_of(fitted) == "single":
        kept = describe(fitted)["modality"]
        weights = {name: float(name == kept) for name in blocks}
    baseline = _score(fitted, X, y)
    rng = np.random.default_rng(seed)
    out = {}
    for name, cols in blocks.items():
        rows = np.flatnonzero(present(X, cols))
        drops = []
        for _ in range(n_repeats if len(rows) > 1 else 0):
            shuffled = X.copy()
            shuffled.iloc[rows, shuffled.columns.get_indexer(cols)] = X[cols].to_numpy()[
                rng.permutation(rows)
            ]
            drops.append(baseline - _score(fitted, shuffled, y))
        out[name] = {
            "weight": None if name not in weights else float(weights[name]),
            "importance": float(np.mean(drops)) if drops else float("nan"),
        }
    return out


def _score(fitted, X, y) -> float:
    from radiotx import evaluate

    score = evaluate.scores(fitted, X)
    if len(np.unique(y)) < 2:
        return float("nan")
    if np.ndim(score) == 1:
        return float(roc_auc_score(y, score))
    return evaluate.macro_ovr_auc(y, score)
