"""Tests for metrics, bootstrap confidence intervals and nested cross-validation."""

from __future__ import annotations

import re

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, log_loss, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC
from sklearn.utils.validation import check_is_fitted, validate_data

from radiotx import calibration, cohort, evaluate, experiment, final, models, splits
from radiotx.errors import InputError

# -------------------------------------------------------------------------------- metrics


def test_metrics_hand_example():
    y_true = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    score = [0.9, 0.8, 0.3, 0.6, 0.7, 0.2, 0.1, 0.4, 0.05, 0.5]
    y_pred = [1, 1, 0, 1, 1, 0, 0, 0, 0, 1]
    result = evaluate.metrics(y_true, score, y_pred)

    assert set(result) == set(evaluate.METRICS)
    assert all(isinstance(v, float) for v in result.values())
    # tp=3, fn=1, tn=4, fp=2
    assert result["sensitivity"] == pytest.approx(3 / 4)
    assert result["specificity"] == pytest.approx(4 / 6)
    assert result["balanced_accuracy"] == pytest.approx((3 / 4 + 4 / 6) / 2)
    assert result["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    # Pairs (positive, negative) ordered correctly: 0.9, 0.8 beat all six; 0.6 beats five;
    # 0.3 beats three (0.2, 0.1, 0.05): 20 of 24.
    assert result["roc_auc"] == pytest.approx(20 / 24)
    assert result["roc_auc"] == pytest.approx(roc_auc_score(y_true, score))


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_metrics_one_class():
    result = evaluate.metrics([0, 0, 0], [0.1, 0.5, 0.9], [0, 1, 0])
    assert np.isnan(result["roc_auc"])
    assert np.isnan(result["sensitivity"])
    assert result["specificity"] == pytest.approx(2 / 3)


def test_scores_prefers_probability_else_decision_function():
    X, y = make_classification(n_samples=40, n_features=4, random_state=0)
    logreg = LogisticRegression().fit(X, y)
    np.testing.assert_allclose(evaluate.scores(logreg, X), logreg.predict_proba(X)[:, 1])
    svm = SVC().fit(X, y)
    np.testing.assert_allclose(evaluate.scores(svm, X), svm.decision_function(X))


# ----------------------------------------------------------------------------- bootstrap


def test_replicate_metrics_match_sklearn_with_ties():
    score_pos = np.array(
        [
            [0.9, 0.5, 0.5, 0.2],
            [0.3, 0.3, 0.3, 0.3],
            [0.1, 0.7, 0.7, 0.4],
            [0.6, 0.6, 0.8, 0.8],
        ]
    )
    score_neg = np.array(
        [
            [0.5, 0.1, 0.2, 0.5, 0.0],
            [0.3, 0.3, 0.3, 0.3, 0.3],
            [0.7, 0.4, 0.1, 0.9, 0.7],
            [0.2, 0.6, 0.6, 0.1, 0.8],
        ]
    )
    pred_pos = np.array([[1, 1, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0], [1, 0, 1, 1]])
    pred_neg = np.array([[0, 0, 0, 1, 1], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1], [0, 1, 0, 0, 0]])
    draws = evaluate._replicate_metrics(score_pos, score_neg, pred_pos, pred_neg)

    assert set(draws) == set(evaluate.METRICS)
    y = np.r_[np.ones(4, int), np.zeros(5, int)]
    for r in range(4):
        score = np.r_[score_pos[r], score_neg[r]]
        pred = np.r_[pred_pos[r], pred_neg[r]]
        assert draws["roc_auc"][r] == pytest.approx(roc_auc_score(y, score))
        assert draws["balanced_accuracy"][r] == pytest.approx(balanced_accuracy_score(y, pred))
        expected = evaluate.metrics(y, score, pred)
        for name in evaluate.METRICS:
            assert draws[name][r] == pytest.approx(expected[name]), (r, name)
    assert draws["roc_auc"][1] == 0.5  # all scores tied


