"""Deterministic synthetic multi-modal demo cohort.

Every patient gets a CT-like NIfTI volume with a tumour mask, most get an RNA-seq count
table, and all get a row of clinical data. A hidden binary label (the ``response``
endpoint) plants a moderate signal in each modality, so a model on the demo cohort should
do better than chance but not perfectly. The generative truth is written to
``ground_truth.json``.

Randomness comes from independent streams keyed by ``[seed, patient_number, stream]``, so a
patient's files do not depend on the cohort size once its label and RNA-seq availability
are fixed.

Usage::

    python -m radiotx.demo --outdir resources/demo [--n-patients 80] [--seed 42]
"""

from __future__ import annotations

import argparse
import json
import time
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk
from scipy import ndimage

# Image geometry (x, y, z order, as SimpleITK uses).
SIZE = (96, 96, 40)
SPACING = (0.8, 0.8, 2.5)
ORIGIN = tuple(-(n - 1) * s / 2.0 for n, s in zip(SIZE, SPACING, strict=True))

PREVALENCE = 0.3
N_GENES = 400
N_DE_GENES = 24
MITO_GENES = (
    "MT-ND1",
    "MT-ND2",
    "MT-CO1",
    "MT-CO2",
    "MT-ATP8",
    "MT-ATP6",
    "MT-CO3",
    "MT-ND3",
    "MT-ND4L",
    "MT-ND4",
    "MT-ND5",
    "MT-ND6",
    "MT-CYB",
)
# Scanner noise differs by acquisition site: a batch effect that carries no label signal.
SITES = ("A", "B", "C")
SITE_PROBS = (0.4, 0.35, 0.25)
SITE_NOISE_HU = {"A": 10.0, "B": 14.0, "C": 8.0}
BIASED_SITE = "B"  # the site of the optional planted bias (see tumour_parameters)

# Class means (negatives, positives) of the hidden tumour parameters; spreads in
# tumour_parameters() make the classes overlap.
RADIUS_MM = (8.5, 10.4)
LOBULATION = (0.07, 0.115)
TEXTURE_SD = (20.0, 31.0)
TUMOUR_MEAN_HU = 30.0

# Stream ids for per-patient generators; cohort-level streams use patient number 0.
_DESIGN, _GENES, _GENE_SETS = 0, 1, 2
_TUMOUR, _IMAGE, _RNASEQ, _CLINICAL = 0, 1, 2, 3

IMAGE_SIGNAL_FEATURES = [
    "original_shape_VoxelVolume",
    "original_shape_MeshVolume",
    "original_shape_SurfaceArea",
    "original_shape_Maximum3DDiameter",
    "original_shape_MajorAxisLength",
    "original_shape_MinorAxisLength",
    "original_shape_Sphericity",
    "original_shape_SurfaceVolumeRatio",
    "original_firstorder_Variance",
    "original_firstorder_MeanAbsoluteDeviation",
    "original_firstorder_InterquartileRange",
    "original_firstorder_Entropy",
    "original_firstorder_Uniformity",
    "original_glcm_JointEntropy",
    "original_glcm_Contrast",
]
IMAGE_FEATURES_LOWER_IN_POSITIVES = [
    "original_shape_Sphericity",
    "original_shape_SurfaceVolumeRatio",
    "original_firstorder_Uniformity",
]


def _rng(seed: int, patient: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, patient, stream])


def _pid_width(n_patients: int) -> int:
    return max(3, len(str(n_patients)))


def _number(pid: str) -> int:
    return int(pid[1:])


# ---------------------------------------------------------------------------- cohort design


