"""SHAP explanations of tabular and fused models on the outer folds' test patients:
additivity for every kind of explainer, fitted-in-fold hygiene (test patients explained,
training patients in the background), the planted signal found and stable across folds,
and the aggregates, files and report section built from them."""

import json
import logging

import numpy as np
import pandas as pd
import pytest
from imblearn.pipeline import Pipeline
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestClassifier

from radiotx import evaluate, experiment, expression, fusion, models, report, selection, splits
from radiotx.explain import tabular

PLANTED = "radiomics:r0"


def study(n=96, seed=0, missing=12):
    """A radiomics + clinical design like the platform's: ``radiomics`` (30 features, the
    first carrying a strong signal; absent for the first ``missing`` patients) and
    ``clinical`` (6 features, the second weakly informative)."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % 2)
    radiomics = rng.normal(size=(n, 30))
    radiomics[:, 0] += 2.0 * y
    clinical = rng.normal(size=(n, 6))
    clinical[:, 1] += 0.6 * y
    blocks = {
        "radiomics": [f"radiomics:r{i}" for i in range(30)],
        "clinical": [f"clinical:c{i}" for i in range(6)],
    }
    index = pd.Index([f"P{i:03d}" for i in range(n)], name="patient_id")
    X = pd.DataFrame(
        np.hstack([radiomics, clinical]), index=index, columns=sum(blocks.values(), [])
    )
    X.iloc[:missing, :30] = np.nan
    return X, pd.Series(y, index=index, name="response"), blocks


def split(X, y, fold=0, n_splits=4):
    """Training and test rows of one stored outer fold."""
    outer = splits.outer(splits.make_splits(y, n_splits, seed=1)).loc[X.index]
    test = (outer == fold).to_numpy()
    return X[~test], y[~test], X[test], y[test]


def selector(k):
    return selection.selector("anova", k=k)


def fitted_models():
    """Model -> (fitted pipeline, training rows, test rows): every explainer path."""
    X, y, blocks = study()
    X_train, y_train, X_test, _ = split(X, y)
    logreg = models.build(blocks, "logreg", k=5)  # early fusion: permutation on 10 features
    tree = models.build({"radiomics": blocks["radiomics"]}, "rf", k=4)  # Tree SHAP
    tree.set_params(clf=RandomForestClassifier(n_estimators=40, random_state=0), balance=None)
    linear = models.build(blocks, "svm_linear", k=3)  # linear decision function
    late = Pipeline([("fusion", fusion.LateFusion(blocks, selector=selector(5), cv=3))])
    stacking = Pipeline([("fusion", fusion.StackedFusion(blocks, selector=selector(2), cv=3))])
    out = {}
    for name, model in [
        ("logreg", logreg), ("rf", tree), ("svm_linear", linear), ("late", late),
        ("stacking", stacking),
    ]:  # fmt: skip
        out[name] = (model.fit(X_train, y_train), X_train, X_test)
    return out


@pytest.fixture(scope="module")
def explained():
    """Each model's explanation of the test patients of one outer fold."""
    out = {}
    for name, (model, X_train, X_test) in fitted_models().items():
        explanation = tabular.explain(model, X_train, X_test, background=30, max_evals=300)
        out[name] = (model, X_train, X_test, explanation)
    return out


@pytest.mark.parametrize(
    "name, explainer",
    [
        ("logreg", "permutation"),
        ("rf", "tree"),
        ("svm_linear", "linear"),
        ("late", "permutation"),
        ("stacking", "exact"),
    ],
)
def test_shap_values_and_base_value_add_up_to_the_models_output(explained, name, explainer):
    model, _, X_test, explanation = explained[name]
    output = evaluate.scores(model, X_test)  # what the predictions tables hold
    total = explanation.values.sum(axis=1) + explanation.base_values
    np.testing.assert_allclose(total, output, atol=1e-6)
    assert explanation.explainer.split("+")[0] == explainer
    expected = "probability" if hasattr(model, "predict_proba") else "decision_function"
    assert explanation.output == expected


