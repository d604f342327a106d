"""Robustness of radiomics features to segmentation uncertainty.

A feature that changes more between plausible contours of the same tumour than between
tumours measures the reader rather than the tumour. Each patient's mask is perturbed
(eroded, dilated, shifted by one voxel), the features are recomputed on every perturbed
mask, and the agreement of each feature across perturbations is summarised by ICC(3,1).

The long table used throughout has a two-level row index ``(patient_id, perturbation)``
and one column per pyradiomics feature (``original_glcm_Contrast``, no modality prefix)::

    table = pd.concat(
        {pid: perturbed_features(image, mask, params) for pid, (image, mask) in cases},
        names=["patient_id", "perturbation"],
    )

:func:`stability_table` describes a whole cohort; :class:`StabilityFilter` selects stable
features inside a model pipeline, from the training patients of each fold only.
"""

from __future__ import annotations

import re
import warnings
from numbers import Real

import numpy as np
import pandas as pd
import SimpleITK as sitk
from sklearn.base import BaseEstimator
from sklearn.feature_selection import SelectorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from radiotx.features import radiomics

PERTURBATIONS = ("original", "erode1", "dilate1", "shift+x", "shift-x", "shift+y", "shift-y")

# erode<n>/dilate<n>: ball of radius n voxels on every axis; the "xy" suffix keeps the
# through-plane radius at 0. shift<sign><axis>: translation by one voxel.
_KIND = re.compile(
    r"(?P<morph>erode|dilate)(?P<radius>[1-9]\d*)(?P<xy>xy)?|shift(?P<sign>[+-])(?P<axis>[xyz])"
)

# Relative RMS spread below which a feature counts as constant (round-off, not signal).
_CONSTANT_RTOL = 1e-10


# --------------------------------------------------------------------------- perturbation


def perturb(mask: sitk.Image, kind: str, label: int = 1) -> sitk.Image:
    """The ROI ``mask == label`` as a 0/1 ``uint8`` mask, perturbed as ``kind`` says.

    ``original`` leaves the ROI as it is; ``erode<n>``/``dilate<n>`` apply a binary
    erosion/dilation with a ball of radius ``n`` voxels (``erode1xy``/``dilate1xy``: in-plane
    only); ``shift+x``, ``shift-y``, ... move the ROI by one voxel towards increasing or
    decreasing index along that image axis. The result has the geometry of ``mask``.

    The radius is counted in voxels on each axis, not in mm: a reader's uncertainty is about
    which voxels belong to the tumour, so one voxel is the natural unit on every axis. On
    anisotropic grids the through-plane change is physically larger (for 0.8 x 0.8 x 2.5 mm
    voxels: 0.8 mm in-plane, 2.5 mm through-plane, i.e. one end slice more or less), which
    matches the real disagreement about the first and last slice of a tumour. Use the
    ``xy`` variants for thick-slice data where that would be too coarse.
    """
    binary = mask == label  # uint8 0/1 with the mask's geometry
    if kind == "original":
        return binary
    match = _KIND.fullmatch(kind)
    if match is None:
        raise ValueError(
            f"unknown perturbation {kind!r}; use 'original', 'erode<n>', 'dilate<n>' "
            "(optionally with the suffix 'xy'), or 'shift' with +/- and x/y/z"
        )
    dim = binary.GetDimension()
    if match["morph"]:
        n = int(match["radius"])
        radius = [n, n] + [0 if match["xy"] else n] * (dim - 2)
        if match["morph"] == "erode":
            # Voxels outside the image count as tumour: where the field of view cuts the
            # ROI, its edge is not a drawn contour and should not move.
            return sitk.BinaryErode(binary, radius, sitk.sitkBall, 0, 1, True)
        return sitk.BinaryDilate(binary, radius, sitk.sitkBall, 0, 1)
    axis = "xyz".index(match["axis"])
    if axis >= dim:
        raise ValueError(f"cannot shift along {match['axis']} in a {dim}-D mask")
    voxels = sitk.GetArrayViewFromImage(binary)
    shifted = np.zeros_like(voxels)
    src, dst = [slice(None)] * dim, [slice(None)] * dim
    k = dim - 1 - axis  # numpy arrays are (z, y, x)
    if match["sign"] == "+":
        src[k], dst[k] = slice(0, -1), slice(1, None)
    else:
        src[k], dst[k] = slice(1, None), slice(0, -1)
    # Content moving out of the volume is lost rather than wrapped to the opposite side.
    shifted[tuple(dst)] = voxels[tuple(src)]
    result = sitk.GetImageFromArray(shifted)
    result.CopyInformation(binary)
    return result


