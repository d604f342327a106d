"""DeepEncoder: a scikit-learn transformer from flattened ROI crops to deep features.

It sits in a modality's pipeline like any other fitted step, so the encoder is trained on
the training rows of each fold only: SimCLR pretraining (``objective="simclr"``, the
labels unused, optionally with an external set of unlabelled crops), supervised training
(``"supervised"``: encoder plus a linear head, cross-entropy weighted by class), or none
(``"random"``: the randomly initialised encoder, the baseline that pretraining must beat).
The features are the embeddings ``h``, not SimCLR's projection ``z``.

Training is deterministic for a given seed on the CPU (torch's deterministic algorithms,
``threads`` threads), and a fit on rows it has seen before in this process is taken from a
cache, so that an inner-CV search over downstream steps trains each encoder once.

SimCLR uses no labels, so by default (``pretrain="outer"``) one encoder is pretrained per
outer training set and shared by everything fitted inside it: the inner-CV splits, the
bias mitigations' resampled copies of the rows (a duplicated crop teaches SimCLR nothing
new). :func:`pretraining` declares that training set; the outer test patients are never
in it. ``pretrain="inner"`` trains one more encoder per inner training set, so that the
inner validation patients' crops are not seen even unlabelled (about four times the
training). A supervised encoder always trains on exactly the rows it is given.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import logging
import time

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from radiotx import fitcache
from radiotx.features.deep import side

log = logging.getLogger(__name__)
OBJECTIVES = ("simclr", "supervised", "random")
PRETRAIN = ("outer", "inner")
_FITS = fitcache.Memo(size=8)  # fit key -> fitted state, the last few fits
_POOL = contextvars.ContextVar("radiotx_pretraining", default=None)


@contextlib.contextmanager
def pretraining(X: pd.DataFrame):
    """Within the block, a SimCLR encoder (``pretrain="outer"``) asked to fit on crops that
    are all rows of ``X`` (a subset, reordered or repeated) is pretrained on the crops of
    every row of ``X``, in their order: one encoder per outer training set."""
    token = _POOL.set(_Pool(X))
    try:
        yield
    finally:
        _POOL.reset(token)


class _Pool:
    """The rows of one outer training set, with a digest per crop to recognise them."""

    def __init__(self, X: pd.DataFrame):
        self.X = X
        self._crops: dict[tuple, tuple[np.ndarray, set]] = {}

    def covering(self, columns, values: np.ndarray):
        """The pool's crops (images only) if every row of ``values`` is one of them."""
        key = tuple(columns)
        if key not in self._crops:
            if not set(key) <= set(self.X.columns):
                return None
            crops = _values(self.X.loc[:, list(key)])
            crops = crops[~np.isnan(crops).any(axis=1)]
            self._crops[key] = crops, {_row_digest(row) for row in crops}
        crops, digests = self._crops[key]
        return crops if all(_row_digest(row) in digests for row in values) else None


def _row_digest(row: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(row).tobytes(), digest_size=16).digest()