def test_rows_where_tree_shap_does_not_add_up_are_recomputed(explained, monkeypatch):
    """Tree SHAP keeps its own copy of the trees, which can part from scikit-learn's for a
    value within float32 rounding of a split (an imputed median can be one): such a row is
    explained again by the exact estimator."""
    model, X_train, X_test, tree = explained["rf"]
    exact = tabular._tree

    def off_in_row_0(*args):
        values, base = exact(*args)
        values[0, 0] += 0.01
        return values, base

    monkeypatch.setattr(tabular, "_tree", off_in_row_0)
    again = tabular.explain(model, X_train, X_test, background=30, max_evals=300)
    assert again.explainer == "tree+exact"  # 4 features: every coalition
    np.testing.assert_allclose(again.values, tree.values, atol=1e-6)  # float32 trees


def test_features_are_the_selected_ones_by_name(explained):
    for name in ("logreg", "rf", "svm_linear"):
        model, _, _, explanation = explained[name]
        pairs = models.selected_features(model)
        assert explanation.features == [f"{m}:{f}" for m, f in pairs]
    model, _, X_test, explanation = explained["late"]
    kept = {f"{m}:{f}" for m, f in fusion.selected_features(model)}
    assert set(explanation.features) == kept
    assert PLANTED in kept  # the planted feature is a player of the fused model
    # values are the patients' own raw feature values (NaN where the modality is absent)
    column = explanation.features.index(PLANTED)
    np.testing.assert_array_equal(explanation.data[:, column], X_test[PLANTED].to_numpy())


def test_only_test_patients_are_explained_against_training_patients(explained):
    for _, X_train, X_test, explanation in explained.values():
        assert explanation.patients == list(X_test.index)
        assert set(explanation.background) <= set(X_train.index)
        assert not set(explanation.background) & set(X_test.index)
        assert len(explanation.background) == 30


def test_background_is_a_seeded_sample_of_training_patients():
    index = pd.Index([f"P{i:03d}" for i in range(80)])
    first = tabular.background_rows(index, 20, seed=3)
    assert first.equals(tabular.background_rows(index, 20, seed=3))
    assert len(first) == 20 and first.is_monotonic_increasing and set(first) <= set(index)
    assert not first.equals(tabular.background_rows(index, 20, seed=4))
    assert tabular.background_rows(index[:10], 20, seed=3).equals(index[:10])  # all of few


def test_exact_estimator_matches_tree_shap_and_permutations_approach_it():
    """The model-agnostic estimators against shap's exact interventional Tree SHAP."""
    import shap

    rng = np.random.default_rng(2)
    X = rng.normal(size=(120, 8))
    y = (2 * X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int)
    forest = RandomForestClassifier(n_estimators=30, random_state=0).fit(X, y)
    background, x = X[:25], X[100]
    truth = shap.TreeExplainer(
        forest, data=background, feature_perturbation="interventional",
        model_output="probability",
    ).shap_values(x[None])[0, :, 1]  # fmt: skip
    groups = [[j] for j in range(8)]

    def output(rows):
        return forest.predict_proba(rows)[:, 1]

    values, base, name = tabular._shapley(output, x, background, groups, 256, seed=0)
    assert name == "exact"
    np.testing.assert_allclose(values, truth, atol=1e-9)
    assert base == pytest.approx(output(background).mean())
    values, base, name = tabular._shapley(output, x, background, groups, 255, seed=0)
    assert name == "permutation"  # 255 < 2**8: 14 orderings and their reverses
    assert values.sum() + base == pytest.approx(output(x[None])[0])
    assert np.abs(values - truth).max() < 0.05


def test_derived_features_of_a_modality_are_one_player():
    """Features a modality step derives from all its columns (here principal components)
    are explained as one player of that modality's other columns."""
    X, y, blocks = study()
    X_train, y_train, X_test, _ = split(X, y)
    steps = {"radiomics": expression.PresentRows(PCA(3, random_state=0))}
    late = fusion.LateFusion(blocks, selector=selector(2), prepare=steps, cv=3)
    model = Pipeline([("fusion", late)]).fit(X_train, y_train)
    explanation = tabular.explain(model, X_train, X_test, background=20, max_evals=64)
    assert "radiomics:[derived]" in explanation.features
    assert np.isnan(explanation.data[:, explanation.features.index("radiomics:[derived]")]).all()
    total = explanation.values.sum(axis=1) + explanation.base_values
    np.testing.assert_allclose(total, evaluate.scores(model, X_test), atol=1e-6)


