"""Cohort-level transcriptomics steps as scikit-learn transformers.

Per-patient RNA-seq features (:mod:`radiotx.features.rnaseq`) use one sample at a time.
The steps here look across patients: which genes are expressed or variable, how large a
batch effect is. Inside a model pipeline they are refitted on the training rows of every
cross-validation fold, so a held-out patient never influences the genes chosen or the
batch correction applied to it; ``transform`` then treats each patient on its own, so a
patient's output does not depend on which other patients are transformed with it.

Input is a patients x genes DataFrame indexed by patient id, with columns such as
``rnaseq:TP53`` or ``TP53``: the gene id is the text after the last ``":"``. Output is a
DataFrame with the same index; kept genes keep their input column names. The inner steps
assume complete rows; :class:`PresentRows` fits and applies them to the patients that have
RNA-seq and gives the others rows of NaN, which later steps of the model impute::

    expression = PresentRows(
        make_pipeline(
            ExpressedGenes(),
            BatchHarmoniser(batches),
            VariableGenes(2000),
            GeneSetScores(load_gene_sets("hallmark.gmt")),
        )
    )

Batch correction (patient ids) and gene-set scores (gene names) need a DataFrame, so they
must come before any step that returns a plain array (``StandardScaler`` or ``PCA``
without ``set_output(transform="pandas")``).
"""

from __future__ import annotations

import importlib.resources
import logging
import math
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.feature_selection import SelectorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from radiotx.errors import InputError

logger = logging.getLogger(__name__)

SEPARATOR = ":"  # "<modality>:<gene>"; the gene id is the text after the last separator
GENESET_PREFIX = "geneset:"
PACKAGE_PREFIX = "package:"

# Pooled within-batch variance at or below which a gene is left out of ComBat: it divides
# by the pooled SD, so such a gene would turn any deviation in a new patient into a huge
# value. The same bound below which combatlearn itself warns about near-zero variance.
_MIN_BATCH_VARIANCE = 1e-10

# Per-sample decoupler methods that need no permutations: each patient's scores come from
# that patient's values alone, so they are leak-free and fast.
GENESET_METHODS = ("ulm", "mlm", "zscore", "aucell")


# ----------------------------------------------------------------------------- helpers


def gene_id(column) -> str:
    """The gene id of a column name: the text after the last ``":"`` (all of it without)."""
    return str(column).rsplit(SEPARATOR, 1)[-1]


def modality_prefix(columns) -> str:
    """``"<modality>:"`` when every column starts with the same ``<modality>:``, else ``""``.

    The modality is the text before the first ``":"``, as in the rest of the project's
    ``"<modality>:<feature>"`` names.
    """
    heads = {str(c).split(SEPARATOR, 1)[0] if SEPARATOR in str(c) else None for c in columns}
    if len(heads) != 1 or None in heads:
        return ""
    return heads.pop() + SEPARATOR


def _rows(X, rows):
    """Rows of a DataFrame, Series or array by position."""
    return X.iloc[rows] if hasattr(X, "iloc") else np.asarray(X)[rows]


def _check_frame(estimator, X, *, reset: bool) -> pd.DataFrame:
    """``X`` itself, after checking that it is a finite numeric DataFrame with the columns
    seen in ``fit``."""
    if not isinstance(X, pd.DataFrame):
        raise ValueError(
            f"{type(estimator).__name__} needs X as a pandas DataFrame indexed by patient id "
            f"with gene columns, got {type(X).__name__}; put it before any step that returns "
            "a plain array, or call set_output(transform='pandas') on those steps"
        )
    _validate_frame(estimator, X, reset=reset)
    return X


def _validate_frame(estimator, X: pd.DataFrame, *, reset: bool) -> None:
    """scikit-learn's checks of a finite numeric table (names, width, values) without its
    per-column pandas checks, which cost more than the step itself on 1,000s of genes: a
    table that fails the fast check gets scikit-learn's own error."""
    numeric = all(dtype.kind in "biuf" for dtype in set(X.dtypes))
    if not numeric or X.shape[0] == 0 or not np.isfinite(X.to_numpy(dtype=float)).all():
        validate_data(estimator, X, reset=reset)
        return
    validate_data(estimator, X, reset=reset, skip_check_array=True)


# ------------------------------------------------------------------------- missing rows