def realistic_predictions(n: int = 80, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    score = 1 / (1 + np.exp(-(1.2 * y + rng.normal(size=n) - 0.6)))
    score = np.round(score, 2)  # some ties
    return pd.DataFrame(
        {
            "patient_id": [f"P{i:03d}" for i in range(n)],
            "fold": np.arange(n) % 5,
            "y_true": y,
            "score": score,
            "y_pred": (score > 0.5).astype(int),
        }
    )


def test_bootstrap_ci_brackets_the_pooled_metric():
    predictions = realistic_predictions()
    ci = evaluate.bootstrap_ci(predictions, n_boot=500, seed=1)
    pooled = evaluate.metrics(predictions["y_true"], predictions["score"], predictions["y_pred"])
    assert set(ci) == set(evaluate.METRICS)
    for name, (low, high) in ci.items():
        assert low <= pooled[name] <= high, name
        assert 0.0 <= low < high <= 1.0, name
        # A 95 % interval on 80 patients is neither degenerate nor vacuous.
        assert 0.02 < high - low < 0.6, name
    narrow = evaluate.bootstrap_ci(predictions, n_boot=500, seed=1, level=0.5)
    for name in ci:
        assert ci[name][0] <= narrow[name][0] <= narrow[name][1] <= ci[name][1]


def test_bootstrap_ci_deterministic_for_seed():
    predictions = realistic_predictions()
    a = evaluate.bootstrap_ci(predictions, n_boot=200, seed=7)
    assert a == evaluate.bootstrap_ci(predictions, n_boot=200, seed=7)
    assert a != evaluate.bootstrap_ci(predictions, n_boot=200, seed=8)


def test_bootstrap_resamples_within_class():
    """Every replicate keeps both classes, so no AUC replicate is undefined."""
    predictions = realistic_predictions(n=12, seed=3)
    predictions.loc[:, "y_true"] = [1] + [0] * 11
    ci = evaluate.bootstrap_ci(predictions, n_boot=300, seed=0)
    assert np.isfinite(ci["roc_auc"]).all()
    # With a single positive, the sensitivity of every replicate equals that patient's.
    assert ci["sensitivity"][0] == ci["sensitivity"][1] == predictions.loc[0, "y_pred"]


# ---------------------------------------------------------------------------- nested CV

FIT_INDICES: list[pd.Index] = []


class FitRecorder(TransformerMixin, BaseEstimator):
    """Pass-through transformer that records the row index of every ``fit`` call."""

    def fit(self, X, y=None):
        FIT_INDICES.append(pd.Index(X.index))
        validate_data(self, X, reset=True)
        return self

    def transform(self, X):
        check_is_fitted(self)
        validate_data(self, X, reset=False)
        return X


@pytest.fixture(scope="module")
def informative():
    X, y = make_classification(
        n_samples=60,
        n_features=30,
        n_informative=6,
        n_redundant=0,
        weights=[0.65],
        class_sep=1.5,
        shift=3.0,
        random_state=0,
    )
    index = pd.Index([f"P{i:02d}" for i in range(60)], name="patient_id")
    columns = [f"a{models.SEPARATOR}f{i}" for i in range(15)]
    columns += [f"b{models.SEPARATOR}g{i}" for i in range(15)]
    X = pd.DataFrame(X, index=index, columns=columns)
    y = pd.Series(y, index=index, name="response")
    blocks = {m: [c for c in columns if c.startswith(m)] for m in ("a", "b")}
    fold = splits.make_folds(y, n_splits=4, seed=0).set_index("patient_id")["fold"]
    return X, y, fold.loc[X.index], blocks


@pytest.fixture(scope="module")
def nested_result(informative):
    X, y, fold, blocks = informative
    pipeline = models.build(blocks, "logreg", seed=0)
    space = models.grid(blocks, "logreg", [5, 10])
    result = evaluate.nested_cv(
        pipeline, space, X, y, fold, inner_splits=3, seed=0, selected=models.selected_features
    )
    return result


def test_nested_cv_scores_informative_data(nested_result):
    pooled = nested_result.summary(n_boot=200, seed=0)["pooled"]
    assert pooled["roc_auc"] > 0.8
    assert pooled["balanced_accuracy"] > 0.7


def test_nested_cv_predicts_every_patient_once_in_its_fold(informative, nested_result):
    X, y, fold, _ = informative
    predictions = nested_result.predictions
    assert list(predictions.columns) == [
        "patient_id",
        "repeat",
        "fold",
        "y_true",
        "score",
        "y_pred",
    ]
    assert predictions["patient_id"].is_unique
    assert set(predictions["patient_id"]) == set(X.index)
    by_patient = predictions.set_index("patient_id")
    pd.testing.assert_series_equal(
        by_patient["fold"].loc[X.index], fold, check_names=False, check_dtype=False
    )
    np.testing.assert_array_equal(by_patient["y_true"].loc[X.index], y)
    assert set(predictions["y_pred"]) <= {0, 1}
    assert predictions["score"].between(0, 1).all()


def chosen_k(selector: str) -> int:
    """The number of features of a chosen selector, from its recorded repr."""
    return int(re.search(r"k=(\d+)", selector)[1])


def test_nested_cv_fold_records(nested_result, informative):
    _, _, fold, blocks = informative
    summary = nested_result.summary(n_boot=200, seed=0)
    assert [r["fold"] for r in nested_result.folds] == sorted(fold.unique())
    assert {r["repeat"] for r in nested_result.folds} == {0}
    assert sum(r["n_test"] for r in nested_result.folds) == len(fold)
    for record in nested_result.folds:
        params = record["best_params"]
        assert params["clf__C"] in (0.01, 0.1, 1.0)
        assert chosen_k(params["prep__a__select"]) in (5, 10)
        assert 0.0 <= record["inner_roc_auc"] <= 1.0
        # The fold's test metrics are those of its rows in the pooled predictions.
        rows = nested_result.predictions[nested_result.predictions["fold"] == record["fold"]]
        assert record["roc_auc"] == pytest.approx(roc_auc_score(rows["y_true"], rows["score"]))
    assert set(summary) == {"folds", "pooled", "mean", "sd", "ci95", "ci95_t"}
    low, high = summary["ci95_t"]["roc_auc"]
    assert low < summary["mean"]["roc_auc"] < high
    assert {"calibration_slope", "calibration_intercept"} <= set(summary["pooled"])
    assert summary["mean"]["roc_auc"] == pytest.approx(
        np.mean([r["roc_auc"] for r in nested_result.folds])
    )
    selected = nested_result.selected
    assert list(selected.columns) == ["fold", "modality", "feature"]
    per_block = selected.groupby(["fold", "modality"]).size()
    for (k, modality), count in per_block.items():
        chosen = nested_result.folds[k]["best_params"][f"prep__{modality}__select"]
        assert count == chosen_k(chosen)
    assert set(selected["modality"]) == set(blocks)


def test_nested_cv_never_fits_on_outer_test_rows(informative):
    X, y, fold, _ = informative
    pipeline = Pipeline([("record", FitRecorder()), ("clf", LogisticRegression())])
    space = {"clf__C": [0.1, 1.0]}
    inner_splits = 3
    FIT_INDICES.clear()
    evaluate.nested_cv(pipeline, space, X, y, fold, inner_splits=inner_splits, seed=0)

    folds = sorted(fold.unique())
    fits_per_fold = len(space["clf__C"]) * inner_splits + 1  # inner fits + the refit
    assert len(FIT_INDICES) == fits_per_fold * len(folds)
    for i, k in enumerate(folds):
        test_rows = set(fold.index[fold == k])
        train_rows = set(fold.index[fold != k])
        calls = FIT_INDICES[i * fits_per_fold : (i + 1) * fits_per_fold]
        for index in calls:
            assert not test_rows & set(index), f"outer fold {k} fitted on its test rows"
            assert set(index) <= train_rows
        # The refit of the tuned pipeline uses every training row of the fold.
        assert set(calls[-1]) == train_rows
        assert len(calls[-1]) == len(train_rows)


def test_fit_recorder_is_transparent(informative):
    X, y, _, _ = informative
    FIT_INDICES.clear()
    recorder = FitRecorder().fit(X.iloc[:10], y.iloc[:10])
    assert recorder.n_features_in_ == X.shape[1]
    assert list(FIT_INDICES[0]) == list(X.index[:10])
    assert recorder.transform(X) is X


def test_tune_refits_best_on_all_rows(informative):
    from sklearn.model_selection import StratifiedKFold

    X, y, _, blocks = informative
    search = evaluate.tune(
        models.build(blocks, "logreg", seed=0),
        models.grid(blocks, "logreg", [5]),
        X,
        y,
        StratifiedKFold(3, shuffle=True, random_state=0),
    )
    assert search.scoring == "roc_auc"
    assert search.best_estimator_.named_steps["prep"].n_features_in_ == X.shape[1]
    assert len(search.cv_results_["params"]) == 3


def test_smallest_inner_class_counts_every_inner_training_set():
    y = pd.Series([1] * 6 + [0] * 14, index=[f"P{i:02d}" for i in range(20)])
    folds = pd.Series(np.arange(20) % 2, index=y.index)
    fewest = evaluate.smallest_inner_class(y, folds, n_splits=3, seed=0)
    by_hand = 20
    for k in (0, 1):
        train = y[folds != k]
        for inner, _ in evaluate.inner_cv(k, 3, 0).split(train.to_frame(), train):
            by_hand = min(by_hand, int(train.iloc[inner].value_counts().min()))
    assert fewest == by_hand == 2


def test_too_few_minority_patients_for_smote_is_a_clear_error():
    from radiotx import experiment

    y = pd.Series([1] * 6 + [0] * 14, index=[f"P{i:02d}" for i in range(20)])
    folds = pd.Series(np.arange(20) % 2, index=y.index)
    with pytest.raises(ValueError, match=r"response/radiomics: .* only 2 .*Fix: lower"):
        experiment.check_smote(y, folds, experiment.Settings(seed=0), "response/radiomics")
    experiment.check_smote(y, folds, experiment.Settings(seed=0, smote_neighbors=1), "ok")


# --------------------------------------------------------------------------- calibration


def test_f1_and_brier_by_hand():
    y = [1, 1, 0, 0]
    result = evaluate.metrics(y, [0.9, 0.4, 0.2, 0.6], [1, 0, 0, 1])
    assert result["f1"] == pytest.approx(0.5)  # tp 1, fp 1, fn 1
    assert result["brier"] == pytest.approx((0.01 + 0.36 + 0.04 + 0.36) / 4)
    assert np.isnan(evaluate.metrics(y, [3.0, -1, 0, 2], [1, 0, 0, 1], probability=False)["brier"])


def test_calibration_slope_and_intercept():
    rng = np.random.default_rng(0)
    lp = rng.normal(0, 1.5, 20_000)
    y = (rng.random(lp.size) < 1 / (1 + np.exp(-lp))).astype(int)
    calibrated = evaluate.calibration(y, 1 / (1 + np.exp(-lp)))
    assert calibrated["calibration_slope"] == pytest.approx(1, abs=0.05)
    assert calibrated["calibration_intercept"] == pytest.approx(0, abs=0.05)
    # predictions twice as extreme as the truth (the signature of overfitting): slope 1/2
    extreme = evaluate.calibration(y, 1 / (1 + np.exp(-2 * lp)))
    assert extreme["calibration_slope"] == pytest.approx(0.5, abs=0.03)
    reference = LogisticRegression(C=np.inf).fit((2 * lp)[:, None], y)
    assert extreme["calibration_slope"] == pytest.approx(reference.coef_[0, 0], rel=1e-4)
    # risk underestimated throughout: positive intercept
    low = evaluate.calibration(y, 1 / (1 + np.exp(-(lp - 1))))
    assert low["calibration_intercept"] == pytest.approx(1, abs=0.06)


def test_corrected_t_ci_is_wider_than_the_naive_one():
    from scipy import stats

    values = np.array([0.71, 0.78, 0.69, 0.83, 0.75])
    low, high = evaluate.corrected_t_ci(values, n_test=20, n_train=80)
    naive = stats.t.interval(0.95, 4, loc=values.mean(), scale=stats.sem(values))
    assert low < naive[0] and high > naive[1]
    # variance factor 1/5 + 20/80 = 0.45 instead of 0.2: the half-width grows by 1.5
    assert (high - low) / (naive[1] - naive[0]) == pytest.approx(1.5)


def test_learning_curve_rises_with_training_size():
    X, y = make_classification(
        n_samples=150, n_features=40, n_informative=5, class_sep=0.8, random_state=4
    )
    index = pd.Index([f"P{i:03d}" for i in range(150)], name="patient_id")
    features = pd.DataFrame(X, index=index, columns=[f"f{i}" for i in range(40)])
    labels = pd.Series(y, index=index, dtype=float)
    mdata = cohort.build({"a": features}, {"response": labels})
    table = splits.make_splits(labels, n_splits=3, seed=0)
    settings = experiment.Settings(seed=0, k_features=(5,), candidates=("logreg", "knn"))
    job = experiment.procedure(
        mdata, table, endpoint="response", pipeline="a", modalities=["a"], settings=settings
    )
    curve = job.learning_curve([0.2])
    full = job.curve_points(job.evaluate(), 1.0)
    assert set(curve["model"]) == {"logreg", "knn", "selected"}
    assert (curve["n_train"] == 20).all() and (full["n_train"] == 100).all()
    assert set(curve["metric"]) == {"roc_auc"}
    both = pd.concat([curve, full]).pivot(index="model", columns="fraction", values="score")
    assert (both[1.0] > both[0.2]).all() and (both[0.2] > 0.5).all()


def test_corrected_t_ci_stays_within_the_metric_range():
    low, high = evaluate.corrected_t_ci([0.9, 1.0, 0.95, 1.0], n_test=10, n_train=30)
    assert high == 1.0 and 0.5 < low < 0.95


def test_shared_search_makes_the_same_choices_as_separate_searches(informative):
    """Caching the shared preprocessing changes the cost, not one prediction."""
    X, y, fold, blocks = informative
    pipeline = models.build(blocks, models.SELECTED, seed=0)
    spaces = {
        name: models.grid(blocks, models.SELECTED, [5, 10], seed=0, candidates=(name,))
        for name in ("logreg", "knn")
    }
    kwargs = dict(inner_splits=3, seed=0, union=models.SELECTED, selected=models.selected_features)
    shared = evaluate.nested_cv_each(pipeline, spaces, X, y, fold, share=True, **kwargs)
    separate = evaluate.nested_cv_each(pipeline, spaces, X, y, fold, share=False, **kwargs)
    assert set(shared) == {"logreg", "knn", models.SELECTED}
    for name, result in shared.items():
        pd.testing.assert_frame_equal(result.predictions, separate[name].predictions)
        pd.testing.assert_frame_equal(result.selected, separate[name].selected)
        for a, b in zip(result.folds, separate[name].folds, strict=True):
            assert a["best_params"] == b["best_params"]
            assert a["inner_roc_auc"] == pytest.approx(b["inner_roc_auc"])
    # the selected model is, fold by fold, the classifier with the best inner score
    for k, record in enumerate(shared[models.SELECTED].folds):
        best = max(("logreg", "knn"), key=lambda n: shared[n].folds[k]["inner_roc_auc"])
        assert record["inner_roc_auc"] == shared[best].folds[k]["inner_roc_auc"]
        assert record["best_params"]["clf"] == shared[best].folds[k]["best_params"]["clf"]


def test_repeated_outer_cv_averages_over_repeats(informative):
    X, y, _, blocks = informative
    table = splits.make_splits(y, n_splits=4, repeats=2, seed=0)
    pipeline = models.build(blocks, "logreg", seed=0)
    spaces = {"logreg": models.grid(blocks, "logreg", [5])}
    parts = []
    for repeat in splits.repeat_ids(table):
        fold = splits.outer(table, repeat).loc[X.index]
        for k in range(4):
            part = evaluate.evaluate_fold(pipeline, spaces, X, y, fold, k, seed=0, repeat=repeat)
            # each fold travels from its job as JSON
            parts.append(evaluate.FoldResult.from_dict(part["logreg"].to_dict()))
    combined = evaluate.NestedCVResult.combine(parts[::-1])
    assert len(combined.predictions) == 2 * len(X) and len(combined.folds) == 8
    assert [(r["repeat"], r["fold"]) for r in combined.folds][:5] == [
        (0, 0), (0, 1), (0, 2), (0, 3), (1, 0),
    ]  # fmt: skip
    summary = combined.summary(n_boot=200, seed=0)
    assert summary["repeats"] == 2
    per_repeat = [
        evaluate.within_fold_auc(p["y_true"], p["score"], p["fold"])
        for _, p in combined.predictions.groupby("repeat")
    ]
    assert per_repeat[0] != per_repeat[1]
    assert summary["pooled"]["roc_auc"] == pytest.approx(np.mean(per_repeat))
    low, high = summary["ci95"]["roc_auc"]
    assert low < summary["pooled"]["roc_auc"] < high
    # one repeat alone: the same interval as without a repeat column
    alone = combined.predictions[combined.predictions["repeat"] == 0]
    assert evaluate.bootstrap_ci(alone, n_boot=200, seed=0) == evaluate.bootstrap_ci(
        alone.drop(columns="repeat"), n_boot=200, seed=0
    )


@pytest.fixture(scope="module")
def three_classes():
    """150 patients of three classes; 30 features, 6 informative."""
    X, y = make_classification(
        n_samples=150, n_features=30, n_informative=6, n_classes=3, n_clusters_per_class=1,
        class_sep=1.2, random_state=2,
    )  # fmt: skip
    index = pd.Index([f"P{i:03d}" for i in range(150)], name="patient_id")
    names = np.array(["adeno", "large", "squamous"])[y]
    table = pd.DataFrame({"histology": names}, index=index)
    codes, classes = cohort.class_labels(table, "histology")
    features = pd.DataFrame(X, index=index, columns=[f"f{i}" for i in range(30)])
    mdata = cohort.build({"a": features}, {"histology": codes}, {"histology__class": classes})
    folds = splits.make_splits(codes, n_splits=3, holdout=0.2, seed=0)
    settings = experiment.Settings(
        seed=0, k_features=(5, 10), candidates=("logreg", "svm"), n_boot=200
    )
    job = experiment.procedure(
        mdata, folds, endpoint="histology", pipeline="a", modalities=["a"], settings=settings
    )
    return mdata, folds, job, job.evaluate()


def test_multiclass_endpoint_is_scored_by_macro_one_vs_rest_auc(three_classes, tmp_path):
    _, _, job, results = three_classes
    assert job.meta["kind"] == "multiclass" and job.meta["n_patients"] == 120
    assert job.meta["classes"] == {"0": "adeno", "1": "large", "2": "squamous"}
    assert set(results) == {"logreg", "svm", "selected"}
    for name, result in results.items():
        summary = experiment.write_model(result, job.meta, name, job.settings, tmp_path / name)
        pooled = summary["pooled"]
        assert pooled["roc_auc"] > 0.85 and pooled["balanced_accuracy"] > 0.6, name
        assert np.isnan(pooled["sensitivity"]) and "calibration_slope" not in pooled
        low, high = summary["ci95"]["roc_auc"]
        assert low < pooled["roc_auc"] < high
        predictions = pd.read_csv(tmp_path / name / "predictions.tsv", sep="\t")
        assert {"score_0", "score_1", "score_2"} <= set(predictions.columns)
        assert (tmp_path / name / "performance.png").stat().st_size > 0
    # logistic regression's class probabilities sum to one; the AUC is their macro mean
    p = results["logreg"].predictions
    scores = p[["score_0", "score_1", "score_2"]].to_numpy()
    np.testing.assert_allclose(scores.sum(axis=1), 1.0)
    per_class = []  # each class against the rest, over the pairs within each outer fold
    for k in range(3):
        folds = [(p["fold"] == f).to_numpy() for f in sorted(p["fold"].unique())]
        weights = [(p["y_true"][r] == k).sum() * (p["y_true"][r] != k).sum() for r in folds]
        aucs = [roc_auc_score(p["y_true"][r] == k, scores[r, k]) for r in folds]
        per_class.append(np.average(aucs, weights=weights))
    assert experiment.pooled_auc(p) == pytest.approx(np.mean(per_class))


def test_multiclass_hold_out_and_permutation(three_classes):
    mdata, folds, job, _ = three_classes
    final = job.refit()
    summary, predictions = experiment.score_holdout(
        final["selected"], mdata, folds, endpoint="histology", modalities=["a"],
        settings=job.settings,
    )  # fmt: skip
    assert summary["n_patients"] == len(predictions) == 30
    assert summary["metrics"]["roc_auc"] > 0.8
    null = experiment.permuted(job, 0)
    assert all(0.3 < auc < 0.7 for auc in null.values()), null


def test_a_multiclass_svm_gives_recalibrated_probabilities(three_classes, tmp_path):
    """An SVM's one-vs-rest decision values are recalibrated per class on its final
    configuration's cross-fitted scores: on the locked hold-out patients its probabilities
    lose less than half the log-loss of a softmax of the decision values."""
    mdata, folds, job, results = three_classes
    tuned = job.final_models()
    assert tuned["logreg"].cross_fitted is None  # its own probabilities
    cross = tuned["svm"].cross_fitted
    assert {"score_0", "score_1", "score_2"} <= set(cross.columns) and len(cross) == 120
    experiment.write_model(
        results["svm"], job.meta, "svm", job.settings, tmp_path, tuned=tuned["svm"]
    )
    model = joblib.load(tmp_path / "model.joblib")
    X, y, _ = experiment.design_matrix(mdata, ["a"], "histology", splits.holdout_patients(folds))
    probability = model.predict_proba(X)
    np.testing.assert_allclose(probability.sum(axis=1), 1.0)
    softmax = np.exp(model.scores(X)) / np.exp(model.scores(X)).sum(axis=1, keepdims=True)
    labels = [0, 1, 2]
    assert log_loss(y, probability, labels=labels) < 0.6 * log_loss(y, softmax, labels=labels)


def test_class_labels_name_the_classes_and_skip_missing_cells():
    table = pd.DataFrame({"grade": ["G1", "G2 ", "G3", "Unknown", None, "n.d."]})
    codes, classes = cohort.class_labels(table, "grade", missing=["n.d."])
    assert codes.tolist()[:3] == [0.0, 1.0, 2.0] and codes.iloc[3:].isna().all()
    assert classes.iloc[1] == "G2"
    with pytest.raises(InputError, match="fewer than two classes"):
        cohort.class_labels(table.iloc[:1], "grade")


def test_within_fold_auc_pairs_patients_of_the_same_fold_only():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 90)
    fold = np.repeat([0, 1, 2], 30)
    score = np.round(y + rng.normal(size=90), 1) + 10 * fold  # a shift per fold; some ties
    per_fold = [
        (fold == f, (y[fold == f] == 1).sum() * (y[fold == f] == 0).sum()) for f in range(3)
    ]
    expected = sum(w * roc_auc_score(y[rows], score[rows]) for rows, w in per_fold)
    expected /= sum(w for _, w in per_fold)
    assert evaluate.within_fold_auc(y, score, fold) == pytest.approx(expected)
    assert evaluate.within_fold_auc(y, score) == pytest.approx(roc_auc_score(y, score))
    assert evaluate.within_fold_auc(y, score) < expected - 0.1  # the shift mixes the folds
    # the vectorised bootstrap replicates equal the direct computation, duplicates and all
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    pos_draw, neg_draw = rng.choice(pos, (20, len(pos))), rng.choice(neg, (20, len(neg)))
    direct = [
        evaluate.within_fold_auc(y[np.r_[p, n]], score[np.r_[p, n]], fold[np.r_[p, n]])
        for p, n in zip(pos_draw, neg_draw, strict=True)
    ]
    drawn = evaluate._within_fold_auc_draws(score, fold, pos_draw, neg_draw)
    np.testing.assert_allclose(drawn, direct)