def procedure(X, y, blocks, n_splits=4):
    """The nested-CV procedure of the workflow's jobs: logistic regression and a forest,
    and "selected", whose inner CV chooses between them."""
    settings = experiment.Settings(
        seed=0, k_features=(5,), candidates=("logreg", "rf"), balancers=("class_weight",)
    )
    search = {"logreg": {"C": [0.1]}, "rf": {"n_estimators": [40], "min_samples_leaf": [3]}}
    options = {"balancers": ("class_weight",), "search": search}
    spaces = {
        name: models.grid(blocks, models.SELECTED, [5], 0, candidates=(name,), **options)
        for name in settings.candidates
    }
    estimator = models.build(blocks, models.SELECTED, seed=0)
    folds = splits.make_splits(y, n_splits, seed=1)
    meta = {"endpoint": "response", "pipeline": "fusion", "kind": experiment.BINARY}
    return experiment.Procedure(
        X, y, folds, estimator, spaces, models.SELECTED, settings, meta, blocks=blocks
    )


@pytest.fixture(scope="module")
def outer_files(tmp_path_factory):
    """Outer-fold job files of the procedure with the "selected" model explained."""
    X, y, blocks = study()
    job = procedure(X, y, blocks)
    options = tabular.Options(models=(models.SELECTED,), top_k=5, background=25, max_evals=200)
    root = tmp_path_factory.mktemp("outer")
    paths = []
    for fold in range(4):
        results = job.evaluate_fold(0, fold, shap=options)
        path = root / f"r0f{fold}.json"
        data = {"meta": job.meta, "results": {n: p.to_dict() for n, p in results.items()}}
        path.write_text(json.dumps(data), encoding="utf-8")
        paths.append(path)
    return {"paths": paths, "job": job, "X": X}


def test_outer_folds_explain_the_named_models_on_their_test_patients(outer_files):
    job, X = outer_files["job"], outer_files["X"]
    outer = job.outer(0)
    for path in outer_files["paths"]:
        results = json.loads(path.read_text(encoding="utf-8"))["results"]
        assert "explanation" not in results["logreg"] and "explanation" not in results["rf"]
        fold = results[models.SELECTED]["record"]["fold"]
        part = evaluate.FoldResult.from_dict(results[models.SELECTED])
        test = sorted(outer.index[outer == fold])
        assert part.explanation["patients"] == test == list(part.predictions["patient_id"])
        assert not set(part.explanation["background"]) & set(test)
        assert set(part.explanation["background"]) <= set(outer.index[outer != fold])
    table = tabular.patient_table(tabular.fold_explanations(outer_files["paths"], "selected"))
    assert set(table["patient_id"]) == set(X.index)  # every patient once, out of fold
    assert (table.groupby("patient_id")["fold"].nunique() == 1).all()