class PresentRows(TransformerMixin, BaseEstimator):
    """Fit and apply ``step`` on the patients who have the modality; NaN rows for the others.

    In a multi-modal design matrix a patient without RNA-seq has a row of NaN in the
    expression block. Cohort-level steps (gene filters, ComBat, PCA) cannot use such rows,
    and imputing whole expression profiles before them would let the imputed values steer
    the gene choice. So ``fit`` fits a clone of ``step`` on the rows that are not entirely
    NaN, and ``transform`` applies it to those rows and returns rows of NaN for the rest, in
    the input order; later steps of the model (imputation) deal with them.

    A row with only some NaN is a sample with a few unmeasured genes (a published matrix
    with gaps): it is kept, so ``step`` must handle NaN, e.g. start with a median
    ``SimpleImputer`` (fitted on the training patients, as everything here).

    Parameters
    ----------
    step : transformer
        Any scikit-learn transformer or ``Pipeline``, e.g.
        ``make_pipeline(VariableGenes(500), StandardScaler(), PCA(10))``.

    Output columns are ``step``'s ``get_feature_names_out()``; when every input column has
    the same ``"<modality>:"`` prefix, output names without any ``":"`` get that prefix
    (``pca0`` -> ``rnaseq:pca0``), so names stay unique across modalities. A DataFrame in
    gives a DataFrame out (same index); an array in gives an array out.

    Attributes
    ----------
    step_ : transformer
        The clone of ``step`` fitted on the training rows with values.
    n_fit_rows_ : int
        Number of rows it was fitted on.
    feature_names_out_ : ndarray of str
        Output column names.
    """

    def __init__(self, step):
        self.step = step

    @staticmethod
    def _complete(X) -> np.ndarray:
        """Rows with at least one value: patients who have the modality."""
        values = np.asarray(X, dtype=float)
        return ~np.isnan(values).all(axis=1)

    def fit(self, X, y=None):
        """Fit a clone of ``step`` on the rows of ``X`` that are not all NaN."""
        validate_data(self, X, skip_check_array=True)
        complete = self._complete(X)
        if complete.sum() < 2:
            raise ValueError(
                f"only {int(complete.sum())} of {len(complete)} training rows have values; "
                "the expression steps need at least 2 patients with RNA-seq"
            )
        rows = np.flatnonzero(complete)
        X_fit = _rows(X, rows)
        y_fit = None if y is None else _rows(y, rows)
        self.step_ = clone(self.step).fit(X_fit, y_fit)
        self.n_fit_rows_ = len(rows)

        inputs = (
            [str(c) for c in X.columns]
            if isinstance(X, pd.DataFrame)
            else [f"x{i}" for i in range(self.n_features_in_)]
        )
        try:
            names = [str(n) for n in self.step_.get_feature_names_out()]
        except AttributeError:  # a step without feature names: number the outputs
            width = np.asarray(self.step_.transform(_rows(X_fit, [0]))).shape[1]
            names = [f"x{i}" for i in range(width)]
        prefix = modality_prefix(inputs)
        self.feature_names_out_ = np.asarray(
            [n if SEPARATOR in n else prefix + n for n in names], dtype=object
        )
        return self

    def transform(self, X):
        """``step``'s output for rows with values, NaN for the others (input row order)."""
        check_is_fitted(self, "step_")
        validate_data(self, X, reset=False, skip_check_array=True)
        complete = self._complete(X)
        rows = np.flatnonzero(complete)
        out = np.full((len(complete), len(self.feature_names_out_)), np.nan)
        if len(rows):
            out[rows] = np.asarray(self.step_.transform(_rows(X, rows)), dtype=float)
        if isinstance(X, pd.DataFrame):
            return pd.DataFrame(out, index=X.index, columns=self.feature_names_out_)
        return out

    def get_feature_names_out(self, input_features=None):
        """Output column names (see the class description)."""
        check_is_fitted(self, "feature_names_out_")
        return self.feature_names_out_.copy()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


# -------------------------------------------------------------------------- gene filters


