"""Leakage canaries: with permuted labels, honest nested CV must score at chance.

The positive control shows the canary has teeth: the same data with feature selection done
once on all patients before cross-validation (the classic leak) scores far above chance.
"""

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.feature_selection import SelectKBest, f_classif

from radiotx import evaluate, models, splits

N_PATIENTS = 60
SEEDS = range(4)


def two_modalities(seed: int):
    """60 patients, a wide 'radiomics-like' block and a narrow block, ~30 % positives."""
    X, y = make_classification(
        n_samples=N_PATIENTS,
        n_features=600,
        n_informative=5,
        n_redundant=0,
        n_clusters_per_class=1,
        class_sep=1.5,
        weights=[0.7],
        random_state=seed,
    )
    columns = [f"wide{models.SEPARATOR}f{i}" for i in range(580)]
    columns += [f"narrow{models.SEPARATOR}g{i}" for i in range(20)]
    index = pd.Index([f"P{i:03d}" for i in range(N_PATIENTS)], name="patient_id")
    X = pd.DataFrame(X, index=index, columns=columns)
    blocks = {
        "wide": [c for c in columns if c.startswith("wide")],
        "narrow": [c for c in columns if c.startswith("narrow")],
    }
    return X, pd.Series(y, index=index, name="y"), blocks


def nested_auc(X, y, blocks, seed, classifier="logreg"):
    folds = splits.make_folds(y, n_splits=5, seed=seed).set_index("patient_id")["fold"]
    pipeline = models.build(blocks, classifier, seed=seed)
    grid = models.grid(blocks, classifier, [5, 20], seed=seed)
    result = evaluate.nested_cv(pipeline, grid, X, y, folds.loc[X.index], seed=seed)
    return result.summary(n_boot=200, seed=seed)["pooled"]["roc_auc"]


@pytest.fixture(scope="module")
def permuted_aucs():
    aucs = []
    for seed in SEEDS:
        X, y, blocks = two_modalities(seed)
        permuted = pd.Series(np.random.default_rng(seed).permutation(y.to_numpy()), index=y.index)
        aucs.append(nested_auc(X, permuted, blocks, seed))
    return np.array(aucs)


def test_permuted_labels_score_at_chance(permuted_aucs):
    assert np.all((permuted_aucs > 0.25) & (permuted_aucs < 0.75)), permuted_aucs
    assert abs(permuted_aucs.mean() - 0.5) < 0.1, permuted_aucs


def test_true_labels_are_learned():
    X, y, blocks = two_modalities(0)
    assert nested_auc(X, y, blocks, 0) > 0.8


def test_selection_before_cv_is_caught_by_the_canary(permuted_aucs):
    """The canary detects the leak it exists for: selecting on all rows first."""
    leaky = []
    for seed in SEEDS:
        X, y, _ = two_modalities(seed)
        permuted = pd.Series(np.random.default_rng(seed).permutation(y.to_numpy()), index=y.index)
        kept = SelectKBest(f_classif, k=20).fit(X, permuted).get_feature_names_out()
        X_leaky = X[kept]
        blocks = {"wide": list(kept)}
        leaky.append(nested_auc(X_leaky, permuted, blocks, seed))
    assert np.mean(leaky) > 0.75 > permuted_aucs.mean() + 0.15, (leaky, permuted_aucs)
