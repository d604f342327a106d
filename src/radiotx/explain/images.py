"""Attributions of an image model over its ROI crops, and their sanity checks.

The model explained is a supervised encoder with its linear head (crops -> class logits),
trained on an outer fold's training patients and explained on that fold's test patients:
- Grad-CAM (CNN) or attention rollout (ViT): where the network looks;
- occlusion sensitivity: how the positive class's logit drops when a cube is blanked;
- integrated gradients: the path integral of gradients from a blank crop.

Two sanity checks (Adebayo et al., 2018; Samek et al., 2017) say whether a map explains the
model at all: the maps of a model whose weights were re-randomised must differ from the
trained model's (low rank correlation), and removing the top-attributed voxels first must
lower the prediction faster than removing voxels in random order (deletion curve).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

CNN_METHODS = ("gradcam", "occlusion", "integrated_gradients")
VIT_METHODS = ("rollout", "occlusion", "integrated_gradients")
DELETION_STEPS = np.linspace(0.0, 0.5, 11)  # shares of the crop removed


def methods_for(architecture: str) -> tuple[str, ...]:
    return CNN_METHODS if architecture == "cnn" else VIT_METHODS


def attribute(model, crops, method: str, *, target: int = 1, steps: int = 16) -> np.ndarray:
    """Attribution maps (N, S, S, S) of ``model`` (a Sequential of encoder and head) for
    class ``target`` over ``crops`` (a float tensor N x 1 x S x S x S); positive values are
    evidence for the class."""
    import torch
    from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam, Occlusion

    size = crops.shape[-3:]
    model.eval()
    if method == "gradcam":
        encoder = model[0]
        cam = LayerGradCam(model, encoder.layer(encoder.cam_layer))
        maps = cam.attribute(crops, target=target, relu_attributions=True)
        maps = LayerAttribution.interpolate(maps, size, interpolate_mode="trilinear")
    elif method == "occlusion":
        side = max(2, size[0] // 6)
        maps = Occlusion(model).attribute(
            crops, target=target, sliding_window_shapes=(1, side, side, side),
            strides=(1, side, side, side), baselines=0.0,
        )  # fmt: skip
    elif method == "integrated_gradients":
        maps = IntegratedGradients(model).attribute(
            crops, target=target, baselines=torch.zeros_like(crops), n_steps=steps
        )
    elif method == "rollout":
        maps = rollout(model, crops)
    else:
        raise ValueError(f"unknown attribution method {method!r}")
    return maps.detach().reshape(len(crops), *size).numpy()


def rollout(model, crops):
    """Attention rollout (Abnar & Zuidema, 2020): the product over layers of the
    head-averaged attention plus identity (row-normalised); the class token's row gives
    each patch's share, upsampled to the crop."""
    import torch
    import torch.nn.functional as F

    encoder = model[0]
    with torch.no_grad():
        model(crops)
        joint = None
        for attention in encoder.attentions():
            step = attention.mean(dim=1)
            step = step + torch.eye(step.shape[-1])
            step = step / step.sum(dim=-1, keepdim=True)
            joint = step if joint is None else step @ joint
    g = encoder.grid
    patches = joint[:, 0, 1:].reshape(len(crops), 1, g, g, g)
    return F.interpolate(patches, size=crops.shape[-3:], mode="trilinear", align_corners=False)