class _GeneFilter(SelectorMixin, BaseEstimator):
    """Keep a subset of the columns; a DataFrame in gives a DataFrame out."""

    def _get_support_mask(self):
        check_is_fitted(self, "support_")
        return self.support_

    def _names(self) -> list[str]:
        names = getattr(self, "feature_names_in_", None)
        return list(names) if names is not None else [f"x{i}" for i in range(self.n_features_in_)]

    def transform(self, X):
        """The kept columns of ``X``, in input order."""
        check_is_fitted(self, "support_")
        if isinstance(X, pd.DataFrame):
            _validate_frame(self, X, reset=False)
            return X.loc[:, self.support_]
        return super().transform(X)


class ExpressedGenes(_GeneFilter):
    """Keep the genes expressed in enough training patients.

    A gene counts as expressed in a patient when its value exceeds ``min_value``; it is
    kept when that holds for at least ``min_fraction`` of the training patients. With
    log1p(CPM) values the defaults keep genes above about 1.7 CPM in 10 % of the patients:
    genes below that are mostly sampling noise, and their near-zero variance misleads
    variance ranking and ComBat alike.

    Parameters
    ----------
    min_value : float
        Expression level a value must exceed.
    min_fraction : float
        Fraction of training patients (0 to 1) in which a kept gene exceeds ``min_value``.

    Attributes
    ----------
    fraction_ : Series
        Per input column: fraction of training patients above ``min_value``.
    support_ : ndarray of bool
        Kept columns.
    """

    def __init__(self, min_value=1.0, min_fraction=0.1):
        self.min_value = min_value
        self.min_fraction = min_fraction

    def fit(self, X, y=None):
        """Choose the genes from the training rows."""
        if not isinstance(self.min_value, Real) or np.isnan(self.min_value):
            raise ValueError(f"min_value must be a number, got {self.min_value!r}")
        if not isinstance(self.min_fraction, Real) or not 0 <= self.min_fraction <= 1:
            raise ValueError(f"min_fraction must be between 0 and 1, got {self.min_fraction!r}")
        values = validate_data(self, X)
        n = values.shape[0]
        counts = (values > self.min_value).sum(axis=0)
        # A count, not a float fraction, so 3 of 30 patients meets 10 % despite rounding.
        needed = math.ceil(self.min_fraction * n - 1e-9)
        self.fraction_ = pd.Series(counts / n, index=self._names(), name="fraction")
        self.support_ = counts >= needed
        if not self.support_.any():
            raise ValueError(
                f"no gene exceeds {self.min_value} in at least {self.min_fraction:.0%} of the "
                f"{n} training patients (min_value={self.min_value}, "
                f"min_fraction={self.min_fraction}); check that the values are log1p(CPM)-like "
                "or lower the thresholds"
            )
        return self


class VariableGenes(_GeneFilter):
    """Keep the ``n_genes`` most variable genes of the training patients.

    Parameters
    ----------
    n_genes : int
        Number of genes to keep; more than there are columns keeps them all.
    method : {"variance", "hvg"}
        ``"variance"``: the highest sample variance, ties broken by column order.
        ``"hvg"``: ``scanpy.pp.highly_variable_genes(adata, n_top_genes=n_genes,
        flavor=flavor)`` on an AnnData of the training rows. It ranks genes by dispersion
        normalised within bins of similar mean, so highly expressed genes do not win on
        variance alone. It expects log-normalised values (log1p of CPM); scanpy may keep
        more than ``n_genes`` genes when dispersions tie at the cut-off.
    flavor : str
        scanpy's flavour for ``method="hvg"`` (``"seurat"`` or ``"cell_ranger"`` for log
        data). In ``"seurat"`` a gene alone in its mean bin gets normalised dispersion 1,
        so a constant gene can be chosen: remove such genes first (:class:`ExpressedGenes`).

    Attributes
    ----------
    variances_ : Series
        Per input column: variance over the training patients.
    hvg_ : DataFrame or None
        scanpy's table (means, dispersions, ...) for ``method="hvg"``; None when every
        gene was kept without running it.
    support_ : ndarray of bool
        Kept columns (in input order).
    """

    def __init__(self, n_genes=2000, method="variance", flavor="seurat"):
        self.n_genes = n_genes
        self.method = method
        self.flavor = flavor

    def fit(self, X, y=None):
        """Rank the genes on the training rows and keep the top ``n_genes``."""
        if not isinstance(self.n_genes, Integral) or self.n_genes < 1:
            raise ValueError(f"n_genes must be a positive integer, got {self.n_genes!r}")
        if self.method not in ("variance", "hvg"):
            raise ValueError(f"method must be 'variance' or 'hvg', got {self.method!r}")
        values = validate_data(self, X, dtype=np.float64)
        if values.shape[0] < 2:
            raise ValueError("gene variances need at least 2 training patients")
        n_features = values.shape[1]
        names = self._names()
        variances = values.var(axis=0, ddof=1)
        self.variances_ = pd.Series(variances, index=names, name="variance")
        self.hvg_ = None
        if self.n_genes >= n_features:
            self.support_ = np.ones(n_features, dtype=bool)
        elif self.method == "variance":
            top = np.argsort(-variances, kind="stable")[: self.n_genes]
            self.support_ = np.zeros(n_features, dtype=bool)
            self.support_[top] = True
        else:
            self.hvg_ = self._scanpy_hvg(values, X, names)
            self.support_ = self.hvg_["highly_variable"].to_numpy(dtype=bool)
        return self

    def _scanpy_hvg(self, values, X, names) -> pd.DataFrame:
        import anndata as ad
        import scanpy as sc

        if len(set(names)) != len(names):
            raise ValueError("method='hvg' needs unique column names")
        rows = (
            [str(i) for i in X.index]
            if isinstance(X, pd.DataFrame)
            else [str(i) for i in range(len(values))]
        )
        adata = ad.AnnData(
            values.copy(), obs=pd.DataFrame(index=rows), var=pd.DataFrame(index=names)
        )
        adata.obs_names_make_unique()
        table = sc.pp.highly_variable_genes(
            adata, n_top_genes=self.n_genes, flavor=self.flavor, inplace=False
        )
        return table.reindex(names)


