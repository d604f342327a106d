"""Fusion strategies: block weighting, late fusion, stacking, multiple-kernel learning, and
fusion pipelines whose inner CV chooses the strategy, with missing modalities."""

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.utils.estimator_checks import parametrize_with_checks

from radiotx import cohort, evaluate, experiment, fusion, models, selection, splits


def blocks_data(n=120, seed=0, missing=40):
    """Three blocks: ``a`` (300 features, 5 informative, absent for the first ``missing``
    patients), ``b`` (10 features, 2 weakly informative) and ``c`` (50 of noise)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    a = rng.normal(size=(n, 300))
    a[:, :5] += 1.0 * y[:, None]
    b = rng.normal(size=(n, 10))
    b[:, :2] += 0.8 * y[:, None]
    c = rng.normal(size=(n, 50))
    names = {"a": 300, "b": 10, "c": 50}
    blocks = {m: [f"{m}:{i}" for i in range(p)] for m, p in names.items()}
    X = pd.DataFrame(np.hstack([a, b, c]), columns=sum(blocks.values(), []))
    X.iloc[:missing, :300] = np.nan
    return X, y, blocks


SELECT = selection.selector("anova", k=10)


@parametrize_with_checks([fusion.BlockWeight()])
def test_block_weight_is_a_scikit_learn_transformer(estimator, check):
    check(estimator)


def test_block_weight_gives_each_block_the_same_total_variance():
    rng = np.random.default_rng(1)
    wide, narrow = rng.normal(size=(200, 100)), rng.normal(size=(200, 4))
    columns = [f"w:{i}" for i in range(100)] + [f"n:{i}" for i in range(4)]
    X = pd.DataFrame(np.hstack([wide, narrow]), columns=columns)
    blocks = {"w": list(X.columns[:100]), "n": list(X.columns[100:])}
    pipeline = models.build(blocks, "logreg", k=100)
    prep = pipeline.named_steps["prep"].fit(X, rng.integers(0, 2, 200))
    Z = prep.transform(X)
    # each block has the total variance of 20 (the default k) standardised features
    assert Z[:, :100].var(axis=0).sum() == pytest.approx(20.0, rel=1e-6)
    assert Z[:, 100:].var(axis=0).sum() == pytest.approx(20.0, rel=1e-6)
    single = models.build({"w": blocks["w"]}, "logreg").named_steps["prep"]
    assert "weight" not in single.transformers[0][1].named_steps  # one block: no weighting


def test_late_fusion_weights_and_uses_the_modalities_a_patient_has():
    X, y, blocks = blocks_data()
    train = np.arange(len(y)) < 80
    late = fusion.LateFusion(blocks, selector=SELECT, rule="weighted_mean").fit(X[train], y[train])
    assert late.weights_["c"] < 0.15 < late.weights_["a"]  # noise is weighed down
    assert sum(late.weights_.values()) == pytest.approx(1.0)
    # a patient without block a: the b and c members alone decide
    only_bc = X.iloc[:5]  # the first patients lack block a
    p = late.predict_proba(only_bc)
    w = {m: late.weights_[m] for m in ("b", "c")}
    expected = sum(w[m] * late.members_[m].predict_proba(only_bc) for m in w) / sum(w.values())
    np.testing.assert_allclose(p, expected)
    assert roc_auc_score(y[~train], late.predict_proba(X[~train])[:, 1]) > 0.7


def test_late_fusion_rules():
    X, y, blocks = blocks_data(missing=0)
    late = fusion.LateFusion(blocks, selector=SELECT, rule="auto").fit(X, y)
    assert set(late.rule_scores_) == set(fusion.RULES)
    assert late.rule_ == max(late.rule_scores_, key=late.rule_scores_.get)
    vote = fusion.LateFusion(blocks, selector=SELECT, rule="vote").fit(X, y)
    share = vote.predict_proba(X)[:, 1]
    assert set(np.round(share * 3).astype(int)) <= {0, 1, 2, 3}  # shares of three votes
    best = fusion.LateFusion(blocks, selector=SELECT, rule="best").fit(X, y)
    top = max(best.weights_, key=best.weights_.get)
    np.testing.assert_allclose(best.predict_proba(X), best.members_[top].predict_proba(X))
    with pytest.raises(ValueError, match="unknown late-fusion rule"):
        fusion.LateFusion(blocks, selector=SELECT, rule="median").fit(X, y)


def test_stacking_meta_learner_sees_only_out_of_fold_predictions():
    X, y, blocks = blocks_data()
    stack = fusion.StackedFusion(blocks, selector=SELECT, cv=3, seed=7).fit(X, y)
    # rebuild the meta-features from cross_val_predict with the same folds
    columns = []
    prior = np.bincount(y) / len(y)
    for name, cols in blocks.items():
        rows = fusion.present(X, cols)
        member = fusion.member(name, cols, selector=SELECT, seed=7)
        folds = StratifiedKFold(3, shuffle=True, random_state=7)
        p = np.tile(prior, (len(y), 1))
        p[rows] = cross_val_predict(member, X[rows], y[rows], cv=folds, method="predict_proba")
        p = np.clip(p, 1e-6, 1 - 1e-6)
        columns.append(np.log(p[:, 1] / p[:, 0]))
    meta = LogisticRegression(C=1.0, max_iter=5000, random_state=7).fit(np.column_stack(columns), y)
    np.testing.assert_allclose(stack.meta_.coef_, meta.coef_, rtol=1e-6)
    weights = stack.modality_weights_
    assert weights["a"] > weights["c"]


def test_stacking_on_permuted_labels_is_at_chance():
    """Leakage canary: in-sample member predictions would make the meta-learner trust
    overfitted members; out-of-fold ones keep a permuted outcome at chance."""
    X, y, blocks = blocks_data(n=150, missing=0, seed=3)
    y = np.random.default_rng(5).permutation(y)
    outer = StratifiedKFold(3, shuffle=True, random_state=0)
    stack = fusion.StackedFusion(blocks, selector=SELECT, clf=models.classifier("rf")[0])
    score = cross_val_predict(stack, X, y, cv=outer, method="predict_proba")[:, 1]
    assert abs(roc_auc_score(y, score) - 0.5) < 0.15


def test_kernel_weights_follow_the_informative_views_and_the_kernel_is_psd():
    X, y, blocks = blocks_data()
    train = np.arange(len(y)) < 80
    mkl = fusion.MultipleKernel(blocks, selector=SELECT, cv=3).fit(X[train], y[train])
    assert mkl.weights_["a"] > mkl.weights_["c"]
    assert mkl.weights_["c"] < 0.2
    kernel = mkl._test_kernel(X[train])
    assert np.linalg.eigvalsh((kernel + kernel.T) / 2).min() > -1e-8
    assert roc_auc_score(y[~train], mkl.decision_function(X[~train])) > 0.7


def test_block_importance_finds_the_informative_block():
    X, y, blocks = blocks_data(missing=0)
    train = np.arange(len(y)) < 80
    late = fusion.LateFusion(blocks, selector=SELECT).fit(X[train], y[train])
    parts = fusion.contribution(late, X[~train], y[~train], blocks, seed=0)
    assert parts["a"]["importance"] > parts["c"]["importance"]
    assert parts["a"]["importance"] > 0.05
    assert set(parts["a"]) == {"weight", "importance"}


def fusion_cohort(n=90, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    ids = [f"P{i:03d}" for i in range(n)]
    a = rng.normal(size=(n, 200))
    a[:, :5] += 1.0 * y[:, None]
    b = rng.normal(size=(n, 8))
    b[:, :2] += 0.8 * y[:, None]
    frames = {
        "a": pd.DataFrame(a, index=ids, columns=[f"f{i}" for i in range(200)]).iloc[30:],
        "b": pd.DataFrame(b, index=ids, columns=[f"g{i}" for i in range(8)]),
    }
    labels = pd.Series(y.astype(float), index=ids)
    return cohort.build(frames, {"response": labels}), labels


def test_a_fusion_pipeline_chooses_its_strategy_in_the_inner_cv():
    mdata, labels = fusion_cohort()
    folds = splits.make_splits(labels, n_splits=3, seed=1)
    settings = experiment.Settings(
        k_features=(5,), balancers=("class_weight",), candidates=("logreg",),
        strategies=fusion.STRATEGIES, n_boot=50, choice="best",  # the best inner score
    )  # fmt: skip
    job = experiment.procedure(
        mdata, folds, endpoint="response", pipeline="ab", modalities=["a", "b"],
        settings=settings,
    )  # fmt: skip
    assert job.meta["availability"] == {"a+b": 60, "b": 30}
    assert set(job.spaces) == set(fusion.STRATEGIES) and job.union == models.SELECTED
    results = job.evaluate()
    assert set(results) == {*fusion.STRATEGIES, models.SELECTED}
    for name, result in results.items():
        # every patient is scored, those without block a too
        assert len(result.predictions) == 90
        for record in result.folds:
            assert record["strategy"] == (record["strategy"] if name == "selected" else name)
            assert set(record["contribution"]) == {"a", "b"}
            if record["strategy"] == "late":
                assert record["rule"] in fusion.RULES
            if record["strategy"] == "single":  # one block alone, weighted 1
                weights = {m: c["weight"] for m, c in record["contribution"].items()}
                assert weights[record["modality"]] == 1 and sum(weights.values()) == 1
        assert set(result.selected["modality"]) <= {"a", "b"}
        json.dumps(result.folds)  # the fold jobs store their records as JSON
        assert experiment.pooled_auc(result.predictions) > 0.65
    chosen = [r["strategy"] for r in results["selected"].folds]
    inner = {name: [r["inner_roc_auc"] for r in results[name].folds] for name in fusion.STRATEGIES}
    for fold, strategy in enumerate(chosen):
        best = max(inner[s][fold] for s in fusion.STRATEGIES)
        assert inner[strategy][fold] == pytest.approx(best)
    refit = job.refit()
    assert fusion.strategy_of(refit["late"]) == "late"
    for name, model in refit.items():  # the columns a final model needs, for its signature
        assert list(model.feature_names_in_) == list(job.X.columns), name
    scores = evaluate.scores(refit["selected"], job.X)
    assert len(scores) == len(job.X)


def test_an_uninformative_block_does_not_drag_fusion_below_the_informative_one():
    """A 10-feature informative block next to 1,000 features of noise: the weighted
    strategies stay level with the informative block alone; early fusion, which gives the
    noise block as much room as the informative one, loses some; concatenating every
    feature unselected and unweighted loses most."""
    rng = np.random.default_rng(11)
    n = 160
    y = rng.integers(0, 2, n)
    informative = rng.normal(size=(n, 10)) + 0.6 * y[:, None]
    noise = rng.normal(size=(n, 1000))
    blocks = {
        "small": [f"small:{i}" for i in range(10)],
        "noise": [f"noise:{i}" for i in range(1000)],
    }
    X = pd.DataFrame(np.hstack([informative, noise]), columns=blocks["small"] + blocks["noise"])
    outer = StratifiedKFold(4, shuffle=True, random_state=0)

    def auc(model, columns):
        score = cross_val_predict(model, X[columns], y, cv=outer, method="predict_proba")
        return roc_auc_score(y, score[:, 1])

    everything = blocks["small"] + blocks["noise"]
    alone = auc(models.build({"small": blocks["small"]}, "logreg", k=10), blocks["small"])
    anova = selection.selector("anova", k=10)
    late = auc(fusion.LateFusion(blocks, selector=anova, rule="weighted_mean"), everything)
    kernel = cross_val_predict(
        fusion.MultipleKernel(blocks, selector=anova), X, y, cv=outer, method="decision_function"
    )
    early = auc(models.build(blocks, "logreg", k=10), everything)
    plain = auc(models.build({"all": everything}, "logreg", k=1010), everything)
    assert alone > 0.8
    assert late > alone - 0.03 and roc_auc_score(y, kernel) > alone - 0.03
    assert plain < early < alone


def test_the_selected_fusion_keeps_the_informative_modality_when_the_other_is_noise():
    """Early fusion of 10 informative features with 1,000 of noise is diluted even with
    block weighting; the inner CV's choice among strategies then keeps the informative
    modality alone and scores as well as its own pipeline."""
    rng = np.random.default_rng(5)
    n = 120
    y = rng.integers(0, 2, n)
    ids = [f"P{i:03d}" for i in range(n)]
    frames = {
        "clin": pd.DataFrame(rng.normal(size=(n, 10)) + 0.6 * y[:, None], index=ids),
        "noise": pd.DataFrame(rng.normal(size=(n, 1000)), index=ids),
    }
    frames = {m: f.rename(columns=lambda i, m=m: f"{m}{i}") for m, f in frames.items()}
    labels = pd.Series(y.astype(float), index=ids)
    mdata = cohort.build(frames, {"response": labels})
    folds = splits.make_splits(labels, n_splits=4, seed=1)
    settings = experiment.Settings(
        k_features=(10,), balancers=("class_weight",), candidates=("logreg",), n_boot=50
    )

    def scores(modalities, strategies=()):
        job = experiment.procedure(
            mdata, folds, endpoint="response", pipeline="p", modalities=modalities,
            settings=replace(settings, strategies=strategies),
        )  # fmt: skip
        return job.evaluate()

    alone = experiment.pooled_auc(scores(["clin"])["logreg"].predictions)
    fused = scores(["clin", "noise"], ("early", "single"))
    early, selected = (experiment.pooled_auc(fused[m].predictions) for m in ("early", "selected"))
    assert alone > 0.8 and early < alone - 0.1
    assert selected >= alone - 0.02
    assert {(r["strategy"], r["modality"]) for r in fused["selected"].folds} == {("single", "clin")}
