"""SHAP explanations of fitted tabular and fused models, on the outer folds' test patients.

Each outer fold's fitted model is explained on that fold's test patients, whom no fitted
step saw, so the explanations are of unseen patients, like the out-of-fold predictions.
The background (what "a feature absent" is replaced by) is a seeded sample of the fold's
training patients: nothing of the test patients enters it. The values are interventional
SHAP values: they add up exactly to the model's output minus the background's mean output.

The explained output is the positive-class probability of a binary endpoint (the decision
function of a model without probabilities, e.g. an SVM; the ``output`` of each fold says
which, since a "selected" model may differ between folds). A fitted model's output depends
only on the union of its selected features, so only those are explained:

- a single-modality or early-fusion pipeline (``prep -> balance -> clf``) is explained on
  its transformed inputs (the selected, scaled features the classifier sees, each named
  "<modality>:<feature>"), which is the same function of the selected features, as
  imputation, scaling and block weights act per column: shap's interventional Tree SHAP
  for tree ensembles and its linear explainer for linear decision functions (exact and
  fast), otherwise the model-agnostic estimator on the classifier alone (cheap to call);
- late fusion, stacking and multiple-kernel learning are explained on their input columns
  by the model-agnostic estimator: each selected column is a player, the other columns stay
  at the patient's own values (features a modality step derives from many columns, e.g.
  gene-set scores, make the rest of that modality one player, ``<modality>:[derived]``).

The model-agnostic estimator is exact (every coalition) when ``2**players <= max_evals``,
else antithetic permutation sampling within ``max_evals`` coalitions (at least one pair);
each coalition is evaluated on every background row, so a fold costs at most
``max_evals x background x test patients`` model rows per explained model. It is written
here in NumPy, with the definitions of shap's Exact and Permutation explainers, because
shap's are compiled by numba at their first call in each process (about 5 s, more than a
fold's explanations usually take).

Per-fold results are :class:`Explanation` objects, stored in the outer-fold job's file;
:func:`patient_table`, :func:`importance` and :func:`stability` aggregate them over the
folds, :func:`plot_summary` draws the top features, :func:`write` all of a model's outputs.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import combinations
from math import factorial
from pathlib import Path

import numpy as np
import pandas as pd

from radiotx.models import SEPARATOR

log = logging.getLogger(__name__)

PATIENT_COLUMNS = [
    "patient_id", "repeat", "fold", "feature", "value", "shap", "base_value", "output",
]  # fmt: skip
DERIVED = "[derived]"  # player name of a modality's columns behind its derived features
# tree models whose interventional Tree SHAP gives the probability exactly
TREES = (
    "RandomForestClassifier",
    "ExtraTreesClassifier",
    "DecisionTreeClassifier",
    "GradientBoostingClassifier",
    "XGBClassifier",
)
# rows per model call of the model-agnostic estimator, and its memory bound (values per
# call: wide rows, e.g. image crops, make fewer rows)
BATCH_ROWS, BATCH_VALUES = 2000, 4_000_000


@dataclass(frozen=True)
class Options:
    """What to explain and how (config ``explain``): the ``models`` (classifiers or fusion
    strategies), the number of top features compared across folds (``top_k``), the
    training patients in the ``background`` and the coalitions per patient of the
    model-agnostic estimator (``max_evals``; each evaluated on every background row)."""

    models: tuple[str, ...] = ()
    top_k: int = 10
    background: int = 50
    max_evals: int = 500

    @classmethod
    def from_config(cls, section: dict | None) -> Options:
        section = dict(section or {})
        return cls(
            models=tuple(section.get("shap") or ()),
            top_k=int(section.get("top_k", cls.top_k)),
            background=int(section.get("background", cls.background)),
            max_evals=int(section.get("max_evals", cls.max_evals)),
        )


@dataclass
class Explanation:
    """SHAP values of one fitted model on its test patients: ``values`` and ``data`` (the
    patients' feature values: raw inputs, the transformed value of a derived feature, NaN
    for a player of several columns) are patients x features; ``base_values`` the expected
    output over the background (per patient: columns that are not players stay at the
    patient's own values); ``background`` the training patients sampled into it."""

    patients: list[str]
    features: list[str]
    values: np.ndarray
    data: np.ndarray
    base_values: np.ndarray
    background: list[str]
    explainer: str
    output: str

    def to_dict(self) -> dict:
        """JSON-friendly (NaN stays NaN, as the outer-fold files allow)."""
        return {
            "patients": [str(p) for p in self.patients],
            "features": list(self.features),
            "values": np.asarray(self.values, dtype=float).tolist(),
            "data": np.asarray(self.data, dtype=float).tolist(),
            "base_values": np.asarray(self.base_values, dtype=float).tolist(),
            "background": [str(p) for p in self.background],
            "explainer": self.explainer,
            "output": self.output,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Explanation:
        shape = (len(data["patients"]), len(data["features"]))
        return cls(
            patients=[str(p) for p in data["patients"]],
            features=list(data["features"]),
            values=np.asarray(data["values"], dtype=float).reshape(shape),
            data=np.asarray(data["data"], dtype=float).reshape(shape),
            base_values=np.asarray(data["base_values"], dtype=float),
            background=[str(p) for p in data["background"]],
            explainer=data["explainer"],
            output=data["output"],
        )

    def frame(self, repeat: int = 0, fold: int = 0) -> pd.DataFrame:
        """One row per patient and feature (columns :data:`PATIENT_COLUMNS`)."""
        n, m = len(self.patients), len(self.features)
        return pd.DataFrame(
            {
                "patient_id": np.repeat(np.asarray(self.patients, dtype=object), m),
                "repeat": int(repeat),
                "fold": int(fold),
                "feature": np.tile(np.asarray(self.features, dtype=object), n),
                "value": np.asarray(self.data, dtype=float).reshape(-1),
                "shap": np.asarray(self.values, dtype=float).reshape(-1),
                "base_value": np.repeat(np.asarray(self.base_values, dtype=float), m),
                "output": self.output,
            },
            columns=PATIENT_COLUMNS,
        )


# ------------------------------------------------------------------ explaining one fold


def explain(
    fitted, X_train: pd.DataFrame, X_test: pd.DataFrame, *, background: int = 50,
    max_evals: int = 500, seed: int = 42,
) -> Explanation:  # fmt: skip
    """SHAP values of ``fitted`` (a pipeline of :mod:`radiotx.models` or
    :mod:`radiotx.fusion`, fitted on ``X_train``) on the test patients ``X_test``, with a
    background of at most ``background`` training patients (seeded). See the module
    docstring for the explainer each model gets."""
    started = time.perf_counter()
    rows = background_rows(X_train.index, background, seed)
    pipeline = plain_pipeline(fitted)
    if pipeline is not None:
        result = _explain_transformed(pipeline, X_train.loc[rows], X_test, max_evals, seed)
    else:
        result = _explain_inputs(fitted, X_train.loc[rows], X_test, max_evals, seed)
    log.info(
        "SHAP (%s explainer, %s): %d test patients x %d features, background of %d "
        "training patients, %.1f s", result.explainer, result.output, len(result.patients),
        len(result.features), len(rows), time.perf_counter() - started,
    )  # fmt: skip
    return result


def background_rows(index: pd.Index, size: int, seed: int) -> pd.Index:
    """A seeded sample of ``size`` training patients (all when fewer), in their order: the
    background must come from the fold's training rows, never from its test rows."""
    if len(index) <= size:
        return pd.Index(index)
    rng = np.random.default_rng(seed)
    return pd.Index(index[np.sort(rng.choice(len(index), size, replace=False))])


def plain_pipeline(fitted):
    """The ``prep -> balance -> clf`` pipeline of a single-modality or early-fusion model
    (also inside a fusion pipeline's ``fusion`` step), or None for late fusion, stacking
    and multiple-kernel learning."""
    model = getattr(fitted, "named_steps", {}).get("fusion", fitted)
    inner = getattr(model, "named_steps", {})
    return model if {"prep", "clf"} <= set(inner) else None


def output_of(model) -> tuple[Callable, str]:
    """The explained output of a binary model: the positive-class probability, or the
    decision function of a model without probabilities (as :func:`radiotx.evaluate.scores`)."""
    classes = getattr(model, "classes_", None)
    if classes is not None and len(classes) != 2:
        raise ValueError(f"SHAP explanations need a binary model, not {len(classes)} classes")
    if hasattr(model, "predict_proba"):
        return (lambda X: np.asarray(model.predict_proba(X))[:, 1]), "probability"
    return (lambda X: np.asarray(model.decision_function(X), dtype=float)), "decision_function"


def _explain_transformed(pipeline, X_background, X_test, max_evals, seed) -> Explanation:
    """Explain the classifier on the transformed inputs it sees: the same function of the
    selected features (imputation, scaling and weighting are per column), cheap to call."""
    prep, clf = pipeline.named_steps["prep"], pipeline.named_steps["clf"]
    features = [str(name) for name in prep.get_feature_names_out()]
    Z_background = np.asarray(prep.transform(X_background), dtype=float)
    Z = np.asarray(prep.transform(X_test), dtype=float)
    names = getattr(clf, "feature_names_in_", None)  # a classifier fitted on a DataFrame
    output, scale = output_of(clf)

    def function(rows):
        return output(pd.DataFrame(rows, columns=names) if names is not None else rows)

    values, base, used = np.zeros((len(Z), len(features))), np.zeros(len(Z)), []
    if type(clf).__name__ in TREES:
        (values[:], base[:]), used = _tree(clf, Z_background, Z, scale), ["tree"]
    elif scale == "decision_function" and hasattr(clf, "coef_"):
        (values[:], base[:]), used = _linear(clf, Z_background, Z), ["linear"]
    # the model-agnostic estimator for the rest: every row without an exact explainer, and
    # rows where Tree SHAP's copy of the trees parts from scikit-learn's (a value within
    # float32 rounding of a split, as an imputed median can be)
    redo = _not_additive(function, Z, values, base) if used else range(len(Z))
    singles = [[j] for j in range(len(features))]
    for i in redo:
        values[i], base[i], name = _shapley(
            function, Z[i], Z_background, singles, max_evals, seed + i
        )
        used += [] if name in used else [name]
    raw = X_test.reindex(columns=features).to_numpy(dtype=float)
    derived = ~np.isin(features, X_test.columns)
    raw[:, derived] = Z[:, derived]
    return Explanation(
        patients=list(map(str, X_test.index)), features=features, values=values, data=raw,
        base_values=base, background=list(map(str, X_background.index)),
        explainer="+".join(used) or "exact", output=scale,
    )  # fmt: skip


def _not_additive(function, Z, values, base, tolerance: float = 1e-6) -> np.ndarray:
    """Rows whose SHAP values and base value do not add up to the model's output."""
    if len(Z) == 0:
        return np.zeros(0, dtype=int)
    gap = np.abs(values.sum(axis=1) + base - function(Z))
    return np.flatnonzero(gap > tolerance)


def _shap():
    """The shap package, imported on first use (about 1.5 s) without the deprecation
    warnings its plotting colours raise on import, which would fill every job's log."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        import shap
    return shap


def _tree(clf, Z_background, Z, scale) -> tuple[np.ndarray, float]:
    """Interventional Tree SHAP (exact, polynomial time) of the positive-class probability."""
    shap = _shap()
    explainer = shap.TreeExplainer(
        clf, data=Z_background, feature_perturbation="interventional",
        model_output="probability" if scale == "probability" else "raw",
    )  # fmt: skip
    values = np.asarray(explainer.shap_values(Z, check_additivity=False), dtype=float)
    base = np.asarray(explainer.expected_value, dtype=float)
    if values.ndim == 3:  # one slice per class: keep the positive class
        values, base = values[..., 1], base.reshape(-1)[1]
    return values.reshape(len(Z), -1), float(base)


def _linear(clf, Z_background, Z) -> tuple[np.ndarray, float]:
    """Exact interventional SHAP of a linear decision function (e.g. a linear SVM)."""
    shap = _shap()
    coef = np.asarray(clf.coef_, dtype=float).reshape(-1)
    intercept = float(np.asarray(clf.intercept_).reshape(-1)[0])
    masker = shap.maskers.Independent(Z_background, max_samples=len(Z_background))
    explainer = shap.LinearExplainer((coef, intercept), masker)
    values = np.asarray(explainer.shap_values(Z), dtype=float).reshape(len(Z), -1)
    return values, float(explainer.expected_value)


def _explain_inputs(fitted, X_background, X_test, max_evals, seed) -> Explanation:
    """Explain a fused model (late fusion, stacking, kernel) as a function of its selected
    input columns, the other columns held at the patient's own values."""
    output, scale = output_of(fitted)
    players = input_players(fitted, list(X_test.columns))
    groups = list(players.values())
    background = X_background.to_numpy(dtype=float)

    def function(rows):
        return output(pd.DataFrame(rows, columns=X_test.columns))

    values, base, explainer = [], [], "exact"
    for i, x in enumerate(X_test.to_numpy(dtype=float)):
        phi, b, explainer = _shapley(function, x, background, groups, max_evals, seed + i)
        values.append(phi)
        base.append(b)
    data = np.full((len(X_test), len(players)), np.nan)
    for j, cols in enumerate(groups):
        if len(cols) == 1:
            data[:, j] = X_test.iloc[:, cols[0]].to_numpy(dtype=float)
    return Explanation(
        patients=list(map(str, X_test.index)), features=list(players),
        values=np.asarray(values, dtype=float).reshape(len(X_test), len(players)), data=data,
        base_values=np.asarray(base, dtype=float), background=list(map(str, X_background.index)),
        explainer=explainer, output=scale,
    )  # fmt: skip


def input_players(fitted, columns: list[str]) -> dict[str, list[int]]:
    """The players of a fused model: each selected feature that is an input column, and
    per modality whose selected features are derived (gene-set scores, principal
    components) one player of its other columns, named ``<modality>:[derived]``."""
    from radiotx import fusion

    position = {name: i for i, name in enumerate(columns)}
    blocks = fusion.fused_model(fitted).blocks
    players: dict[str, list[int]] = {}
    derived: list[str] = []
    for modality, feature in fusion.selected_features(fitted):
        name = f"{modality}{SEPARATOR}{feature}"
        if name in position:
            players.setdefault(name, [position[name]])
        elif modality not in derived:
            derived.append(modality)
    for modality in derived:
        taken = {i for cols in players.values() for i in cols}
        rest = [position[c] for c in blocks[modality] if position[c] not in taken]
        if rest:
            players[f"{modality}{SEPARATOR}{DERIVED}"] = rest
    return players


# The model-agnostic estimator: the interventional Shapley values of shap's Exact and
# Permutation explainers, in NumPy (see the module docstring for why).


def _shapley(function, x, background, groups, max_evals: int, seed: int):
    """Interventional SHAP values of one row ``x`` for the players ``groups`` (lists of
    columns), the other columns held at ``x``: exact when all ``2**m`` coalitions fit in
    ``max_evals`` evaluations (each over every background row), else antithetic
    permutations within them (at least one pair). Both add up exactly to the model's output:
    values + base value = ``function(x)``. Returns values, base value, estimator name."""
    m = len(groups)
    value = _coalition_value(function, x, background, groups)
    if m == 0:
        return np.zeros(0), float(function(x[None])[0]), "exact"
    if 2**m <= max_evals:
        return (*_exact(value, m), "exact")
    return (*_permutation(value, m, max_evals, np.random.default_rng(seed)), "permutation")


def _coalition_value(function, x, background, groups) -> Callable:
    """v(S) for boolean masks S (coalitions x players): the mean output over background rows
    of the row that has ``x``'s values on the players in S and the background row's on the
    others (interventional: the players' joint distribution is not conditioned on)."""
    columns = np.concatenate([np.asarray(g, dtype=int) for g in groups]) if groups else []
    owner = np.repeat(np.arange(len(groups)), [len(g) for g in groups])
    rows_per_call = min(BATCH_ROWS, BATCH_VALUES // max(len(x), 1))
    step = max(1, rows_per_call // len(background))  # coalitions per model call

    def value(masks: np.ndarray) -> np.ndarray:
        out = []
        for start in range(0, len(masks), step):
            chunk = masks[start : start + step][:, owner]  # coalitions x player columns
            rows = np.repeat(x[None], len(chunk) * len(background), axis=0)
            mixed = np.where(chunk[:, None, :], x[columns], background[:, columns][None])
            rows[:, columns] = mixed.reshape(-1, len(columns))
            out.append(np.asarray(function(rows), dtype=float).reshape(len(chunk), -1).mean(1))
        return np.concatenate(out)

    return value


def _exact(value, m: int) -> tuple[np.ndarray, float]:
    """Shapley values from every coalition: sum over S without j of
    |S|! (m - |S| - 1)! / m! (v(S + j) - v(S))."""
    codes = np.arange(2**m)
    masks = ((codes[:, None] >> np.arange(m)) & 1).astype(bool)
    v = value(masks)
    sizes = masks.sum(axis=1)
    weight = np.array([factorial(s) * factorial(m - s - 1) / factorial(m) for s in range(m)])
    phi = np.empty(m)
    for j in range(m):
        without = codes[~masks[:, j]]
        phi[j] = np.sum(weight[sizes[without]] * (v[without | (1 << j)] - v[without]))
    return phi, float(v[0])


def _permutation(value, m: int, max_evals: int, rng) -> tuple[np.ndarray, float]:
    """Shapley values estimated from random orderings of the players, each with its reverse
    (antithetic sampling): a player's value is its mean marginal contribution when added in
    that order. ``max_evals // (2 (m + 1))`` pairs, at least one."""
    pairs = max(1, max_evals // (2 * (m + 1)))
    orders = [o for _ in range(pairs) for p in [rng.permutation(m)] for o in (p, p[::-1])]
    masks = np.zeros((len(orders), m + 1, m), dtype=bool)
    for k, order in enumerate(orders):
        for t, player in enumerate(order):
            masks[k, t + 1 :, player] = True  # from step t + 1 on, the player is in
    v = value(masks.reshape(-1, m)).reshape(len(orders), m + 1)
    phi = np.zeros(m)
    for k, order in enumerate(orders):
        phi[order] += np.diff(v[k])
    return phi / len(orders), float(v[0, 0])


# ------------------------------------------------------------------ across outer folds


def patient_table(parts: Iterable[tuple[int, int, Explanation]]) -> pd.DataFrame:
    """Per-patient SHAP values of every (repeat, fold, explanation): one row per test
    patient and feature the fold's model used."""
    frames = [part.frame(repeat, fold) for repeat, fold, part in parts]
    frames = [frame for frame in frames if len(frame)]
    if not frames:
        return pd.DataFrame(columns=PATIENT_COLUMNS)
    return pd.concat(frames, ignore_index=True)


def _explained(table: pd.DataFrame) -> int:
    """Out-of-fold explanations: (patient, repeat) pairs."""
    return len(table[["patient_id", "repeat"]].drop_duplicates())


def importance(table: pd.DataFrame) -> pd.DataFrame:
    """Global importance: mean |SHAP| of each feature over every out-of-fold patient
    (patients of folds whose model did not use the feature count as 0, so a feature one
    fold happened to select does not look important), with the mean signed SHAP and the
    number of folds whose model used it; ranked."""
    columns = ["rank", "feature", "modality", "mean_abs_shap", "mean_shap", "n_folds", "output"]
    if table.empty:
        return pd.DataFrame(columns=columns)
    n = _explained(table)
    table = table.assign(abs_shap=table["shap"].abs())
    grouped = table.groupby("feature", sort=True)
    out = pd.DataFrame(
        {
            "mean_abs_shap": grouped["abs_shap"].sum() / n,
            "mean_shap": grouped["shap"].sum() / n,
            "n_folds": grouped[["repeat", "fold"]].apply(lambda g: len(g.drop_duplicates())),
            "output": grouped["output"].agg(lambda o: "+".join(sorted(set(o)))),
        }
    ).reset_index()
    out["modality"] = out["feature"].str.split(SEPARATOR, n=1).str[0]
    out = out.sort_values(["mean_abs_shap", "feature"], ascending=[False, True], kind="mergesort")
    out["rank"] = np.arange(1, len(out) + 1)
    return out[columns].reset_index(drop=True)


def fold_top_k(table: pd.DataFrame, k: int) -> dict[tuple[int, int], list[str]]:
    """Each (repeat, fold)'s k features of largest mean |SHAP| on its test patients (only
    features with a non-zero effect; ties by name)."""
    out = {}
    for (repeat, fold), part in table.groupby(["repeat", "fold"], sort=True):
        size = part.assign(abs_shap=part["shap"].abs()).groupby("feature")["abs_shap"].mean()
        size = size[size > 0].reset_index()
        size = size.sort_values(["abs_shap", "feature"], ascending=[False, True], kind="mergesort")
        out[(int(repeat), int(fold))] = list(size["feature"].head(k))
    return out


def mean_pairwise_jaccard(sets: Iterable[Iterable[str]]) -> float:
    """Mean Jaccard index |A & B| / |A | B| over every pair of sets (NaN for fewer than 2):
    1 when every fold's top features are the same, 0 when no two folds share one."""
    sets = [set(s) for s in sets]
    pairs = [len(a & b) / len(a | b) if a | b else 1.0 for a, b in combinations(sets, 2)]
    return float(np.mean(pairs)) if pairs else float("nan")


def stability(table: pd.DataFrame, top_k: int = 10) -> pd.DataFrame:
    """Stability of the top features across outer folds: for each of the ``top_k``
    features of the global ranking, in how many folds' own top ``top_k`` it is; ``jaccard``
    (the same on every row) is the mean pairwise Jaccard index of the folds' top-k sets. An
    explanation that changes from fold to fold describes the folds, not the disease."""
    columns = ["rank", "feature", "mean_abs_shap", "folds_in_top_k", "n_folds", "share", "jaccard"]
    ranked = importance(table).head(top_k)
    if ranked.empty:
        return pd.DataFrame(columns=columns)
    tops = fold_top_k(table, top_k)
    counts = {f: sum(f in top for top in tops.values()) for f in ranked["feature"]}
    out = ranked[["rank", "feature", "mean_abs_shap"]].copy()
    out["folds_in_top_k"] = out["feature"].map(counts).astype(int)
    out["n_folds"] = len(tops)
    out["share"] = out["folds_in_top_k"] / len(tops)
    out["jaccard"] = mean_pairwise_jaccard(tops.values())
    return out[columns].reset_index(drop=True)


def plot_summary(table: pd.DataFrame, path, top: int = 10, title: str = "") -> None:
    """Beeswarm of the ``top`` features of the global ranking: one dot per out-of-fold
    patient whose fold's model used the feature (its SHAP value), coloured by the patient's
    value of the feature (rank within the feature: low blue, high red; grey where missing
    or for a player of several columns)."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable

    from radiotx.plots import _axes, _save

    features = list(importance(table).head(top)["feature"])
    longest = max((len(f) for f in features), default=10)
    fig, ax = _axes((min(16.0, 5.0 + 0.08 * longest), 1.5 + 0.4 * max(len(features), 1)))
    rng = np.random.default_rng(0)
    cmap = colormaps["coolwarm"]
    for position, feature in enumerate(reversed(features)):
        part = table[table["feature"] == feature]
        shade = part["value"].rank(pct=True).to_numpy(dtype=float)
        colours = [cmap(v) if np.isfinite(v) else (0.6, 0.6, 0.6, 1.0) for v in shade]
        jitter = rng.uniform(-0.25, 0.25, len(part))
        ax.scatter(part["shap"], position + jitter, s=10, c=colours, linewidths=0)
    ax.axvline(0, lw=1, color="grey")
    ax.set_yticks(range(len(features)), list(reversed(features)), fontsize="small")
    output = "+".join(sorted(set(table["output"]))) if len(table) else "probability"
    ax.set_xlabel(f"SHAP value (effect on the predicted {output.replace('_', ' ')})")
    if features:
        bar = fig.colorbar(ScalarMappable(cmap=cmap), ax=ax, ticks=[0, 1], fraction=0.04)
        bar.ax.set_yticklabels(["low", "high"], fontsize="small")
        bar.set_label("feature value", fontsize="small")
    else:
        ax.text(0.5, 0.5, "no features explained", ha="center", transform=ax.transAxes)
    _save(fig, ax, path, title)


def fold_explanations(paths: Iterable, model: str) -> list[tuple[int, int, Explanation]]:
    """The (repeat, fold, explanation) of ``model`` in each outer-fold job file."""
    parts = []
    for path in paths:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        part = data["results"][model]
        if part.get("explanation") is None:
            raise ValueError(
                f"{path} has no SHAP explanation of {model!r}. Fix: name it in config "
                "explain.shap and re-run its outer-fold jobs"
            )
        record = part["record"]
        explanation = Explanation.from_dict(part["explanation"])
        parts.append((int(record.get("repeat", 0)), int(record["fold"]), explanation))
    return sorted(parts, key=lambda item: item[:2])


def write(parts, outputs, top_k: int = 10, title: str = "") -> None:
    """The SHAP outputs of one model: ``outputs.importance``, ``.patients``,
    ``.stability`` (TSV) and ``.plot`` (PNG)."""
    table = patient_table(parts)
    for name in ("importance", "patients", "stability"):
        Path(getattr(outputs, name)).parent.mkdir(parents=True, exist_ok=True)
    importance(table).to_csv(outputs.importance, sep="\t", index=False)
    table.to_csv(outputs.patients, sep="\t", index=False)
    stability(table, top_k).to_csv(outputs.stability, sep="\t", index=False)
    plot_summary(table, outputs.plot, top=top_k, title=title)