# ----------------------------------------------------------------------- batch correction


class BatchHarmoniser(TransformerMixin, BaseEstimator):
    """ComBat batch correction (combatlearn), estimated on the training patients only.

    Each batch's additive and multiplicative effect per gene is estimated from the
    training rows with empirical-Bayes shrinkage (Johnson et al. 2007) and then removed
    from any patient of that batch, one patient at a time, so a held-out patient never
    contributes to its own correction.

    Parameters
    ----------
    batches : Series
        Batch label (sequencing run, site, kit) of every patient, indexed by patient id;
        a dict works as well. A patient of ``X`` without a label is an error.
    unseen : {"error", "keep"}
        Patients whose batch has no training patient cannot be corrected. ``"error"``
        raises :class:`radiotx.errors.InputError` naming the batch and the patients;
        ``"keep"`` passes their rows through unadjusted and logs a warning.
    method : str
        combatlearn's ComBat variant (``"johnson"``: classic ComBat without covariates).
    mean_only : bool
        Correct only the additive (location) effect and keep each batch's spread.

    Rules for degenerate training data (each logged as a warning during ``fit``):

    * a batch with fewer than 2 training patients cannot be estimated (ComBat needs a
      within-batch variance): its patients pass through unadjusted, whatever ``unseen``
      says, since the batch was seen and reported rather than silently new;
    * with fewer than two batches of at least 2 training patients there is no batch
      effect to estimate: every row passes through unadjusted;
    * genes whose pooled within-batch variance on the training rows is (nearly) zero pass
      through unchanged: ComBat divides by the pooled SD, which would blow up any
      deviation in a new patient. This includes genes constant in the training rows.

    ``X`` must be a DataFrame indexed by patient id (the ids look up the batches).

    Attributes
    ----------
    batch_sizes_ : Series
        Training patients per batch label.
    corrected_batches_ : list of str
        Batches with a fitted correction.
    uncorrected_batches_ : list of str
        Training batches with fewer than 2 patients (passed through).
    adjusted_ : ndarray of bool
        Per input column: whether ComBat corrects it.
    combat_ : combatlearn.ComBat or None
        The fitted model (on the corrected batches and adjusted genes), None when nothing
        could be corrected.
    """

    def __init__(self, batches, unseen="error", method="johnson", mean_only=False):
        self.batches = batches
        self.unseen = unseen
        self.method = method
        self.mean_only = mean_only

    def _all_labels(self) -> pd.Series:
        """Every patient's batch label as text (patients without a label left out)."""
        batches = self.batches if isinstance(self.batches, pd.Series) else pd.Series(self.batches)
        if batches.index.has_duplicates:
            dup = batches.index[batches.index.duplicated()].unique().tolist()[:5]
            raise ValueError(f"batches lists patients more than once, e.g. {dup}")
        batches = batches.dropna()
        # Plain text labels: combatlearn turns labels into categories, and unused
        # categories of a categorical Series would count as empty batches.
        return pd.Series(batches.astype(str).to_numpy(dtype=object), index=batches.index)

    def _labels(self, index: pd.Index) -> pd.Series:
        labels = self._all_labels().reindex(index)
        missing = labels.isna().to_numpy()
        if missing.any():
            absent = [str(p) for p in index[missing]]
            raise InputError(
                f"no batch label ({len(absent)} patients without one: {', '.join(absent[:5])})",
                patient=absent[0],
                fix="give every patient with RNA-seq a value in the clinical column named by "
                "rnaseq.preprocess.batch",
            )
        return labels

    def fit(self, X, y=None):
        """Estimate the batch effects on the training rows of ``X``."""
        from combatlearn import ComBat

        if self.unseen not in ("error", "keep"):
            raise ValueError(f"unseen must be 'error' or 'keep', got {self.unseen!r}")
        X = _check_frame(self, X, reset=True)
        labels = self._labels(X.index)
        counts = labels.value_counts().sort_index()
        self.batch_sizes_ = counts.rename("patients")
        self.corrected_batches_ = [str(b) for b in counts.index[counts >= 2]]
        self.uncorrected_batches_ = [str(b) for b in counts.index[counts < 2]]
        self.adjusted_ = np.zeros(X.shape[1], dtype=bool)
        self.combat_ = None
        if self.uncorrected_batches_:
            logger.warning(
                "training batches with fewer than 2 patients (%s) are too small to estimate a "
                "batch effect; their patients pass through unadjusted",
                ", ".join(self.uncorrected_batches_),
            )
        if len(self.corrected_batches_) < 2:
            logger.warning(
                "fewer than two batches with at least 2 training patients (%s); there is "
                "no batch effect to estimate and every patient passes through unadjusted",
                ", ".join(f"{b}: {n}" for b, n in counts.items()),
            )
            return self

        rows = labels.isin(self.corrected_batches_).to_numpy()
        values = X.to_numpy(dtype=float)[rows]
        groups = labels.to_numpy()[rows]
        resid = values.copy()
        for batch in self.corrected_batches_:
            member = groups == batch
            resid[member] -= resid[member].mean(axis=0)
        pooled = (resid**2).mean(axis=0)
        self.adjusted_ = pooled > _MIN_BATCH_VARIANCE
        if not self.adjusted_.all():
            logger.warning(
                "%d genes are constant within the training batches (e.g. %s); they pass "
                "through without batch correction",
                int((~self.adjusted_).sum()),
                ", ".join(map(str, X.columns[~self.adjusted_][:5])),
            )
        if not self.adjusted_.any():
            return self
        self.combat_ = ComBat(
            batch=self._all_labels(), method=self.method, mean_only=self.mean_only
        )
        self.combat_.fit(X.iloc[np.flatnonzero(rows), np.flatnonzero(self.adjusted_)])
        return self

    def transform(self, X):
        """Remove the fitted batch effects from each patient of ``X``."""
        check_is_fitted(self, "batch_sizes_")
        X = _check_frame(self, X, reset=False)
        labels = self._labels(X.index)
        unseen = ~labels.isin(self.batch_sizes_.index).to_numpy()
        if unseen.any():
            names = sorted(labels[unseen].unique())
            patients = [str(p) for p in X.index[unseen]]
            which = (
                f"batch {names[0]!r} has"
                if len(names) == 1
                else (f"batches {', '.join(map(repr, names))} have")
            )
            problem = (
                f"{which} no patient among the training rows, so the batch effect is unknown "
                f"({len(patients)} patients: {', '.join(patients[:5])})"
            )
            if self.unseen == "error":
                raise InputError(
                    problem,
                    patient=patients[0],
                    fix="set rnaseq.preprocess.unseen_batch: keep to pass these patients "
                    "through unadjusted, or stratify the folds by batch, or drop the batch",
                )
            logger.warning("%s; passing them through unadjusted", problem)

        values = X.to_numpy(dtype=float, copy=True)
        rows = np.flatnonzero(labels.isin(self.corrected_batches_).to_numpy())
        if self.combat_ is not None and len(rows):
            cols = np.flatnonzero(self.adjusted_)
            corrected = self.combat_.transform(X.iloc[rows, cols])
            values[np.ix_(rows, cols)] = np.asarray(corrected, dtype=float)
        return pd.DataFrame(values, index=X.index, columns=X.columns)

    def get_feature_names_out(self, input_features=None):
        """The input column names (ComBat changes values, not genes)."""
        check_is_fitted(self, "feature_names_in_")
        return np.asarray(self.feature_names_in_, dtype=object)


