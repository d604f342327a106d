"""SimCLR (Chen et al., 2020) for CT crops: two stochastic views of every crop, and the
NT-Xent loss that pulls a crop's two views together against the other 2N - 2 views of
the batch.

The views are the CT analogue of SimCLR's crop-and-colour distortion: a random crop
(shifted up to 10 % of the side) resized by up to 10 %, random flips, and an intensity
distortion (window/level jitter, gamma, Gaussian noise) on the windowed [0, 1] values.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.2) -> torch.Tensor:
    """Normalised temperature-scaled cross-entropy over the 2N views: for each view, the
    softmax over its cosine similarities to the 2N - 1 others (divided by the temperature)
    must pick its partner. The mean over all 2N views."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = len(z1)
    logits = z @ z.T / temperature
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), -torch.inf)
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return F.cross_entropy(logits, partner)


def augment(x: torch.Tensor, generator: torch.Generator, strength: float = 1.0) -> torch.Tensor:
    """One random view of each crop of the batch ``x`` (N, 1, S, S, S) in [0, 1]."""
    n, device = len(x), x.device

    def uniform(low, high, *shape):
        return low + (high - low) * torch.rand(n, *shape, generator=generator).to(device)

    # random crop (a shift), a mild resize and flips: one affine resampling of the batch.
    # CT has a physical scale and calibrated intensities, so the size and intensity
    # distortions stay mild: strong ones would teach invariance to tumour size and texture.
    scale = uniform(1 - 0.1 * strength, 1 + 0.1 * strength, 1)
    shift = uniform(-0.2 * strength, 0.2 * strength, 3)
    flips = torch.where(torch.rand(n, 3, generator=generator) < 0.5, -1.0, 1.0).to(device)
    theta = torch.zeros(n, 3, 4, device=device)
    theta[:, :, :3] = torch.diag_embed(scale * flips)
    theta[:, :, 3] = shift
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    view = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    # window/level jitter, gamma and noise
    contrast = uniform(1 - 0.1 * strength, 1 + 0.1 * strength, 1, 1, 1, 1)
    level = uniform(-0.05 * strength, 0.05 * strength, 1, 1, 1, 1)
    view = ((view - 0.5) * contrast + 0.5 + level).clamp(0, 1)
    gamma = torch.exp(uniform(-0.2 * strength, 0.2 * strength, 1, 1, 1, 1))
    view = view.clamp_min(1e-6) ** gamma
    noise = torch.randn(view.shape, generator=generator).to(device)
    return view + 0.03 * strength * noise