def mass_in_mask(maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Each map's share of positive attribution inside the ROI (chance: the ROI's share
    of the crop)."""
    positive = np.clip(maps, 0, None).reshape(len(maps), -1)
    inside = (positive * (masks.reshape(len(masks), -1) > 0)).sum(axis=1)
    total = positive.sum(axis=1)
    return np.divide(inside, total, out=np.full(len(maps), np.nan), where=total > 0)


def randomisation_correlation(maps: np.ndarray, random_maps: np.ndarray) -> np.ndarray:
    """Per crop, Spearman's rank correlation between the maps of the trained and the
    re-randomised model (near 1: the map does not depend on what the model learnt)."""
    return np.array(
        [stats.spearmanr(a.ravel(), b.ravel())[0] for a, b in zip(maps, random_maps, strict=True)]
    )


def deletion_curve(model, crops, maps: np.ndarray, *, target: int = 1, seed=None) -> np.ndarray:
    """Mean probability of ``target`` as the top-attributed voxels (or, with ``seed``,
    voxels in random order) are set to 0, at each share of DELETION_STEPS."""
    import torch

    n, flat = len(crops), crops.reshape(len(crops), -1)
    if seed is None:
        order = np.argsort(-maps.reshape(n, -1), axis=1, kind="stable")
    else:
        rng = np.random.default_rng(seed)
        order = np.stack([rng.permutation(flat.shape[1]) for _ in range(n)])
    curve = []
    with torch.no_grad():
        for share in DELETION_STEPS:
            cut = int(round(share * flat.shape[1]))
            blanked = flat.clone()
            rows = np.repeat(np.arange(n), cut)
            blanked[rows, order[:, :cut].ravel()] = 0.0
            logits = model(blanked.reshape(crops.shape))
            curve.append(float(torch.softmax(logits, dim=1)[:, target].mean()))
    return np.array(curve)


def randomised(model, seed: int):
    """A copy of ``model`` with every weight re-initialised (the model-randomisation test)."""
    import copy

    import torch

    clone = copy.deepcopy(model)
    torch.manual_seed(seed)
    for module in clone.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    return clone.eval()


def explain_fold(
    model, crops, masks: np.ndarray, patients, methods, *, steps=16, seed=42, target=1
):
    """Attributions of one fold's test crops by every method, and the fold's sanity checks.
    Returns (per-patient rows, per-method sanity rows, {method: maps}, deletion curves)."""
    import torch

    with torch.no_grad():
        probability = torch.softmax(model(crops), dim=1)[:, target].numpy()
    shuffled = randomised(model, seed + 1)
    rows, sanity, all_maps, curves = [], [], {}, {}
    for method in methods:
        maps = attribute(model, crops, method, target=target, steps=steps)
        random_maps = attribute(shuffled, crops, method, target=target, steps=steps)
        mass = mass_in_mask(maps, masks)
        chance = (masks.reshape(len(masks), -1) > 0).mean(axis=1)
        rows += [
            {"patient_id": p, "method": method, "probability": float(pr),
             "mass_in_roi": float(m), "roi_share": float(c)}
            for p, pr, m, c in zip(patients, probability, mass, chance, strict=True)
        ]  # fmt: skip
        curve = deletion_curve(model, crops, maps, target=target)
        chance_curve = deletion_curve(model, crops, maps, target=target, seed=seed)
        curves[method] = (curve, chance_curve)
        sanity.append(
            {
                "method": method,
                "n_patients": len(patients),
                "randomisation_spearman": float(
                    np.nanmean(randomisation_correlation(maps, random_maps))
                ),
                "deletion_auc": float(curve.mean()),
                "deletion_auc_random": float(chance_curve.mean()),
                "mass_in_roi": float(np.nanmean(mass)),
                "roi_share": float(chance.mean()),
            }
        )
        all_maps[method] = maps
    return rows, sanity, all_maps, curves


def summarise_sanity(sanity: pd.DataFrame) -> pd.DataFrame:
    """Per method over the folds: the checks' means and whether each passed (maps that
    change under weight randomisation, rho < 0.5; a deletion curve below random order's)."""
    table = sanity.drop(columns="fold", errors="ignore").groupby("method", sort=False)
    table = table.mean(numeric_only=True)
    table["n_patients"] = sanity.groupby("method", sort=False)["n_patients"].sum()
    table["randomisation_passed"] = table["randomisation_spearman"].abs() < 0.5
    table["deletion_passed"] = table["deletion_auc"] < table["deletion_auc_random"]
    table["roi_passed"] = table["mass_in_roi"] > table["roi_share"]
    return table.reset_index()


def explain_outer_folds(X, masks: dict, y, outer, encoder: dict, *, steps=16, seed=42, folds=None):
    """Per outer fold: a supervised encoder (``encoder``: DeepEncoder parameters) trained
    on the fold's training patients, explained on its test patients.

    ``X``: crops (patients x voxels) of the patients with images, ``masks``: their mask
    crops, ``y``: binary labels, ``outer``: each patient's outer fold (``folds``: those to
    explain, by default all). Returns the
    per-patient table, the per-fold sanity table, the maps by patient and the deletion
    curves (each method's mean over the folds)."""
    from radiotx.deep.encoder import DeepEncoder

    params = {**encoder, "objective": "supervised", "unlabelled": None}
    patients = X.index.intersection(y.dropna().index).intersection(outer.index)
    rows, sanity, maps, curves = [], [], {}, {}
    for fold in sorted(outer.loc[patients].unique()) if folds is None else folds:
        test = patients[(outer.loc[patients] == fold).to_numpy()]
        train = patients.difference(test)
        fitted = DeepEncoder(**params, seed=seed).fit(X.loc[train], y.loc[train].astype(int))
        model = fitted.classifier_()
        target = int(np.searchsorted(fitted.classes_, 1))
        crops = fitted.crops(X.loc[test].to_numpy(dtype=np.float32))
        fold_masks = np.stack([masks[p] for p in test])
        part_rows, part_sanity, part_maps, part_curves = explain_fold(
            model, crops, fold_masks, list(test), methods_for(fitted.architecture),
            steps=steps, seed=seed, target=target,
        )  # fmt: skip
        for row in part_rows:
            row.update(fold=int(fold), label=int(y.loc[row["patient_id"]]))
        rows += part_rows
        sanity += [{"fold": int(fold), **row} for row in part_sanity]
        for method, values in part_maps.items():
            for patient, value in zip(test, values, strict=True):
                maps.setdefault(patient, {})[method] = value
        for method, pair in part_curves.items():
            curves.setdefault(method, []).append(pair)
    mean_curves = {
        method: tuple(np.mean([pair[i] for pair in pairs], axis=0) for i in range(2))
        for method, pairs in curves.items()
    }
    return pd.DataFrame(rows), pd.DataFrame(sanity), maps, mean_curves


def overlay_patients(rows: pd.DataFrame, per_fold: int) -> list[str]:
    """The test patients to draw: per fold, the positives the model scored highest, then
    the other patients, ``per_fold`` in all."""
    first = rows.drop_duplicates("patient_id")
    ranked = first.sort_values(["fold", "label", "probability"], ascending=[True, False, False])
    return list(ranked.groupby("fold").head(per_fold)["patient_id"])


def overlay_title(rows: pd.DataFrame, patient: str, endpoint: str) -> str:
    """The title of a patient's overlay: fold, label and predicted probability (no patient
    id: the figures are logged under pseudonyms)."""
    row = rows[rows["patient_id"] == patient].iloc[0]
    return (
        f"outer fold {row['fold']}: {endpoint} = {row['label']}, "
        f"predicted probability {row['probability']:.2f}"
    )