# ----------------------------------------------------------------------------- gene sets


def read_gmt(path) -> dict[str, list[str]]:
    """Gene sets of a GMT file: ``{name: [gene, ...]}`` in file order.

    Each line is ``name<TAB>description<TAB>gene<TAB>gene...``. Blank lines and empty
    gene fields (trailing tabs) are skipped, and a gene repeated within a set counts once.
    A line without a name and at least one gene, or a set name used twice, raises
    :class:`radiotx.errors.InputError` with the path and line number.
    """
    path = Path(path)
    fix = (
        "write one gene set per line, tab-separated: name, description, then the genes "
        "(MSigDB .gmt format)"
    )
    if not path.is_file():
        raise InputError("gene set file does not exist", path=path, fix="correct the path")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise InputError("not a UTF-8 text file", path=path, fix=fix) from err
    sets: dict[str, list[str]] = {}
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        fields = line.split("\t")
        name = fields[0].strip()
        genes = [g.strip() for g in fields[2:] if g.strip()]
        if len(fields) < 3 or not name or not genes:
            raise InputError(
                f"line {number} is not a gene set (expected name, description and genes "
                f"separated by tabs, got {line[:60]!r})",
                path=path,
                fix=fix,
            )
        if name in sets:
            raise InputError(
                f"line {number}: gene set {name!r} is defined twice", path=path, fix=fix
            )
        sets[name] = list(dict.fromkeys(genes))
    return sets