def mixed_choice_data(seed, n, start=0):
    """Two informative features and an interaction that an RBF SVM can use (ids from
    ``start``)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    ids = [f"P{i:04d}" for i in range(start, start + n)]
    a = rng.normal(size=(n, 20))
    a[:, :3] += 0.9 * y[:, None]
    a[:, 3] += 1.2 * (y * (a[:, 4] > 0))  # an interaction that the SVM can use
    frame = pd.DataFrame(a, index=ids, columns=[f"f{i}" for i in range(20)])
    return frame, pd.Series(y.astype(float), index=ids)


def mixed_choice_study(seed=5, n=100):
    """Outer folds whose inner CV picks an RBF SVM (decision values) in some and logistic
    regression (probabilities) in others (the best inner score, not the simplest within
    its standard error, which would take logistic regression more often)."""
    frame, labels = mixed_choice_data(seed, n)
    mdata = cohort.build({"a": frame}, {"response": labels})
    settings = experiment.Settings(
        seed=seed, k_features=(5,), balancers=("class_weight",), candidates=("logreg", "svm"),
        choice="best",
    )  # fmt: skip
    folds = splits.make_splits(labels, n_splits=5, seed=seed)
    return experiment.procedure(
        mdata, folds, endpoint="response", pipeline="a", modalities=["a"], settings=settings
    )


def test_pooled_auc_of_folds_with_different_classifiers_equals_the_fold_wise_auc():
    result = mixed_choice_study().evaluate()["selected"]
    chosen = {f["best_params"]["clf"].split("(")[0] for f in result.folds}
    assert chosen == {"SVC", "LogisticRegression"}  # the premise: scores on two scales
    summary = result.summary(n_boot=200, seed=0)
    low, high = summary["ci95"]["roc_auc"]
    noise = (high - low) / 4
    assert abs(summary["pooled"]["roc_auc"] - summary["mean"]["roc_auc"]) < noise
    assert low < summary["pooled"]["roc_auc"] < high
    # comparing scores across folds would have cost the pooled AUC far more than that
    p = result.predictions
    assert summary["mean"]["roc_auc"] - roc_auc_score(p["y_true"], p["score"]) > 2 * noise


def test_the_final_model_is_recalibrated_on_one_score_scale(tmp_path):
    """Folds that gave decision values and probabilities: the final model's recalibration
    is learned from its own configuration's cross-fitted scores, and its probabilities fit
    new patients; learned from the nested CV's mixed scores they would not."""
    job = mixed_choice_study(seed=2)
    result = job.evaluate()["selected"]
    assert {f["best_params"]["clf"].split("(")[0] for f in result.folds} == {
        "SVC", "LogisticRegression"
    }  # fmt: skip
    tuned = job.final_models()
    assert tuned["logreg"].cross_fitted is None  # probabilities in every fold: one scale
    assert tuned["svm"].cross_fitted is not None
    cross = tuned["selected"].cross_fitted
    outer = splits.outer(job.folds, 0)
    assert (cross.set_index("patient_id")["fold"] == outer.loc[cross["patient_id"]]).all()
    assert sorted(cross["patient_id"]) == sorted(job.X.index)
    summary = experiment.write_model(
        result, job.meta, "selected", job.settings, tmp_path, tuned=tuned["selected"]
    )
    assert summary["calibration"]["scores"] == "final configuration, cross-fitted"
    model = joblib.load(tmp_path / "model.joblib")
    frame, labels = mixed_choice_data(102, 2000, start=1000)
    new = frame.add_prefix("a:")
    fitted = calibration.slope_and_intercept(labels, model.predict_proba(new)[:, 1])
    assert 0.7 < fitted["calibration_slope"] < 1.4
    assert abs(fitted["calibration_intercept"]) < 0.3
    mixed = final.FinalModel.from_out_of_fold(
        tuned["selected"].estimator, job.meta, result.predictions, result.probability
    )
    flat = calibration.slope_and_intercept(labels, mixed.predict_proba(new)[:, 1])
    assert flat["calibration_slope"] > 2  # a map fitted to two scales at once


def test_repeated_inner_cv_compares_the_candidates_on_every_partition(informative, caplog):
    X, y, fold, blocks = informative
    cv = evaluate.inner_cv(0, 3, seed=0, repeats=2)
    train = y[(fold != 0).to_numpy()]
    tests = [test for _, test in cv.split(train.to_frame(), train)]
    assert len(tests) == 6
    for part in (tests[:3], tests[3:]):  # each repeat partitions the training rows
        assert sorted(np.concatenate(part)) == list(range(len(train)))
    assert not all(np.array_equal(a, b) for a, b in zip(tests[:3], tests[3:], strict=True))
    pipeline, space = models.build(blocks, "logreg", seed=0), models.grid(blocks, "logreg", [5])
    with caplog.at_level("INFO", logger="radiotx.evaluate"):
        once = evaluate.evaluate_fold(pipeline, {"logreg": space}, X, y, fold, 0, seed=0)
        twice = evaluate.evaluate_fold(
            pipeline, {"logreg": space}, X, y, fold, 0, inner_repeats=2, seed=0
        )
    assert "x 3 splits" in caplog.text and "x 6 splits" in caplog.text
    assert once["logreg"].record["inner_roc_auc"] != twice["logreg"].record["inner_roc_auc"]