def perturbed_features(
    image: sitk.Image, mask: sitk.Image, params, label: int = 1, kinds=PERTURBATIONS
) -> pd.DataFrame:
    """pyradiomics features on every perturbed mask: one row per kind, one column per feature.

    A perturbation whose ROI pyradiomics rejects (an erosion that leaves too few voxels)
    gives a row of NaN and a warning; :func:`icc31` then leaves that patient out. A failure
    on the unperturbed ROI is raised, since then the input rather than the contour is at
    fault.
    """
    kinds = list(kinds)
    if len(set(kinds)) != len(kinds):
        raise ValueError(f"perturbation kinds repeat: {kinds}")
    if not kinds:
        raise ValueError("no perturbation kinds given")
    # Perturb first so that an unknown kind fails before any feature is computed.
    masks = {kind: perturb(mask, kind, label) for kind in kinds}
    rows, first_error = {}, None
    for kind, roi in masks.items():
        try:
            rows[kind] = radiomics.compute(image, roi, params, label=1)
        except (ValueError, RuntimeError) as err:
            if kind == "original":
                raise
            first_error = first_error or err
            warnings.warn(f"features undefined on the {kind} mask: {err}", stacklevel=2)
    if not rows:
        raise first_error
    table = pd.DataFrame(rows).T.reindex(kinds)
    table.index.name = "perturbation"
    return table


# -------------------------------------------------------------------------------------- ICC