def load_gene_sets(spec) -> dict[str, list[str]]:
    """Gene sets from a ``.gmt`` path or from a file shipped inside an installed package.

    ``spec`` is a path, or ``"package:<importable.module>/<relative/path.gmt>"`` resolved
    with :func:`importlib.resources.files`, so curated sets can travel with a package and
    nothing is ever downloaded.
    """
    spec = str(spec)
    if not spec.startswith(PACKAGE_PREFIX):
        return read_gmt(spec)
    module, _, relative = spec[len(PACKAGE_PREFIX) :].partition("/")
    fix = "write package:<importable.module>/<path inside the package>.gmt, or give a file path"
    if not module or not relative:
        raise InputError("gene set location names no module and file", path=spec, fix=fix)
    try:
        resource = importlib.resources.files(module).joinpath(relative)
    except ModuleNotFoundError as err:
        raise InputError(f"module {module!r} cannot be imported", path=spec, fix=fix) from err
    if not resource.is_file():
        raise InputError(f"package {module!r} has no file {relative!r}", path=spec, fix=fix)
    with importlib.resources.as_file(resource) as local:
        return read_gmt(local)


class GeneSetScores(TransformerMixin, BaseEstimator):
    """Per-patient gene-set activity scores with decoupler, optionally next to the genes.

    Parameters
    ----------
    gene_sets : dict
        ``{name: [gene id, ...]}``, e.g. from :func:`load_gene_sets`. Gene ids are matched
        to the text after the last ``":"`` of the column names.
    method : {"ulm", "mlm", "zscore", "aucell"}
        decoupler method. ``"ulm"`` (default): the t-value of a linear fit of the
        patient's expression on set membership across genes. All four score each patient
        from that patient's own values (no permutations, no cohort statistics), so they
        are leak-free; ``fit`` learns nothing from the values.
    min_size : int
        Sets with fewer genes among the columns are dropped in ``fit`` (with a warning):
        scores of a few genes are noise.
    keep_genes : bool
        Output the input columns followed by the scores (True) or the scores alone.

    Score columns are ``"geneset:<NAME>"``, prefixed with the input's ``"<modality>:"``
    when every input column has the same one (``"rnaseq:geneset:HALLMARK_HYPOXIA"``).
    The genes outside a set are its background, so the scores depend on which columns
    reach this step (all genes, or those kept by an earlier filter).

    Attributes
    ----------
    set_sizes_ : Series
        Per gene set: number of its genes among the columns.
    sets_ : list of str
        The scored sets (``gene_sets`` order).
    net_ : DataFrame
        The ``source``/``target``/``weight`` network passed to decoupler.
    score_names_ : ndarray of str
        Names of the score columns.
    """

    def __init__(self, gene_sets, method="ulm", min_size=5, keep_genes=True):
        self.gene_sets = gene_sets
        self.method = method
        self.min_size = min_size
        self.keep_genes = keep_genes

    def fit(self, X, y=None):
        """Record which gene sets have at least ``min_size`` genes among the columns."""
        if self.method not in GENESET_METHODS:
            raise ValueError(f"method must be one of {GENESET_METHODS}, got {self.method!r}")
        if not isinstance(self.min_size, Integral) or self.min_size < 1:
            raise ValueError(f"min_size must be a positive integer, got {self.min_size!r}")
        X = _check_frame(self, X, reset=True)
        genes = [gene_id(c) for c in X.columns]
        dup = pd.Index(genes)[pd.Index(genes).duplicated()].unique().tolist()
        if dup:
            raise ValueError(f"gene ids repeat among the columns (e.g. {dup[:5]})")
        present = set(genes)
        members = {
            str(name): [g for g in dict.fromkeys(map(str, set_genes)) if g in present]
            for name, set_genes in self.gene_sets.items()
        }
        self.set_sizes_ = pd.Series(
            {name: len(found) for name, found in members.items()}, name="genes", dtype=int
        )
        self.sets_ = [n for n, found in members.items() if len(found) >= self.min_size]
        dropped = [n for n in members if n not in self.sets_]
        if dropped:
            logger.warning(
                "%d of %d gene sets have fewer than %d genes among the %d columns and are "
                "not scored: %s",
                len(dropped),
                len(members),
                self.min_size,
                len(genes),
                ", ".join(dropped[:10]) + (" ..." if len(dropped) > 10 else ""),
            )
        if not self.sets_:
            raise ValueError(
                f"no gene set has at least {self.min_size} genes among the columns (e.g. "
                f"{genes[:3]}); check that the gene sets use the same gene ids (symbols "
                "or Ensembl ids) as the expression, or lower min_size"
            )
        self.net_ = pd.DataFrame(
            [(name, g, 1.0) for name in self.sets_ for g in members[name]],
            columns=["source", "target", "weight"],
        )
        self.columns_ = [str(c) for c in X.columns]
        prefix = modality_prefix(self.columns_)
        self.score_names_ = np.asarray(
            [f"{prefix}{GENESET_PREFIX}{name}" for name in self.sets_], dtype=object
        )
        return self

    def scores(self, X) -> pd.DataFrame:
        """The gene-set scores alone (one column per set in :attr:`sets_`)."""
        import decoupler as dc

        check_is_fitted(self, "net_")
        X = _check_frame(self, X, reset=False)
        data = pd.DataFrame(
            X.to_numpy(dtype=float),
            index=[str(i) for i in X.index],
            columns=[gene_id(c) for c in X.columns],
        )
        out = np.full((len(X), len(self.sets_)), np.nan)
        if len(X):
            # empty=False: by default decoupler drops genes that are zero in every row it
            # is given, which would make a patient's score depend on the other patients.
            es, _ = getattr(dc.mt, self.method)(
                data=data, net=self.net_, tmin=self.min_size, empty=False, verbose=False
            )
            out = es.reindex(columns=self.sets_).to_numpy(dtype=float)
        return pd.DataFrame(out, index=X.index, columns=self.score_names_)

    def transform(self, X):
        """The input columns (if ``keep_genes``) followed by the gene-set scores."""
        scores = self.scores(X)
        return pd.concat([X, scores], axis=1) if self.keep_genes else scores

    def get_feature_names_out(self, input_features=None):
        """Input column names (if ``keep_genes``) followed by the score names."""
        check_is_fitted(self, "score_names_")
        names = self.columns_ if self.keep_genes else []
        return np.asarray(names + list(self.score_names_), dtype=object)
