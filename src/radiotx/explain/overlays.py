"""Figures of image attributions: maps over the CT slice through the lesion, and the
deletion curves of the sanity check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from radiotx.explain.images import DELETION_STEPS

TITLES = {
    "gradcam": "Grad-CAM",
    "rollout": "attention rollout",
    "occlusion": "occlusion",
    "integrated_gradients": "integrated gradients",
}


def lesion_slice(mask: np.ndarray) -> int:
    """The axial slice with the most ROI voxels."""
    return int(np.argmax((mask > 0).sum(axis=(1, 2))))


def overlay(image, mask, maps: dict[str, np.ndarray], path, title: str) -> None:
    """The crop's slice through the lesion, then each method's map over it, the ROI
    outlined."""
    z = lesion_slice(mask)
    fig = Figure(figsize=(3 * (len(maps) + 1), 3.3))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(maps) + 1)
    axes[0].imshow(image[z], cmap="gray", vmin=0, vmax=1)
    axes[0].set_title("CT crop")
    for ax, (method, values) in zip(axes[1:], maps.items(), strict=True):
        positive = np.clip(values[z], 0, None)
        top = positive.max() or 1.0
        ax.imshow(image[z], cmap="gray", vmin=0, vmax=1)
        ax.imshow(positive / top, cmap="jet", alpha=0.45, vmin=0, vmax=1)
        ax.set_title(TITLES.get(method, method))
    for ax in axes:
        ax.contour(mask[z] > 0, levels=[0.5], colors="lime", linewidths=1)
        ax.set_axis_off()
    fig.suptitle(title)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, format="png")


def deletion_plot(curves: dict[str, tuple[np.ndarray, np.ndarray]], path, title: str) -> None:
    """Per method, the mean predicted probability as top-attributed voxels are removed,
    against removal in random order (dashed)."""
    fig = Figure(figsize=(5, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for i, (method, (curve, random_curve)) in enumerate(curves.items()):
        colour = f"C{i}"
        ax.plot(DELETION_STEPS, curve, color=colour, label=TITLES.get(method, method))
        ax.plot(DELETION_STEPS, random_curve, color=colour, linestyle="--")
    ax.set_xlabel("share of the crop removed (dashed: random order)")
    ax.set_ylabel("mean probability of the positive class")
    ax.legend()
    ax.set_title(title)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, format="png")