def test_planted_feature_leads_the_global_importance_in_every_fold(outer_files, tmp_path):
    parts = tabular.fold_explanations(outer_files["paths"], models.SELECTED)
    table = tabular.patient_table(parts)
    ranked = tabular.importance(table)
    assert ranked["feature"].iloc[0] == PLANTED
    assert ranked["mean_abs_shap"].iloc[0] > 2 * ranked["mean_abs_shap"].iloc[1]
    assert ranked.loc[0, "n_folds"] == 4 and ranked.loc[0, "modality"] == "radiomics"
    stable = tabular.stability(table, top_k=5)
    planted = stable.set_index("feature").loc[PLANTED]
    assert planted["folds_in_top_k"] == planted["n_folds"] == 4 and planted["share"] == 1.0
    assert 0 < stable["jaccard"].iloc[0] <= 1
    # the workflow's outputs of one model
    names = ("importance", "patients", "stability")
    outputs = type("Outputs", (), {n: tmp_path / f"{n}.tsv" for n in names})()
    outputs.plot = tmp_path / "summary.png"
    tabular.write(parts, outputs, top_k=5, title="fusion / selected")
    written = pd.read_csv(outputs.patients, sep="\t")
    assert list(written.columns) == tabular.PATIENT_COLUMNS and len(written) == len(table)
    assert pd.read_csv(outputs.stability, sep="\t")["feature"].iloc[0] == PLANTED
    assert outputs.plot.stat().st_size > 10_000
    section = report.shap_sections([_model_dir(tmp_path, outputs.stability)])["response"]
    assert "### Explanations (SHAP)" in section and f"{PLANTED} " in section
    assert "(4/4)" in section


def _model_dir(root, stability):
    """``stability`` copied to where the workflow writes it."""
    path = root / "models" / "response" / "fusion" / "selected" / "shap" / "stability.tsv"
    path.parent.mkdir(parents=True)
    path.write_bytes(stability.read_bytes())
    return path


def test_importance_counts_folds_without_the_feature_as_zero_and_stability():
    def part(fold, features, values):
        values = np.asarray(values, dtype=float)
        patients = [f"P{fold}{i}" for i in range(len(values))]
        return 0, fold, tabular.Explanation(
            patients, features, values, values, np.zeros(len(values)), [], "exact",
            "probability",
        )  # fmt: skip

    table = tabular.patient_table(
        [
            part(0, ["a", "b"], [[0.4, 0.1], [0.4, -0.1]]),
            part(1, ["a", "c"], [[0.4, 0.2], [-0.4, 0.2]]),
            part(2, ["c"], [[0.9], [0.9]]),  # c is large in one fold only
        ]
    )
    ranked = tabular.importance(table).set_index("feature")
    assert ranked.loc["a", "mean_abs_shap"] == pytest.approx(1.6 / 6)
    assert ranked.loc["c", "mean_abs_shap"] == pytest.approx(2.2 / 6)
    assert ranked.loc["a", "mean_shap"] == pytest.approx(0.8 / 6)
    assert ranked.loc["c", "n_folds"] == 2 and ranked.loc["b", "n_folds"] == 1
    assert tabular.fold_top_k(table, 1) == {(0, 0): ["a"], (0, 1): ["a"], (0, 2): ["c"]}
    stable = tabular.stability(table, top_k=1)
    assert list(stable["feature"]) == ["c"] and stable["folds_in_top_k"].iloc[0] == 1
    assert stable["jaccard"].iloc[0] == pytest.approx(1 / 3)  # pairs: 1, 0, 0
    assert tabular.mean_pairwise_jaccard([{"a", "b"}, {"b", "c"}]) == pytest.approx(1 / 3)
    assert np.isnan(tabular.mean_pairwise_jaccard([{"a"}]))


def test_survival_and_multiclass_endpoints_are_skipped_with_a_message(caplog):
    options = tabular.Options(models=("selected",))
    for kind in (experiment.SURVIVAL, experiment.MULTICLASS):
        meta = {"endpoint": "os", "pipeline": "clinical", "kind": kind}
        job = experiment.Procedure(None, None, None, None, {}, None, experiment.Settings(), meta)
        with caplog.at_level(logging.INFO, logger="radiotx.experiment"):
            assert job._attribution(options, 0, 0) is None
        assert f"binary endpoints only: os/clinical is {kind}" in caplog.text
    X, y, blocks = study()
    three = models.build(blocks, "logreg", k=3).fit(X, y.to_numpy() + (X.index > "P060"))
    with pytest.raises(ValueError, match="binary model, not 3 classes"):
        tabular.output_of(three)


def test_options_from_the_config_section():
    options = tabular.Options.from_config({"shap": ["selected"], "top_k": 7, "background": 9})
    assert options == tabular.Options(("selected",), 7, 9, 500)
    assert tabular.Options.from_config(None).models == ()