def design(n_patients: int = 80, seed: int = 42, rnaseq_missing: float = 0.2) -> pd.DataFrame:
    """Latent cohort table.

    Returns
    -------
    pandas.DataFrame
        Columns ``patient_id``, ``label`` (int 0/1, exactly ``round(0.3 * n)`` positives)
        and ``has_rnaseq`` (bool, exactly ``round(rnaseq_missing * n)`` False), both drawn
        at random and independently.
    """
    if n_patients < 1:
        raise ValueError("n_patients must be positive")
    if not 0.0 <= rnaseq_missing <= 1.0:
        raise ValueError("rnaseq_missing must be in [0, 1]")
    rng = _rng(seed, 0, _DESIGN)
    width = _pid_width(n_patients)
    label = np.zeros(n_patients, dtype=int)
    label[rng.choice(n_patients, round(PREVALENCE * n_patients), replace=False)] = 1
    has_rnaseq = np.ones(n_patients, dtype=bool)
    has_rnaseq[rng.choice(n_patients, round(rnaseq_missing * n_patients), replace=False)] = False
    return pd.DataFrame(
        {
            "patient_id": [f"P{i:0{width}d}" for i in range(1, n_patients + 1)],
            "label": label,
            "has_rnaseq": has_rnaseq,
        }
    )


def _join(outdir: str | Path, *parts: str) -> str:
    return "/".join([str(outdir).rstrip("/"), *parts])


def patient_sheet(
    outdir: str | Path, n_patients: int = 80, seed: int = 42, rnaseq_missing: float = 0.2
) -> pd.DataFrame:
    """Patient sheet with columns ``patient_id``, ``image``, ``mask``, ``rnaseq``.

    Paths are ``outdir`` joined with ``/`` (not resolved); ``rnaseq`` is ``""`` for
    patients without RNA-seq.
    """
    d = design(n_patients, seed, rnaseq_missing)
    pids = d["patient_id"]
    return pd.DataFrame(
        {
            "patient_id": pids,
            "image": [_join(outdir, "images", f"{p}_ct.nii.gz") for p in pids],
            "mask": [_join(outdir, "masks", f"{p}_mask.nii.gz") for p in pids],
            "rnaseq": [
                _join(outdir, "rnaseq", f"{p}.tsv") if has else ""
                for p, has in zip(pids, d["has_rnaseq"], strict=True)
            ],
        }
    )


# ---------------------------------------------------------------------------------- tumour


def tumour_parameters(
    pid: str, label: int, seed: int = 42, site_bias_mm: float = 0.0
) -> dict[str, float]:
    """Hidden tumour parameters of one patient.

    ``site_bias_mm`` plants a subgroup bias: the tumours of site :data:`BIASED_SITE` are
    that much larger whatever the label, as when one centre refers later-stage disease or
    its scanner's reconstruction inflates volumes. A model of the pooled cohort then
    over-calls that site's patients (higher false-positive and true-positive rates).

    Returns
    -------
    dict
        ``radius_mm`` (equivalent radius before lobulation), ``lobulation`` (RMS of the
        relative radial deviation due to lobules) and ``texture_sd`` (HU, internal
        heterogeneity).
    """
    rng = _rng(seed, _number(pid), _TUMOUR)
    # Class distributions overlap on purpose: each parameter alone separates only weakly.
    radius = float(np.clip(rng.normal(RADIUS_MM[label], 2.0), 6.0, 15.0))
    if site_bias_mm and patient_site(pid, seed) == BIASED_SITE:
        radius = min(radius + site_bias_mm, 17.0)
    lobulation = float(np.clip(rng.normal(LOBULATION[label], 0.04), 0.0, 0.2))
    texture_sd = float(np.clip(rng.lognormal(np.log(TEXTURE_SD[label]), 0.4), 8.0, 80.0))
    return {"radius_mm": radius, "lobulation": lobulation, "texture_sd": texture_sd}


def tumour_table(d: pd.DataFrame, seed: int = 42, site_bias_mm: float = 0.0) -> pd.DataFrame:
    """Hidden tumour parameters for every patient of a :func:`design` table."""
    rows = [
        tumour_parameters(r.patient_id, int(r.label), seed, site_bias_mm) for r in d.itertuples()
    ]
    return pd.concat([d[["patient_id", "label"]], pd.DataFrame(rows, index=d.index)], axis=1)


@lru_cache(maxsize=1)
def _sphere_points(n: int = 2000) -> np.ndarray:
    # Fibonacci lattice: near-uniform directions used to normalise the lobulation field.
    k = np.arange(n) + 0.5
    phi = np.arccos(1 - 2 * k / n)
    theta = np.pi * (1 + 5**0.5) * k
    return np.stack([np.cos(theta) * np.sin(phi), np.sin(theta) * np.sin(phi), np.cos(phi)], 1)