def _check_long(table: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(table, pd.DataFrame):
        raise ValueError(f"expected a DataFrame, got {type(table).__name__}")
    if not isinstance(table.index, pd.MultiIndex) or table.index.nlevels != 2:
        raise ValueError("the table needs a two-level row index (patient_id, perturbation)")
    if table.index.has_duplicates:
        dupes = table.index[table.index.duplicated()].unique().tolist()[:5]
        raise ValueError(f"(patient, perturbation) rows repeat, e.g. {dupes}")
    return table


def _icc31(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """ICC(3,1) and the number of complete patients of every column of a long table."""
    _check_long(table)
    patients = table.index.unique(level=0)
    kinds = table.index.unique(level=1)
    n_all, k = len(patients), len(kinds)
    grid = pd.MultiIndex.from_product([patients, kinds])
    # Missing (patient, perturbation) rows become NaN and drop that patient below.
    values = table.reindex(grid).to_numpy(dtype=float).reshape(n_all, k, table.shape[1])
    complete = np.isfinite(values).all(axis=1)  # (patients, features)
    n = complete.sum(axis=0)
    weight = complete[:, None, :]
    x = np.where(weight, values, 0.0)

    with np.errstate(invalid="ignore", divide="ignore"):
        grand = x.sum(axis=(0, 1)) / (n * k)
        row_mean = x.mean(axis=1)  # per patient
        col_mean = x.sum(axis=0) / n  # per perturbation, over complete patients
        resid = np.where(weight, x - row_mean[:, None, :] - col_mean[None] + grand, 0.0)
        ss_rows = k * np.sum(np.where(complete, row_mean - grand, 0.0) ** 2, axis=0)
        ss_err = np.sum(resid**2, axis=(0, 1))
        ms_rows = ss_rows / (n - 1)
        ms_err = ss_err / ((n - 1) * (k - 1))
        icc = (ms_rows - ms_err) / (ms_rows + (k - 1) * ms_err)

        ss_tot = np.sum(np.where(weight, x - grand, 0.0) ** 2, axis=(0, 1))
        scale = np.max(np.abs(x), axis=(0, 1), initial=0.0)
        constant = ss_tot <= (_CONSTANT_RTOL * scale) ** 2 * n * k
    icc[(n < 2) | (k < 2) | constant] = np.nan
    return icc, n


def icc31(table: pd.DataFrame) -> pd.Series:
    """ICC(3,1) of every feature of a long ``(patient_id, perturbation)`` x feature table.

    Two-way mixed effects, consistency, single measurement (Shrout & Fleiss 1979 ICC(3,1);
    McGraw & Wong 1996 ICC(C,1)): ``(MSR - MSE) / (MSR + (k - 1) MSE)`` with ``k``
    perturbations. Consistency means that a shift common to all patients (every dilated
    volume is larger) does not count against a feature; only disagreement about how
    patients rank and differ does.

    Missing data: each feature uses its complete patients, those with a finite value for
    every perturbation in the table. A feature with fewer than two complete patients, or
    constant over them, gets NaN.
    """
    icc, _ = _icc31(table)
    return pd.Series(icc, index=pd.Index(table.columns, name="feature"), name="icc")


def stability_table(perturbed: pd.DataFrame, threshold: float = 0.75) -> pd.DataFrame:
    """Per feature: ``icc``, ``n_patients`` (complete cases) and ``stable`` (icc >= threshold),
    most stable first and undefined ICCs last."""
    icc, n = _icc31(perturbed)
    table = pd.DataFrame(
        {"icc": icc, "n_patients": n.astype(int), "stable": icc >= threshold},
        index=pd.Index(perturbed.columns, name="feature"),
    )
    return table.sort_index(kind="stable").sort_values(
        "icc", ascending=False, na_position="last", kind="stable"
    )


# ----------------------------------------------------------------------------- selection


class StabilityFilter(SelectorMixin, BaseEstimator):
    """Keep the columns whose ICC(3,1) on the training patients is at least ``threshold``.

    Parameters
    ----------
    perturbed : DataFrame or None
        Long table as for :func:`icc31`, features named as pyradiomics names them. ``None``
        keeps every column, so a pipeline can always contain the filter.
    threshold : float
        Minimum ICC(3,1) of a kept feature (0.75: "good" reliability, Koo & Li 2016).
    separator : str
        Columns of ``X`` are ``<modality><separator><feature>``; the text after the first
        separator (or the whole name, without one) is looked up in ``perturbed``.

    ``fit`` needs ``X`` as a DataFrame indexed by patient id and computes the ICC on the
    patients present in both ``X`` and ``perturbed``, so within cross-validation the choice
    depends on training patients only. Columns that ``perturbed`` lacks (clinical or RNA-seq
    features, say) are kept: the filter only rejects features shown to be unstable. Columns
    it has but whose ICC is undefined (constant, or fewer than two complete patients) are
    dropped: their stability cannot be shown. Use one filter per imaging modality.

    Attributes
    ----------
    icc_ : Series
        ICC(3,1) per input column (NaN where untested or undefined).
    tested_ : ndarray of bool
        Whether ``perturbed`` holds the column.
    support_ : ndarray of bool
        Kept columns.
    patients_ : Index
        Training patients the ICC was computed on.
    """

    def __init__(self, perturbed=None, threshold=0.75, separator=":"):
        self.perturbed = perturbed
        self.threshold = threshold
        self.separator = separator

    def fit(self, X, y=None):
        """Compute the ICC of each column on the training patients and choose the columns."""
        if not isinstance(self.threshold, Real) or np.isnan(self.threshold):
            raise ValueError(f"threshold must be a number, got {self.threshold!r}")
        if self.perturbed is not None and not isinstance(X, pd.DataFrame):
            raise ValueError(
                "StabilityFilter with perturbation data needs X as a pandas DataFrame indexed "
                f"by patient id, got {type(X).__name__}; make it the first step of its "
                "ColumnTransformer block, or call set_output(transform='pandas') on the "
                "steps before it"
            )
        columns = list(X.columns) if isinstance(X, pd.DataFrame) else None
        index = X.index if isinstance(X, pd.DataFrame) else None
        validate_data(self, X, ensure_all_finite="allow-nan")
        names = columns if columns is not None else [f"x{i}" for i in range(self.n_features_in_)]

        if self.perturbed is None:
            self.icc_ = pd.Series(np.nan, index=names, name="icc")
            self.tested_ = np.zeros(len(names), dtype=bool)
            self.support_ = np.ones(len(names), dtype=bool)
            self.patients_ = pd.Index([], name="patient_id")
            return self

        perturbed = _check_long(self.perturbed)
        patients = index.unique().intersection(perturbed.index.unique(level=0))
        if patients.empty:
            raise ValueError(
                "none of the patients of X has perturbation data; X.index must hold the "
                "patient ids of the first level of the perturbed table"
            )
        features = [str(c).split(self.separator, 1)[-1] for c in names]
        tested = np.array([f in perturbed.columns for f in features], dtype=bool)
        if not tested.any():
            raise ValueError(
                f"no column of X matches a perturbed feature after removing the "
                f"'<modality>{self.separator}' prefix (e.g. {names[:3]} vs "
                f"{list(perturbed.columns[:3])})"
            )
        used = pd.Index(features)[tested].unique()
        rows = perturbed.index.get_level_values(0).isin(patients)
        icc = icc31(perturbed.loc[rows, used])
        self.icc_ = pd.Series(icc.reindex(features).to_numpy(), index=names, name="icc")
        self.icc_[~tested] = np.nan
        self.tested_ = tested
        self.support_ = ~tested | (self.icc_.to_numpy() >= self.threshold)
        self.patients_ = patients.rename("patient_id")
        return self

    def _get_support_mask(self):
        check_is_fitted(self, "support_")
        return self.support_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Selecting columns is indifferent to missing values; imputation may come later.
        tags.input_tags.allow_nan = True
        return tags


def for_patient(table: pd.DataFrame, patient_id: str) -> pd.DataFrame:
    """One patient's perturbation rows in the long (patient_id, perturbation) layout."""
    index = pd.MultiIndex.from_product(
        [[patient_id], table.index], names=["patient_id", "perturbation"]
    )
    return table.set_axis(index, axis=0)
