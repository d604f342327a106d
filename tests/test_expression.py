"""Cohort-level expression steps: fitted on training rows only, applied patient by patient."""

import logging

import anndata as ad
import decoupler as dc
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.impute import SimpleImputer
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from radiotx import expression
from radiotx.errors import InputError
from radiotx.expression import (
    BatchHarmoniser,
    ExpressedGenes,
    GeneSetScores,
    PresentRows,
    VariableGenes,
    load_gene_sets,
    read_gmt,
)

N_PATIENTS, N_GENES = 40, 300
N_VARIABLE = 20  # the first genes have a much larger patient-to-patient spread
N_LOW = 30  # the last genes are barely expressed (log1p-CPM mostly below 1)
PLANTED = [f"G{i:03d}" for i in range(100, 115)]  # up in class 1
RANDOM_SET = [f"G{i:03d}" for i in range(200, 215)]


def cohort(n=N_PATIENTS, p=N_GENES, seed=0, prefix="rnaseq:"):
    """log1p-CPM-like expression with planted structure, and a balanced binary label."""
    rng = np.random.default_rng(seed)
    level = rng.uniform(2.0, 9.0, p)  # gene mean on the log1p-CPM scale
    spread = np.full(p, 0.4)
    spread[:N_VARIABLE] = 1.5
    level[-N_LOW:] = 0.3
    spread[-N_LOW:] = 0.3
    y = np.tile([0, 1], n // 2)
    values = level + spread * rng.standard_normal((n, p))
    genes = [f"G{i:03d}" for i in range(p)]
    planted = [genes.index(g) for g in PLANTED]
    values[np.ix_(y == 1, planted)] += 1.2
    X = pd.DataFrame(
        np.clip(values, 0.0, None),
        index=pd.Index([f"P{i:03d}" for i in range(n)], name="patient_id"),
        columns=[prefix + g for g in genes],
    )
    return X, pd.Series(y, index=X.index, name="label")


def split(X, n_test=10):
    return X.iloc[:-n_test], X.iloc[-n_test:]


def gene_sets():
    return {"PLANTED": PLANTED, "RANDOM": RANDOM_SET, "TINY": ["G001", "G002", "NOT_A_GENE"]}


@pytest.fixture(scope="module")
def data():
    return cohort()


# --------------------------------------------------------------------------- PresentRows


def with_missing(X, partial=True):
    """Patients without RNA-seq (all-NaN rows) and, optionally, a sample with a gap."""
    X = X.copy()
    X.iloc[[3, 17, 35]] = np.nan
    if partial:
        X.iloc[8, 5] = np.nan
    return X


def test_present_rows_pca_equals_fit_on_the_training_rows_with_values(data):
    X = with_missing(data[0])
    train, test = split(X, 12)
    step = make_pipeline(
        SimpleImputer(strategy="median"),
        VariableGenes(50),
        StandardScaler(),
        PCA(5, random_state=0),
    )
    wrapped = PresentRows(step).fit(train)
    out = wrapped.transform(test)

    has_values = train[train.notna().any(axis=1)]
    assert wrapped.n_fit_rows_ == len(has_values) == len(train) - 2  # rows 3 and 17
    assert has_values.isna().any(axis=None)  # the sample with a gap is used, imputed
    reference = clone(step).fit(has_values)
    present = test.notna().any(axis=1)
    assert list(out.index) == list(test.index)
    assert out[~present].isna().all(axis=None) and (~present).sum() == 1  # row 35
    np.testing.assert_allclose(
        out[present].to_numpy(), reference.transform(test[present]), rtol=1e-10, atol=1e-12
    )
    assert list(out.columns) == [f"rnaseq:pca{i}" for i in range(5)]
    assert list(wrapped.get_feature_names_out()) == list(out.columns)
    assert out.loc[present].notna().all(axis=None)


def test_present_rows_keeps_gene_names_and_plain_arrays(data):
    X = with_missing(data[0], partial=False)
    wrapped = PresentRows(VariableGenes(10)).fit(X)
    out = wrapped.transform(X)
    top = X.dropna().var().sort_values(ascending=False, kind="stable").index[:10]
    assert list(out.columns) == [c for c in X.columns if c in top]
    assert set(out.columns) <= set(X.columns[:N_VARIABLE])
    array = PresentRows(VariableGenes(10)).fit(X.to_numpy()).transform(X.to_numpy())
    np.testing.assert_array_equal(array, out.to_numpy())


def test_present_rows_needs_two_rows_with_values(data):
    X = data[0].iloc[:4].copy()
    X.iloc[1:] = np.nan
    with pytest.raises(ValueError, match="only 1 of 4 training rows have values"):
        PresentRows(VariableGenes(10)).fit(X)


def test_present_rows_test_set_without_rnaseq(data):
    X = data[0]
    wrapped = PresentRows(VariableGenes(10)).fit(X)
    empty = pd.DataFrame(np.nan, index=["Q1", "Q2"], columns=X.columns)
    out = wrapped.transform(empty)
    assert out.shape == (2, 10) and out.isna().all(axis=None)


# ------------------------------------------------------------------------- gene filters


def test_expressed_genes_rule(data):
    X = data[0]
    train, test = split(X)
    step = ExpressedGenes(min_value=1.0, min_fraction=0.1).fit(train)
    needed = int(np.ceil(0.1 * len(train)))
    expected = X.columns[(train > 1.0).sum() >= needed]
    assert list(step.get_feature_names_out()) == list(expected)
    assert len(expected) < N_GENES  # the barely expressed genes go ...
    assert set(X.columns[:-N_LOW]) <= set(expected)  # ... the others stay
    out = step.transform(test)
    assert list(out.columns) == list(expected) and out.index.equals(test.index)
    pd.testing.assert_frame_equal(out, test[expected])


def test_expressed_genes_fraction_boundary():
    # 3 of 30 patients is exactly 10 %, which is "at least 10 %".
    X = pd.DataFrame({"a": [2.0] * 3 + [0.0] * 27, "b": [2.0] * 2 + [0.0] * 28})
    step = ExpressedGenes(1.0, 0.1).fit(X)
    assert list(step.get_feature_names_out()) == ["a"]
    assert step.fraction_["a"] == pytest.approx(0.1)


def test_expressed_genes_none_pass(data):
    with pytest.raises(ValueError, match=r"no gene exceeds 50.*min_fraction=0.5"):
        ExpressedGenes(min_value=50, min_fraction=0.5).fit(data[0])


def test_variable_genes_by_variance(data):
    X = data[0]
    train, test = split(X)
    step = VariableGenes(N_VARIABLE).fit(train)
    top = train.var().sort_values(ascending=False).index[:N_VARIABLE]
    assert set(step.get_feature_names_out()) == set(top) == set(X.columns[:N_VARIABLE])
    out = step.transform(test)
    assert list(out.columns) == list(X.columns[:N_VARIABLE])  # input order kept


def test_variable_genes_ties_by_column_order_and_small_n():
    X = pd.DataFrame({"c": [1.0, 3.0, 1.0], "a": [0.0, 2.0, 0.0], "b": [1.0, 1.1, 1.0]})
    assert list(VariableGenes(1).fit(X).get_feature_names_out()) == ["c"]  # c ties with a
    assert list(VariableGenes(2).fit(X).get_feature_names_out()) == ["c", "a"]
    for method in ("variance", "hvg"):
        kept = VariableGenes(10, method=method).fit(X).get_feature_names_out()
        assert list(kept) == ["c", "a", "b"]


def test_variable_genes_hvg_equals_scanpy_on_training_rows(data):
    X = data[0]
    train, test = split(X)
    step = VariableGenes(40, method="hvg").fit(train)

    adata = ad.AnnData(train.to_numpy().copy())
    adata.obs_names = list(train.index)
    adata.var_names = list(train.columns)
    sc.pp.highly_variable_genes(adata, n_top_genes=40, flavor="seurat")
    expected = adata.var_names[adata.var["highly_variable"]]
    assert list(step.get_feature_names_out()) == list(expected)
    assert len(expected) == 40
    assert list(step.transform(test).columns) == list(expected)


def test_variable_genes_rejects_bad_parameters(data):
    with pytest.raises(ValueError, match="n_genes"):
        VariableGenes(0).fit(data[0])
    with pytest.raises(ValueError, match="method"):
        VariableGenes(10, method="pca").fit(data[0])


# ---------------------------------------------------------------------- batch correction


def batched(n_per_batch=20, seed=1):
    """Three batches; B has an additive and a multiplicative shift per gene."""
    n = 3 * n_per_batch
    X, _ = cohort(n=n, seed=seed)
    rng = np.random.default_rng(seed + 100)
    batch = pd.Series(np.repeat(["A", "B", "C"], n_per_batch), index=X.index, name="batch")
    clean = X.copy()
    b = (batch == "B").to_numpy()
    shift = rng.normal(2.0, 0.3, X.shape[1])
    scale = rng.uniform(1.4, 1.8, X.shape[1])
    means = X[b].mean()
    X.loc[b] = (means + shift + scale * (X[b] - means)).to_numpy()
    X.loc[batch == "C"] -= 0.5
    return X, clean, batch


def batch_split(batch, n_test_per_batch=8):
    test = batch.groupby(batch).tail(n_test_per_batch).index
    train = batch.index.difference(test)
    return train, test


def test_batch_shift_removed_on_held_out_patients():
    X, clean, batch = batched(n_per_batch=30)
    train, test = batch_split(batch, n_test_per_batch=10)
    step = BatchHarmoniser(batch).fit(X.loc[train])
    out = step.transform(X.loc[test])
    assert out.index.equals(test) and list(out.columns) == list(X.columns)
    assert step.corrected_batches_ == ["A", "B", "C"] and step.adjusted_.all()
    held = batch.loc[test].to_numpy()

    def gap(frame):  # per-gene batch-mean difference B - A of the held-out patients
        return frame[held == "B"].mean() - frame[held == "A"].mean()

    def sd_ratio(frame):
        return frame[held == "B"].std() / frame[held == "A"].std()

    # Ten patients per batch differ by chance even without a batch effect: measure the
    # gap against the same patients' values before the shift was planted.
    chance = gap(clean.loc[test])
    before, after = gap(X.loc[test]) - chance, gap(out) - chance
    assert np.sqrt((before**2).mean()) > 1.5
    assert np.sqrt((after**2).mean()) < 0.2 * np.sqrt((before**2).mean())
    assert sd_ratio(X.loc[test]).median() > 1.4
    assert 0.8 < sd_ratio(out).median() < 1.2


def test_batch_correction_is_not_transductive():
    X, _, batch = batched()
    train, test = batch_split(batch)
    step = BatchHarmoniser(batch).fit(X.loc[train])
    out = step.transform(X.loc[test])
    changed = X.loc[test].copy()
    others = test[::2]
    changed.loc[others] += np.random.default_rng(3).normal(0, 2.0, changed.loc[others].shape)
    again = step.transform(changed)
    kept = test.difference(others)
    pd.testing.assert_frame_equal(again.loc[kept], out.loc[kept])
    assert not np.allclose(again.loc[others], out.loc[others])


def test_batch_fit_sees_training_rows_only():
    X, _, batch = batched()
    train, test = batch_split(batch)
    step = BatchHarmoniser(batch).fit(X.loc[train])
    altered = X.copy()
    altered.loc[test] += 5.0
    other = BatchHarmoniser(batch).fit(altered.loc[train])
    pd.testing.assert_frame_equal(other.transform(X.loc[test]), step.transform(X.loc[test]))
    assert step.batch_sizes_.to_dict() == {"A": 12, "B": 12, "C": 12}


def test_unseen_batch_error_names_batch_patients_and_fix():
    X, _, batch = batched()
    train = batch.index[batch != "C"]
    step = BatchHarmoniser(batch).fit(X.loc[train])
    with pytest.raises(InputError) as err:
        step.transform(X)
    message = str(err.value)
    assert "'C'" in message and "P040" in message and "20 patients" in message
    assert "unseen_batch: keep" in err.value.fix and "stratify the folds by batch" in err.value.fix


def test_unseen_batch_keep_passes_rows_through(caplog):
    X, _, batch = batched()
    train = batch.index[batch != "C"]
    step = BatchHarmoniser(batch, unseen="keep").fit(X.loc[train])
    with caplog.at_level(logging.WARNING, logger="radiotx.expression"):
        out = step.transform(X)
    c = (batch == "C").to_numpy()
    pd.testing.assert_frame_equal(out[c], X[c])
    assert not np.allclose(out[~c], X[~c])
    pd.testing.assert_frame_equal(out[~c], step.transform(X[~c]))
    assert any("'C'" in r.getMessage() and "unadjusted" in r.getMessage() for r in caplog.records)


def test_single_patient_batch_passes_through(caplog):
    X, _, batch = batched()
    batch = batch.copy()
    batch.iloc[[0, 59]] = "D"  # one training and one test patient
    train, test = X.index[:50], X.index[50:]
    with caplog.at_level(logging.WARNING, logger="radiotx.expression"):
        step = BatchHarmoniser(batch).fit(X.loc[train])
    assert step.uncorrected_batches_ == ["D"] and "D" not in step.corrected_batches_
    assert any("too small to estimate" in r.getMessage() for r in caplog.records)
    out = step.transform(X)
    pd.testing.assert_frame_equal(out.loc[["P000", "P059"]], X.loc[["P000", "P059"]])
    assert np.isfinite(out.to_numpy()).all()
    assert not np.allclose(out.loc[test[:5]], X.loc[test[:5]])


def test_one_training_batch_is_identity(caplog):
    X, _, batch = batched()
    train = batch.index[batch == "A"]
    with caplog.at_level(logging.WARNING, logger="radiotx.expression"):
        step = BatchHarmoniser(batch, unseen="keep").fit(X.loc[train])
    assert step.combat_ is None
    pd.testing.assert_frame_equal(step.transform(X), X)


def test_constant_genes_pass_through_without_nan():
    X, _, batch = batched()
    X = X.copy()
    train, test = batch_split(batch)
    X.loc[train, "rnaseq:G050"] = 3.0  # constant in the training rows
    X.loc[train, "rnaseq:G051"] = np.where(batch.loc[train] == "A", 1.0, 2.0)  # per batch
    X.loc[test, ["rnaseq:G050", "rnaseq:G051"]] = 4.5
    step = BatchHarmoniser(batch).fit(X.loc[train])
    out = step.transform(X.loc[test])
    assert np.isfinite(out.to_numpy()).all()
    assert not step.adjusted_[50] and not step.adjusted_[51] and step.adjusted_.sum() == 298
    pd.testing.assert_frame_equal(
        out[["rnaseq:G050", "rnaseq:G051"]], X.loc[test, ["rnaseq:G050", "rnaseq:G051"]]
    )


def test_patient_without_batch_label():
    X, _, batch = batched()
    with pytest.raises(InputError, match="patient P005: no batch label"):
        BatchHarmoniser(batch.drop("P005")).fit(X)
    with pytest.raises(ValueError, match="DataFrame"):
        BatchHarmoniser(batch).fit(X.to_numpy())
    with pytest.raises(ValueError, match="unseen"):
        BatchHarmoniser(batch, unseen="drop").fit(X)


def test_categorical_batch_labels_with_unused_levels():
    X, _, batch = batched()
    labels = batch.astype(pd.CategoricalDtype(["A", "B", "C", "Z"]))
    train, test = batch_split(batch)
    out = BatchHarmoniser(labels).fit(X.loc[train]).transform(X.loc[test])
    expected = BatchHarmoniser(batch).fit(X.loc[train]).transform(X.loc[test])
    pd.testing.assert_frame_equal(out, expected)


# ----------------------------------------------------------------------------- gene sets


def test_ulm_scores_equal_decoupler(data):
    X = data[0]
    step = GeneSetScores(gene_sets()).fit(X)
    scores = step.transform(X)[step.score_names_]
    net = pd.DataFrame(
        [(name, g, 1.0) for name in ("PLANTED", "RANDOM") for g in gene_sets()[name]],
        columns=["source", "target", "weight"],
    )
    plain = X.rename(columns=expression.gene_id)
    es, _ = dc.mt.ulm(data=plain, net=net, tmin=5, verbose=False)
    np.testing.assert_allclose(scores.to_numpy(), es[["PLANTED", "RANDOM"]].to_numpy())


def test_planted_gene_set_separates_classes(data):
    X, y = data
    train, test = split(X, 20)
    for method in expression.GENESET_METHODS:
        step = GeneSetScores(gene_sets(), method=method, keep_genes=False).fit(train)
        scores = step.transform(test)
        assert np.isfinite(scores.to_numpy()).all()
        assert roc_auc_score(y[test.index], scores["rnaseq:geneset:PLANTED"]) > 0.9, method
        assert 0.2 < roc_auc_score(y[test.index], scores["rnaseq:geneset:RANDOM"]) < 0.8


def test_gene_set_columns_and_dropped_sets(data, caplog):
    X = data[0]
    with caplog.at_level(logging.WARNING, logger="radiotx.expression"):
        step = GeneSetScores(gene_sets()).fit(X)
    assert step.sets_ == ["PLANTED", "RANDOM"]
    assert step.set_sizes_.to_dict() == {"PLANTED": 15, "RANDOM": 15, "TINY": 2}
    assert any("TINY" in r.getMessage() for r in caplog.records)
    out = step.transform(X)
    expected = [*X.columns, "rnaseq:geneset:PLANTED", "rnaseq:geneset:RANDOM"]
    assert list(out.columns) == expected == list(step.get_feature_names_out())
    pd.testing.assert_frame_equal(out[X.columns], X)

    plain = X.rename(columns=expression.gene_id)
    alone = GeneSetScores(gene_sets(), keep_genes=False).fit(plain)
    assert list(alone.transform(plain).columns) == ["geneset:PLANTED", "geneset:RANDOM"]
    with pytest.raises(ValueError, match="no gene set has at least 20 genes"):
        GeneSetScores(gene_sets(), min_size=20).fit(X)
    with pytest.raises(ValueError, match="method"):
        GeneSetScores(gene_sets(), method="gsea").fit(X)


def test_read_gmt(tmp_path):
    path = tmp_path / "sets.gmt"
    path.write_text(
        "HALLMARK_A\thttp://example.org/a\tTP53\tMYC\tTP53\t\n\nSET B\tno link\tEGFR\r\n"
    )
    assert read_gmt(path) == {"HALLMARK_A": ["TP53", "MYC"], "SET B": ["EGFR"]}
    assert load_gene_sets(str(path)) == read_gmt(path)

    bad = tmp_path / "bad.gmt"
    bad.write_text("A\tdesc\tG1\n\nB G2 G3\n")
    with pytest.raises(InputError) as err:
        read_gmt(bad)
    assert "line 3" in str(err.value) and err.value.path == str(bad)
    assert "tab-separated" in err.value.fix
    binary = tmp_path / "binary.gmt"
    binary.write_bytes(b"\xff\xfe\x00A\tB")
    with pytest.raises(InputError, match="not a UTF-8 text file"):
        read_gmt(binary)
    twice = tmp_path / "twice.gmt"
    twice.write_text("A\t\tG1\nA\t\tG2\n")
    with pytest.raises(InputError, match="line 2: gene set 'A' is defined twice"):
        read_gmt(twice)


def test_load_gene_sets_from_a_package(tmp_path, monkeypatch):
    package = tmp_path / "shipped_sets"
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "data" / "h.gmt").write_text("H1\tdesc\tTP53\tMYC\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_gene_sets("package:shipped_sets/data/h.gmt") == {"H1": ["TP53", "MYC"]}
    with pytest.raises(InputError, match="has no file 'data/x.gmt'"):
        load_gene_sets("package:shipped_sets/data/x.gmt")
    with pytest.raises(InputError, match="cannot be imported"):
        load_gene_sets("package:no_such_module_here/h.gmt")
    with pytest.raises(InputError, match="does not exist"):
        load_gene_sets(tmp_path / "absent.gmt")


# ------------------------------------------------------------------ shared behaviour


def fitted_steps():
    """Every step fitted on training rows of a cohort with missing and batched patients."""
    X, _, batch = batched()
    X = X.copy()
    X.iloc[41, 150:] = 0.0  # genes unmeasured in one patient: zero only in that row
    train, test = batch_split(batch)
    with_nan = X.copy()
    with_nan.loc[test[[1, 9]]] = np.nan
    steps = {
        "expressed": (ExpressedGenes(), X),
        "variance": (VariableGenes(50), X),
        "hvg": (VariableGenes(50, method="hvg"), X),
        "combat": (BatchHarmoniser(batch), X),
        "ulm": (GeneSetScores(gene_sets()), X),
        "zscore": (GeneSetScores(gene_sets(), method="zscore"), X),
        "aucell": (GeneSetScores(gene_sets(), method="aucell"), X),
        "present_pca": (
            PresentRows(make_pipeline(VariableGenes(50), StandardScaler(), PCA(5))),
            with_nan,
        ),
        "present_all": (
            PresentRows(
                make_pipeline(
                    BatchHarmoniser(batch), ExpressedGenes(), GeneSetScores(gene_sets())
                ).set_output(transform="pandas")
            ),
            with_nan,
        ),
    }
    return {
        name: (step.fit(frame.loc[train]), frame.loc[test]) for name, (step, frame) in steps.items()
    }


@pytest.fixture(scope="module")
def fitted():
    return fitted_steps()


@pytest.mark.parametrize(
    "name",
    [
        "expressed",
        "variance",
        "hvg",
        "combat",
        "ulm",
        "zscore",
        "aucell",
        "present_pca",
        "present_all",
    ],
)
def test_transform_is_per_patient(fitted, name):
    step, test = fitted[name]
    together = step.transform(test)
    alone = pd.concat([step.transform(test.iloc[[i]]) for i in range(len(test))])
    pd.testing.assert_frame_equal(together, alone, check_exact=False, rtol=1e-10, atol=1e-12)
    assert list(together.columns) == list(step.get_feature_names_out())
    assert together.index.equals(test.index)


def test_pipeline_output_names(fitted):
    step, test = fitted["present_all"]
    names = list(step.get_feature_names_out())
    assert names[-2:] == ["rnaseq:geneset:PLANTED", "rnaseq:geneset:RANDOM"]
    assert all(n.startswith("rnaseq:") for n in names)
    out = step.transform(test)
    assert out.isna().all(axis=1).sum() == 2 and out.dropna().shape[0] == len(test) - 2


@pytest.mark.parametrize(
    "step",
    [
        ExpressedGenes(min_value=0.5, min_fraction=0.2),
        VariableGenes(100, method="hvg", flavor="cell_ranger"),
        BatchHarmoniser(pd.Series({"P1": "a", "P2": "b"}), unseen="keep", mean_only=True),
        GeneSetScores({"S": ["A", "B"]}, method="zscore", min_size=2, keep_genes=False),
        PresentRows(make_pipeline(VariableGenes(10), PCA(2))),
    ],
    ids=lambda s: type(s).__name__,
)
def test_clone_and_params_round_trip(step):
    copy = clone(step)
    params, copied = step.get_params(deep=False), copy.get_params(deep=False)
    assert params.keys() == copied.keys()
    for key, value in params.items():
        if isinstance(value, pd.Series):
            pd.testing.assert_series_equal(copied[key], value)
        elif hasattr(value, "get_params"):
            assert type(copied[key]) is type(value) and copied[key] is not value
        else:
            assert copied[key] == value
    assert type(step)(**params).get_params(deep=False).keys() == params.keys()
    assert copy.get_params(deep=True).keys() == step.get_params(deep=True).keys()


def test_nested_params_reach_the_wrapped_step():
    step = PresentRows(make_pipeline(VariableGenes(10), PCA(2)))
    copy = clone(step).set_params(step__variablegenes__n_genes=5, step__pca__n_components=3)
    assert step.get_params()["step__variablegenes__n_genes"] == 10
    X, _ = cohort()
    fitted = copy.fit(X)
    assert fitted.step_.named_steps["variablegenes"].support_.sum() == 5
    assert list(fitted.get_feature_names_out()) == ["rnaseq:pca0", "rnaseq:pca1", "rnaseq:pca2"]