class _Lobules:
    """Smooth random field on the unit sphere with zero mean and unit RMS."""

    def __init__(self, rng: np.random.Generator, n_bumps: int = 10):
        v = rng.standard_normal((n_bumps, 3))
        self.dirs = v / np.linalg.norm(v, axis=1, keepdims=True)
        self.kappa = rng.uniform(6.0, 14.0, n_bumps)
        # Mostly outward bumps: lobules protrude rather than indent.
        self.weight = rng.uniform(0.5, 1.0, n_bumps) * np.where(
            rng.random(n_bumps) < 0.75, 1.0, -1.0
        )
        ref = self._raw(_sphere_points())
        self.mean = ref.mean()
        self.scale = ref.std()
        self.max = float((ref.max() - self.mean) / self.scale)

    def _raw(self, u: np.ndarray) -> np.ndarray:
        return np.exp((u @ self.dirs.T - 1.0) * self.kappa) @ self.weight

    def __call__(self, u: np.ndarray) -> np.ndarray:
        return (self._raw(u) - self.mean) / self.scale


def _grid_mm(shape_zyx: tuple[int, int, int], start=(0, 0, 0)) -> tuple[np.ndarray, ...]:
    """Physical x, y, z coordinates (mm) of a block of voxels, broadcastable (z, y, x)."""
    z0, y0, x0 = start
    nz, ny, nx = shape_zyx
    x = ORIGIN[0] + (x0 + np.arange(nx)) * SPACING[0]
    y = ORIGIN[1] + (y0 + np.arange(ny)) * SPACING[1]
    z = ORIGIN[2] + (z0 + np.arange(nz)) * SPACING[2]
    return x[None, None, :], y[None, :, None], z[:, None, None]


def _smooth_noise(rng: np.random.Generator, shape, sigma_mm: float) -> np.ndarray:
    """Spatially correlated unit-variance noise (sigma in mm, spacing-aware)."""
    sigma_vox = (sigma_mm / SPACING[2], sigma_mm / SPACING[1], sigma_mm / SPACING[0])
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma_vox, mode="reflect")
    return field / field.std()


