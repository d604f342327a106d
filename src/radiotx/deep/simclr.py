"""SimCLR (Chen et al., 2020) for CT crops: two stochastic views of every crop, and the
NT-Xent loss that pulls a crop's two views together against the other 2N - 2 views of
the batch.

The views are the CT analogue of SimCLR's crop-and-colour distortion: a random crop of
60-100 % of the side resized back to the full crop, random flips, and an intensity
distortion (window/level jitter, gamma, Gaussian noise) on the windowed [0, 1] values,
scaled by a strength (0-1; the default 0.5 keeps size and texture changes mild, since
tumour size and texture carry the signal that the embeddings should keep).
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
    """One random view of each crop of the batch ``x`` (N, 1, S, S, S) in [0, 1]. The
    draws come from ``generator`` on its device (a CUDA generator keeps a GPU batch's
    noise on the GPU)."""
    n, device, source = len(x), x.device, generator.device

    def draw(sampler, *shape):
        return sampler(*shape, generator=generator, device=source).to(device)

    def uniform(low, high, *shape):
        return low + (high - low) * draw(torch.rand, n, *shape)

    # a random crop of 60-100 % of the side (at strength 1) resized to the full crop, and
    # random flips: one affine resampling of the whole batch
    scale = uniform(1 - 0.4 * strength, 1.0, 1)
    shift = (1 - scale) * uniform(-1.0, 1.0, 3)
    flips = torch.where(draw(torch.rand, n, 3) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 3, 4, device=device)
    theta[:, :, :3] = torch.diag_embed(scale * flips)
    theta[:, :, 3] = shift
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    view = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    # window/level jitter, gamma and noise
    spread = 0.25 * strength
    contrast = uniform(1 - spread, 1 + spread, 1, 1, 1, 1)
    level = uniform(-spread / 2, spread / 2, 1, 1, 1, 1)
    view = ((view - 0.5) * contrast + 0.5 + level).clamp(0, 1)
    gamma = torch.exp(uniform(-0.4 * strength, 0.4 * strength, 1, 1, 1, 1))
    view = view.clamp_min(1e-6) ** gamma
    noise = draw(torch.randn, *view.shape)
    return view + 0.03 * strength * noise