class DeepEncoder(TransformerMixin, BaseEstimator):
    """Crops (patients x size**3 voxels, NaN rows = no image) -> embeddings h (NaN rows
    stay NaN, for the imputer after it).

    Parameters: ``architecture`` ("cnn" or "vit"), ``objective``, ``epochs``,
    ``batch_size``, ``learning_rate``, ``temperature`` (NT-Xent), ``augmentation`` (the
    strength of the views' distortions, 0-1, see :func:`radiotx.deep.simclr.augment`),
    ``width`` (CNN
    channels), ``unlabelled`` (a .npy file of extra crops, N x size**3, for SimCLR only),
    ``device`` ("auto": CUDA when present), ``threads`` (CPU threads), ``pretrain``
    ("outer" or "inner", see the module) and ``seed``.
    """

    def __init__(
        self,
        architecture="cnn",
        objective="simclr",
        epochs=30,
        batch_size=32,
        learning_rate=1e-3,
        temperature=0.2,
        augmentation=0.5,
        width=8,
        unlabelled=None,
        device="auto",
        threads=1,
        pretrain="outer",
        seed=42,
    ):
        self.architecture = architecture
        self.objective = objective
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.temperature = temperature
        self.augmentation = augmentation
        self.width = width
        self.unlabelled = unlabelled
        self.device = device
        self.threads = threads
        self.pretrain = pretrain
        self.seed = seed

    # -- fitting -------------------------------------------------------------------------
    def fit(self, X, y=None):
        if self.objective not in OBJECTIVES:
            raise ValueError(f"unknown deep.objective {self.objective!r}; choose {OBJECTIVES}")
        if self.pretrain not in PRETRAIN:
            raise ValueError(f"unknown deep.pretrain {self.pretrain!r}; choose {PRETRAIN}")
        values = _values(X)
        self.n_features_in_ = values.shape[1]
        if isinstance(X, pd.DataFrame):
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.size_ = side(values.shape[1])
        rows = ~np.isnan(values).any(axis=1)
        labels = None
        if self.objective == "supervised":
            labels = np.asarray(y)
            if y is None or labels.dtype.names or labels.ndim != 1:
                raise ValueError(
                    "deep.objective supervised needs class labels (a binary or multiclass "
                    "endpoint); use simclr for survival endpoints"
                )
            labels = labels[rows]
        crops = values[rows]
        pool = _POOL.get()
        shared = self.objective == "simclr" and self.pretrain == "outer"
        if shared and pool is not None and isinstance(X, pd.DataFrame):
            wider = pool.covering(X.columns, crops)
            crops = crops if wider is None else wider
        key = self._key(crops, labels)
        fitted = _FITS.get(key, lambda: self._train(crops, labels))
        self.state_, self.head_, self.loss_curve_, self.classes_ = fitted
        self.n_features_out_ = self.encoder_().dim
        return self

    def _key(self, values, labels) -> str:
        digest = hashlib.sha256(repr(sorted(self.get_params().items())).encode())
        digest.update(np.ascontiguousarray(values, dtype=np.float32).tobytes())
        if labels is not None:
            digest.update(np.asarray(labels).astype(np.int64).tobytes())
        return digest.hexdigest()

    def _train(self, values: np.ndarray, labels):
        import torch

        from radiotx.deep import networks, simclr

        device = self._torch_setup()
        torch.manual_seed(self.seed)
        encoder = networks.encoder(self.architecture, self.size_, self.width).to(device)
        classes = np.unique(labels) if labels is not None else None
        crops = self.crops(values)
        if self.objective == "random":
            return _cpu_state(encoder), None, [], classes
        if self.objective == "simclr" and self.unlabelled:
            extra = np.load(self.unlabelled).astype(np.float32)
            crops = torch.cat([crops, self.crops(extra)])
        if self.objective == "simclr":
            head = networks.projection_head(encoder.dim).to(device)
        else:
            head = torch.nn.Linear(encoder.dim, len(classes)).to(device)
            codes = torch.as_tensor(np.searchsorted(classes, labels), device=device)
            counts = torch.bincount(codes, minlength=len(classes)).float()
            weight = counts.sum() / (len(classes) * counts)
        params = [*encoder.parameters(), *head.parameters()]
        optimiser = torch.optim.Adam(params, lr=self.learning_rate, weight_decay=1e-4)
        generator = torch.Generator().manual_seed(self.seed)
        # the views' draws on the training device (on the CPU: the same generator)
        views = (
            generator if device.type == "cpu" else torch.Generator(device).manual_seed(self.seed)
        )
        losses, started = [], time.perf_counter()
        encoder.train()
        for _ in range(self.epochs):
            order = torch.randperm(len(crops), generator=generator)
            total = 0.0
            for batch in order.split(self.batch_size):
                if len(batch) < 2:
                    continue  # one crop has no negatives (and breaks batch norm)
                x = crops[batch].to(device)
                if self.objective == "simclr":
                    z1 = head(encoder(simclr.augment(x, views, self.augmentation)))
                    z2 = head(encoder(simclr.augment(x, views, self.augmentation)))
                    loss = simclr.nt_xent(z1, z2, self.temperature)
                else:
                    logits = head(encoder(simclr.augment(x, views, self.augmentation / 2)))
                    loss = torch.nn.functional.cross_entropy(logits, codes[batch], weight=weight)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total += loss.item() * len(batch)
            losses.append(total / len(crops))
        log.info(
            "%s %s encoder: %d crops, %d epochs in %.1f s (%s), loss %.3f -> %.3f",
            self.objective, self.architecture, len(crops), self.epochs,
            time.perf_counter() - started, device, losses[0], losses[-1],
        )  # fmt: skip
        keep_head = self.objective == "supervised"
        return _cpu_state(encoder), _cpu_state(head) if keep_head else None, losses, classes

    def _torch_setup(self):
        import torch

        if self.device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        else:
            device = self.device
        if device == "cpu":
            torch.set_num_threads(self.threads)
        # on the CPU the fit repeats bit for bit; some CUDA kernels (3D max-pool backward)
        # have no deterministic version, so a GPU fit repeats only up to float rounding
        torch.use_deterministic_algorithms(device == "cpu")
        return torch.device(device)

    def crops(self, values):
        """Flattened crops (N x size**3, float32 values) as the networks' input tensor
        (N, 1, size, size, size)."""
        import torch

        size = side(values.shape[1])
        return torch.as_tensor(values, dtype=torch.float32).reshape(-1, 1, size, size, size)

    # -- the fitted networks -------------------------------------------------------------
    def encoder_(self):
        """The fitted encoder (torch module, evaluation mode, on the CPU)."""
        from radiotx.deep import networks

        check_is_fitted(self, "state_")
        encoder = networks.encoder(self.architecture, self.size_, self.width)
        encoder.load_state_dict(self.state_)
        return encoder.eval()

    def classifier_(self):
        """Encoder and linear head of a supervised encoder: crops -> class logits."""
        import torch

        if self.head_ is None:
            raise ValueError("only a supervised DeepEncoder has a classifier head")
        encoder = self.encoder_()
        head = torch.nn.Linear(encoder.dim, len(self.classes_))
        head.load_state_dict(self.head_)
        return torch.nn.Sequential(encoder, head).eval()

    # -- transforming --------------------------------------------------------------------
    def transform(self, X):
        import torch

        check_is_fitted(self, "state_")
        values = _values(X)
        if values.shape[1] != self.n_features_in_:
            raise ValueError(f"expected {self.n_features_in_} voxels, got {values.shape[1]}")
        out = np.full((len(values), self.n_features_out_), np.nan)
        rows = ~np.isnan(values).any(axis=1)
        if rows.any():
            self._torch_setup()
            encoder = self.encoder_()
            with torch.no_grad():
                crops = self.crops(values[rows])
                out[rows] = torch.cat([encoder(b) for b in crops.split(64)]).double().numpy()
        return out

    def get_feature_names_out(self, input_features=None):
        """``h000``, ``h001``, ... after the modality prefix of the inputs (``deep:``), so
        that a selected embedding dimension still names its modality."""
        check_is_fitted(self, "state_")
        names = (
            input_features if input_features is not None else getattr(self, "feature_names_in_", [])
        )
        prefixes = {str(name).rpartition(":")[0] for name in names}
        prefix = f"{prefixes.pop()}:" if len(prefixes) == 1 and "" not in prefixes else ""
        return np.asarray([f"{prefix}h{i:03d}" for i in range(self.n_features_out_)], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


def _values(X) -> np.ndarray:
    return np.asarray(X, dtype=np.float32)


def _cpu_state(module) -> dict:
    return {key: value.detach().cpu().clone() for key, value in module.state_dict().items()}
