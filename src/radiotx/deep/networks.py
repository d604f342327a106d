"""The encoders: a small 3D ResNet and a 3D vision transformer (MONAI's implementations),
each mapping a batch of crops (N, 1, S, S, S) to embeddings ``h`` (N, dim)."""

from __future__ import annotations

from torch import nn

ARCHITECTURES = ("cnn", "vit")


class CNN(nn.Module):
    """ResNet-style 3D CNN: one basic block per stage, ``width`` channels doubling per
    stage, global average pooling. ``cam_layer`` is the stage Grad-CAM reads (its maps
    are S/4 per side: coarse enough to be class-specific, fine enough to localise)."""

    cam_layer = "layer2"

    def __init__(self, width: int = 8):
        super().__init__()
        from monai.networks.nets import ResNet

        self.net = ResNet(
            block="basic",
            layers=[1, 1, 1, 1],
            block_inplanes=[width, 2 * width, 4 * width, 8 * width],
            spatial_dims=3,
            n_input_channels=1,
            conv1_t_size=3,
            conv1_t_stride=1,
            feed_forward=False,
        )
        self.dim = 8 * width

    def forward(self, x):
        return self.net(x)

    def layer(self, name: str) -> nn.Module:
        return getattr(self.net, name)


class ViT(nn.Module):
    """Vision transformer on 3D patches (``patch`` voxels per side); the embedding is the
    normalised class token. Attention weights are kept for attention rollout."""

    def __init__(self, size: int, patch: int = 6, dim: int = 96, layers: int = 4, heads: int = 4):
        super().__init__()
        from monai.networks.nets import ViT as MonaiViT

        if size % patch:
            raise ValueError(f"deep.vit.patch ({patch}) must divide deep.crop.size ({size})")
        self.net = MonaiViT(
            in_channels=1,
            img_size=size,
            patch_size=patch,
            hidden_size=dim,
            mlp_dim=2 * dim,
            num_layers=layers,
            num_heads=heads,
            classification=True,
            post_activation=None,
            save_attn=True,
        )
        self.net.classification_head = nn.Identity()
        self.dim = dim
        self.grid = size // patch

    def forward(self, x):
        return self.net(x)[0]

    def attentions(self) -> list:
        """Each layer's attention weights of the last forward pass (N, heads, T, T)."""
        return [block.attn.att_mat for block in self.net.blocks]


def encoder(architecture: str, size: int, width: int = 8) -> nn.Module:
    if architecture == "cnn":
        return CNN(width)
    if architecture == "vit":
        return ViT(size)
    raise ValueError(f"unknown deep.architecture {architecture!r}; choose from {ARCHITECTURES}")


def projection_head(dim: int, out: int = 32) -> nn.Module:
    """SimCLR's projection g(h) = W2 relu(W1 h): the contrastive loss acts on g(h), and h
    keeps the information the augmentations should not remove."""
    return nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, out))