def _anatomy(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, dict]:
    """Noise-free chest phantom in HU plus body mask and lung centres."""
    shape = SIZE[::-1]
    x, y, z = _grid_mm(shape)
    a, b = rng.uniform(33.0, 36.0), rng.uniform(25.0, 28.0)
    body = ((x / a) ** 2 + (y / b) ** 2 <= 1.0) & np.ones(shape, dtype=bool)
    inner = (x / (a - 3.0)) ** 2 + (y / (b - 3.0)) ** 2 <= 1.0
    hu = np.full(shape, -1000.0)
    hu[body] = -90.0  # subcutaneous fat
    hu[body & inner] = 40.0
    lungs = np.zeros(shape, dtype=bool)
    centres = {}
    for side in (-1, 1):
        cx, cy = side * rng.uniform(14.0, 16.0), rng.uniform(-2.0, 0.0)
        ax, ay, az = rng.uniform(10.0, 12.0), rng.uniform(16.0, 18.0), rng.uniform(55.0, 62.0)
        lungs |= ((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2 + (z / az) ** 2 <= 1.0
        centres[side] = (cx, cy)
    hu[lungs] = -850.0
    vertebra = (x**2 + (y - 19.0) ** 2 <= 5.0**2) & np.ones(shape, dtype=bool)
    hu[vertebra] = 450.0
    # Partial-volume smoothing of organ boundaries.
    hu = ndimage.gaussian_filter(hu, (0.3, 0.9, 0.9), mode="nearest")
    lung_frac = ndimage.gaussian_filter(lungs.astype(float), (0.3, 0.9, 0.9))
    hu += 25.0 * lung_frac * _smooth_noise(rng, shape, 1.5)
    return hu, body, centres


def _rotation_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _tumour(
    rng: np.random.Generator, params: dict[str, float], centres: dict
) -> tuple[np.ndarray, tuple[slice, ...], np.ndarray]:
    """Soft tumour membership and internal intensities on a bounding block.

    Returns membership in [0, 1] (partial volume at the border), the block's slices in
    (z, y, x) order and tumour HU values on the block.
    """
    radius, lob = params["radius_mm"], params["lobulation"]
    axes = np.exp(np.clip(rng.normal(0.0, 0.1, 3), -0.2, 0.2))
    axes /= np.prod(axes) ** (1 / 3)
    rot = _rotation_z(rng.uniform(0.0, np.pi))
    lobules = _Lobules(rng)
    border_mm = 1.0
    reach = radius * (1.0 + lob * lobules.max) * axes.max() + border_mm + 1.0
    # Centre in the medial part of a lung; z chosen so the tumour stays inside the volume.
    side = 1 if rng.random() < 0.5 else -1
    cx = side * rng.uniform(9.0, 15.0)
    cy = centres[side][1] + rng.uniform(-5.0, 5.0)
    half_z = (SIZE[2] - 1) * SPACING[2] / 2.0
    z_lim = max(half_z - reach - 2 * SPACING[2], 0.0)
    centre = np.array([cx, cy, rng.uniform(-z_lim, z_lim)])

    lo = [int(np.floor((centre[i] - reach - ORIGIN[i]) / SPACING[i])) for i in range(3)]
    hi = [int(np.ceil((centre[i] + reach - ORIGIN[i]) / SPACING[i])) + 1 for i in range(3)]
    lo = [max(v, 0) for v in lo]
    hi = [min(v, n) for v, n in zip(hi, SIZE, strict=True)]
    block = (slice(lo[2], hi[2]), slice(lo[1], hi[1]), slice(lo[0], hi[0]))
    shape = tuple(h - low for low, h in zip(lo[::-1], hi[::-1], strict=True))

    x, y, z = _grid_mm(shape, start=(lo[2], lo[1], lo[0]))
    p = np.stack(np.broadcast_arrays(x - centre[0], y - centre[1], z - centre[2]), axis=-1)
    q = (p @ rot) / axes
    dist = np.linalg.norm(q, axis=-1)
    u = q / np.maximum(dist, 1e-9)[..., None]
    surface = radius * (1.0 + lob * lobules(u.reshape(-1, 3)).reshape(dist.shape))
    membership = np.clip((surface - dist) / border_mm + 0.5, 0.0, 1.0)
    values = TUMOUR_MEAN_HU + params["texture_sd"] * _smooth_noise(rng, shape, 1.6)
    return membership, block, values


def tumour_case(
    pid: str, label: int, seed: int = 42, site_bias_mm: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """CT-like volume (int16 HU) and tumour mask (uint8), both as (z, y, x) arrays."""
    params = tumour_parameters(pid, label, seed, site_bias_mm)
    rng = _rng(seed, _number(pid), _IMAGE)
    hu, body, centres = _anatomy(rng)
    membership, block, values = _tumour(rng, params, centres)
    membership = membership * body[block]
    hu[block] = hu[block] * (1.0 - membership) + values * membership
    mask = np.zeros(hu.shape, dtype=np.uint8)
    # A slightly conservative contour, as drawn by a reader: the partial-volume rim then
    # stays mostly outside the mask and intensity features reflect internal texture.
    mask[block] = membership >= 0.85
    hu += rng.normal(0.0, SITE_NOISE_HU[patient_site(pid, seed)], hu.shape)
    image = np.clip(np.rint(hu), -1024, 3071).astype(np.int16)
    return image, mask


def _to_sitk(array: np.ndarray) -> sitk.Image:
    img = sitk.GetImageFromArray(array)
    img.SetSpacing(SPACING)
    img.SetOrigin(ORIGIN)
    img.SetDirection((1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
    return img


def write_case(
    image_path: str | Path, mask_path: str | Path, pid: str, label: int, seed: int,
    site_bias_mm: float = 0.0,
):  # fmt: skip
    """Write one patient's image and mask as NIfTI."""
    image, mask = tumour_case(pid, label, seed, site_bias_mm)
    sitk.WriteImage(_to_sitk(image), str(image_path), useCompression=True)
    sitk.WriteImage(_to_sitk(mask), str(mask_path), useCompression=True)


# --------------------------------------------------------------------------------- RNA-seq


@lru_cache(maxsize=1)
def gene_names() -> tuple[str, ...]:
    """Made-up gene symbols; identical for every seed, mitochondrial genes last."""
    rng = np.random.default_rng(20240611)
    onset = list("BCDFGHKLMNPRSTVWZ")
    vowels = list("AEIOU")
    coda = list("BDKLMNPRSTX")
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < N_GENES - len(MITO_GENES):
        stem = "".join([rng.choice(onset), rng.choice(vowels), rng.choice(coda), rng.choice(onset)])
        name = f"{stem}{rng.integers(1, 20)}"
        if name not in seen:
            seen.add(name)
            names.append(name)
    return tuple(names) + tuple(MITO_GENES)


def gene_model(seed: int = 42) -> pd.DataFrame:
    """Per-gene baseline mean, NB dispersion and log2 fold change (positives vs negatives)."""
    rng = _rng(seed, 0, _GENES)
    names = gene_names()
    base = rng.lognormal(np.log(1500.0), 1.4, N_GENES)
    is_mito = np.array([n.startswith("MT-") for n in names])
    # Mitochondrial transcripts are abundant in real libraries.
    base[is_mito] = rng.lognormal(np.log(8000.0), 0.5, is_mito.sum())
    dispersion = rng.uniform(0.2, 0.4, N_GENES)
    # DE genes among reasonably expressed nuclear genes so the signal is detectable.
    eligible = np.flatnonzero(~is_mito & (base > np.quantile(base, 0.25)))
    de = rng.choice(eligible, N_DE_GENES, replace=False)
    sign = np.repeat([1.0, -1.0], [N_DE_GENES // 2, N_DE_GENES - N_DE_GENES // 2])
    log2fc = np.zeros(N_GENES)
    log2fc[de] = sign * rng.uniform(0.5, 0.8, N_DE_GENES)
    return pd.DataFrame(
        {"base_mean": base, "dispersion": dispersion, "log2fc": log2fc, "mito": is_mito},
        index=pd.Index(names, name="gene"),
    )


def rnaseq_counts(pid: str, label: int, seed: int = 42, model: pd.DataFrame | None = None):
    """Negative binomial counts of one patient as an int64 Series indexed by gene."""
    model = gene_model(seed) if model is None else model
    rng = _rng(seed, _number(pid), _RNASEQ)
    size_factor = rng.lognormal(0.0, 0.25)
    mu = model["base_mean"].to_numpy() * size_factor * 2.0 ** (model["log2fc"].to_numpy() * label)
    r = 1.0 / model["dispersion"].to_numpy()
    counts = rng.negative_binomial(r, r / (r + mu))
    return pd.Series(counts.astype(np.int64), index=model.index, name="count")


def write_rnaseq(path: str | Path, counts: pd.Series):
    counts.rename("count").reset_index().to_csv(path, sep="\t", index=False, lineterminator="\n")


# -------------------------------------------------------------------------------- clinical


def patient_site(pid: str, seed: int = 42) -> str:
    """Acquisition site; independent of the label."""
    return str(_rng(seed, _number(pid), _CLINICAL).choice(SITES, p=SITE_PROBS))


def clinical_row(pid: str, label: int, seed: int = 42) -> dict:
    """One clinical record with weak label signal, ~5 % missing age/smoking, and overall
    survival (months, death 1/0) shorter for non-responders and late stages."""
    rng = _rng(seed, _number(pid), _CLINICAL)
    site = str(rng.choice(SITES, p=SITE_PROBS))  # first draw: must match patient_site()
    age = round(float(np.clip(rng.normal(62.0 + 3.0 * label, 9.0), 30.0, 90.0)), 1)
    sex = "M" if rng.random() < 0.55 else "F"
    smoking_p = [0.25, 0.45, 0.30] if label else [0.35, 0.45, 0.20]
    smoking = str(rng.choice(["never", "former", "current"], p=smoking_p))
    stage_p = [0.15, 0.25, 0.35, 0.25] if label else [0.30, 0.30, 0.25, 0.15]
    stage = str(rng.choice(["I", "II", "III", "IV"], p=stage_p))
    missing_age, missing_smoking = rng.random(2) < 0.05
    # Overall survival: responders and early stages live longer; administrative censoring
    # between 1 and 5 years (drawn last, so the columns above do not depend on it).
    hazard = np.exp(-2.0 * label + 0.5 * ["I", "II", "III", "IV"].index(stage)) / 24.0
    death_time, censor_time = rng.exponential(1 / hazard), rng.uniform(12.0, 60.0)
    return {
        "patient_id": pid,
        "age": np.nan if missing_age else age,
        "sex": sex,
        "smoking": "" if missing_smoking else smoking,
        "stage": stage,
        "site": site,
        "response": int(label),
        "os_months": round(float(min(death_time, censor_time)), 1),
        "death": int(death_time <= censor_time),
    }


def clinical_table(d: pd.DataFrame, seed: int = 42) -> pd.DataFrame:
    """Clinical table for every patient of a :func:`design` table."""
    rows = [clinical_row(r.patient_id, int(r.label), seed) for r in d.itertuples()]
    return pd.DataFrame(rows)


def write_clinical(path: str | Path, table: pd.DataFrame):
    table.to_csv(path, sep="\t", index=False, na_rep="", float_format="%.1f", lineterminator="\n")


def gene_sets(seed: int = 42, n_random: int = 4) -> dict[str, list[str]]:
    """Gene sets for the demo. Like a curated pathway, each response set is only partly
    right: half of the planted up- (or down-) regulated genes plus as many unregulated
    ones. Random sets of unregulated genes of the same size should carry no signal."""
    model = gene_model(seed)
    up = np.array(model.index[model["log2fc"] > 0])
    down = np.array(model.index[model["log2fc"] < 0])
    null = np.array(model.index[(model["log2fc"] == 0) & ~model["mito"]])
    rng = _rng(seed, 0, _GENE_SETS)
    half = len(up) // 2
    picked = rng.choice(null, 2 * half + n_random * 2 * half, replace=False)
    sets = {
        "DEMO_RESPONSE_UP": sorted([*rng.choice(up, half, replace=False), *picked[:half]]),
        "DEMO_RESPONSE_DOWN": sorted(
            [*rng.choice(down, half, replace=False), *picked[half : 2 * half]]
        ),
    }
    rest = picked[2 * half :]
    for i in range(n_random):
        sets[f"DEMO_RANDOM_{i + 1}"] = sorted(rest[i * 2 * half : (i + 1) * 2 * half])
    return sets


def write_gene_sets(path: str | Path, sets: dict[str, list[str]]):
    """Write gene sets as a GMT file (name, description, genes; tab separated)."""
    lines = [f"{name}\tradiotx demo\t" + "\t".join(genes) for name, genes in sets.items()]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------- ground truth


def ground_truth(
    d: pd.DataFrame, seed: int, rnaseq_missing: float, site_bias_mm: float = 0.0
) -> dict:
    """Generative truth of the cohort as a JSON-serialisable dict."""
    model = gene_model(seed)
    de = model[model["log2fc"] != 0].sort_values("log2fc", ascending=False)
    null = model[(model["log2fc"] == 0) & ~model["mito"]]
    tumours = tumour_table(d, seed, site_bias_mm).set_index("patient_id")
    per_patient = {
        pid: {
            "label": int(row["label"]),
            "radius_mm": round(float(row["radius_mm"]), 4),
            "lobulation": round(float(row["lobulation"]), 4),
            "texture_sd": round(float(row["texture_sd"]), 4),
        }
        for pid, row in tumours.iterrows()
    }
    return {
        "seed": int(seed),
        "n_patients": len(d),
        "rnaseq_missing": float(rnaseq_missing),
        "n_with_rnaseq": int(d["has_rnaseq"].sum()),
        "prevalence": float(d["label"].mean()),
        "endpoint": "response",
        "signal_genes": [
            {"gene": g, "log2fc": round(float(v), 4)} for g, v in de["log2fc"].items()
        ],
        "null_genes_example": list(null.index[:10]),
        "mito_genes": list(MITO_GENES),
        "image_signal": {
            "description": (
                f"Tumours of responders are larger (equivalent radius ~{RADIUS_MM[1]} vs "
                f"~{RADIUS_MM[0]} mm, sd 2), more lobulated (relative RMS radial deviation "
                f"~{LOBULATION[1]} vs ~{LOBULATION[0]}, sd 0.04, hence lower sphericity) and "
                f"more heterogeneous inside (spatially smoothed noise, sd ~{TEXTURE_SD[1]:.0f} vs "
                f"~{TEXTURE_SD[0]:.0f} HU, around {TUMOUR_MEAN_HU:.0f} HU). Class distributions "
                "overlap. Masks are a slightly conservative contour inside a partial-volume "
                "border. Acquisition site changes scanner noise only (sd in HU: "
                f"{SITE_NOISE_HU}), without label signal."
            ),
            "features": IMAGE_SIGNAL_FEATURES,
            "lower_in_responders": IMAGE_FEATURES_LOWER_IN_POSITIVES,
        },
        "clinical_signal": (
            "Weak: responders are ~3 years older (sd 9), shifted to higher stage and slightly "
            "more often current smokers. Sex and site carry no signal. About 5 % of age and "
            "smoking values are missing."
        ),
        "site_bias": {
            "site": BIASED_SITE,
            "radius_mm": float(site_bias_mm),
            "description": (
                f"Tumours of site {BIASED_SITE} are drawn {site_bias_mm:g} mm larger in radius "
                "whatever the label: a planted subgroup bias (none at 0)."
            ),
        },
        "per_patient": per_patient,
    }


# ------------------------------------------------------------------------------- generation


def generate(
    outdir: str | Path,
    n_patients: int = 80,
    seed: int = 42,
    rnaseq_missing: float = 0.2,
    site_bias_mm: float = 0.0,
) -> pd.DataFrame:
    """Write the full demo cohort under ``outdir`` and return its patient sheet."""
    d = design(n_patients, seed, rnaseq_missing)
    sheet = patient_sheet(outdir, n_patients, seed, rnaseq_missing)
    root = Path(outdir)
    for sub in ("images", "masks", "rnaseq"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    model = gene_model(seed)
    for (_, pat), (_, row) in zip(d.iterrows(), sheet.iterrows(), strict=True):
        label = int(pat["label"])
        write_case(row["image"], row["mask"], pat["patient_id"], label, seed, site_bias_mm)
        if pat["has_rnaseq"]:
            write_rnaseq(row["rnaseq"], rnaseq_counts(pat["patient_id"], label, seed, model))
    write_clinical(root / "clinical.tsv", clinical_table(d, seed))
    write_gene_sets(root / "gene_sets.gmt", gene_sets(seed))
    truth = ground_truth(d, seed, rnaseq_missing, site_bias_mm)
    (root / "ground_truth.json").write_text(json.dumps(truth, indent=2) + "\n", encoding="utf-8")
    write_sheet(root / "patients.tsv", sheet)
    return sheet


def write_sheet(path: str | Path, sheet: pd.DataFrame):
    sheet.to_csv(path, sep="\t", index=False, lineterminator="\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description="Generate the synthetic demo cohort.")
    parser.add_argument("--outdir", default="resources/demo")
    parser.add_argument("--n-patients", type=int, default=80)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--rnaseq-missing", type=float, default=0.2)
    parser.add_argument(
        "--site-bias-mm", type=float, default=0.0, help="planted bias: site B's tumours larger"
    )
    parser.add_argument(
        "--sheet-only", metavar="PATH", help="only write the patient sheet TSV to PATH"
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    if args.sheet_only:
        sheet = patient_sheet(args.outdir, args.n_patients, args.seed, args.rnaseq_missing)
        Path(args.sheet_only).parent.mkdir(parents=True, exist_ok=True)
        write_sheet(args.sheet_only, sheet)
        print(f"wrote patient sheet for {len(sheet)} patients to {args.sheet_only}")
        return
    sheet = generate(
        args.outdir, args.n_patients, args.seed, args.rnaseq_missing, args.site_bias_mm
    )
    n_rna = int((sheet["rnaseq"] != "").sum())
    print(
        f"wrote demo cohort: {len(sheet)} patients ({n_rna} with RNA-seq) to {args.outdir} "
        f"in {time.perf_counter() - start:.1f} s"
    )


if __name__ == "__main__":
    main()
