"""The deep modality: ROI crops, SimCLR, the in-fold encoder, and image attributions with
their sanity checks, on the demo's images."""

from __future__ import annotations

import joblib
import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from scipy import stats
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import RepeatedStratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from radiotx import demo
from radiotx.features import deep

torch = pytest.importorskip("torch")

from radiotx.deep import encoder as encoder_module  # noqa: E402
from radiotx.deep import simclr  # noqa: E402
from radiotx.deep.encoder import DeepEncoder  # noqa: E402
from radiotx.explain import images  # noqa: E402


# ------------------------------------------------------------------------------------ crops
def sphere_image(centre_mm, radius_mm=6.0, spacing=(0.7, 0.7, 2.5)):
    """A CT-like image (40 HU sphere in -800 HU lung) and its mask, on an anisotropic grid."""
    size = (64, 64, 24)
    image = sitk.Image(size, sitk.sitkInt16)
    image.SetSpacing(spacing)
    image.SetOrigin((-20.0, -20.0, -30.0))
    index = np.indices(size[::-1]).astype(float)  # z, y, x
    points = [image.GetOrigin()[a] + index[2 - a] * spacing[a] for a in range(3)]
    inside = sum((p - c) ** 2 for p, c in zip(points, centre_mm, strict=True)) <= radius_mm**2
    hu = np.where(inside, 40, -800).astype(np.int16)
    ct = sitk.GetImageFromArray(hu)
    ct.CopyInformation(image)
    mask = sitk.GetImageFromArray(inside.astype(np.uint8))
    mask.CopyInformation(image)
    return ct, mask


def test_a_crop_is_centred_on_the_roi_at_a_fixed_physical_scale():
    ct, mask = sphere_image(centre_mm=(3.0, -4.0, 2.0))
    settings = deep.CropSettings(size=16, spacing=1.5, window=(-1000, 200), context=None)
    image, roi = deep.crop(ct, mask, settings)
    assert image.shape == roi.shape == (16, 16, 16) and image.dtype == np.float32
    # the ROI's centroid is the crop's centre, its volume kept (mm3) on the 1.5 mm grid
    centroid = np.argwhere(roi).mean(axis=0)
    np.testing.assert_allclose(centroid, [7.5, 7.5, 7.5], atol=0.6)
    assert roi.sum() * 1.5**3 == pytest.approx(4 / 3 * np.pi * 6.0**3, rel=0.15)
    # the window maps -1000..200 HU to 0..1: lung (-800) at 1/6, the tumour (40) at 0.87
    assert np.median(image[roi > 0]) == pytest.approx(1040 / 1200, abs=0.02)
    assert np.median(image[roi == 0]) == pytest.approx(200 / 1200, abs=0.02)


def test_context_blanks_what_lies_beyond_the_roi_margin():
    ct, mask = sphere_image(centre_mm=(0.0, 0.0, 0.0))
    settings = deep.CropSettings(size=16, spacing=1.5, window=(-1000, 200), context=3.0)
    image, roi = deep.crop(ct, mask, settings)
    from scipy import ndimage

    near = ndimage.binary_dilation(roi > 0, iterations=2)
    assert (image[~near] == 0).all() and (image[near] > 0).all()


def test_crops_round_trip_as_patient_rows(tmp_path):
    ct, mask = sphere_image(centre_mm=(0.0, 0.0, 0.0))
    settings = deep.CropSettings(size=8)
    for patient in ("P1", "P2"):
        deep.write_crop(tmp_path / f"{patient}.npz", *deep.crop(ct, mask, settings), settings)
    paths = sorted(tmp_path.glob("*.npz"))
    table = deep.read_crops(paths)
    assert list(table.index) == ["P1", "P2"] and table.shape[1] == 8**3
    assert deep.read_masks(paths)["P2"].shape == (8, 8, 8)


# ----------------------------------------------------------------------------------- SimCLR
def test_nt_xent_equals_the_per_pair_formula():
    generator = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(5, 8, generator=generator), torch.randn(5, 8, generator=generator)
    temperature = 0.3
    views = torch.nn.functional.normalize(torch.cat([z1, z2]), dim=1)
    n = len(z1)
    losses = []
    for i in range(2 * n):
        partner = (i + n) % (2 * n)
        sim = [float(views[i] @ views[k]) / temperature for k in range(2 * n)]
        denominator = sum(np.exp(sim[k]) for k in range(2 * n) if k != i)
        losses.append(-np.log(np.exp(sim[partner]) / denominator))
    assert float(simclr.nt_xent(z1, z2, temperature)) == pytest.approx(np.mean(losses), rel=1e-5)
    # and MONAI's SimCLR loss agrees
    from monai.losses import ContrastiveLoss

    monai = ContrastiveLoss(temperature=temperature, batch_size=n)
    assert float(simclr.nt_xent(z1, z2, temperature)) == pytest.approx(float(monai(z1, z2)))


def test_views_differ_but_stay_in_range_and_reproduce_with_the_seed():
    crops = torch.rand(4, 1, 12, 12, 12)
    first = simclr.augment(crops, torch.Generator().manual_seed(1))
    again = simclr.augment(crops, torch.Generator().manual_seed(1))
    other = simclr.augment(crops, torch.Generator().manual_seed(2))
    assert first.shape == crops.shape and torch.equal(first, again)
    assert not torch.allclose(first, other) and not torch.allclose(first, crops)
    assert float(first.min()) > -0.5 and float(first.max()) < 1.5


# ---------------------------------------------------------------------------------- encoder
def planted_crops(n=24, size=8, seed=0):
    """Crops whose bright cube is larger for class 1."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    crops = rng.normal(0.2, 0.05, (n, size, size, size))
    for i, label in enumerate(y):
        half = 2 + label
        c = size // 2
        crops[i, c - half : c + half, c - half : c + half, c - half : c + half] += 0.6
    columns = deep.voxel_columns(size)
    return pd.DataFrame(crops.reshape(n, -1), columns=columns), pd.Series(y)


def test_the_encoder_is_a_deterministic_scikit_learn_transformer(tmp_path):
    X, y = planted_crops()
    X.iloc[3] = np.nan  # a patient without an image
    encoder = DeepEncoder(epochs=2, batch_size=8, width=4, seed=3)
    assert clone(encoder).get_params() == encoder.get_params()
    assert encoder.fit(X) is encoder
    h = encoder.transform(X)
    assert h.shape == (24, 32) and np.isnan(h[3]).all() and not np.isnan(np.delete(h, 3, 0)).any()
    assert list(encoder.get_feature_names_out()[:2]) == ["h000", "h001"]
    assert len(encoder.loss_curve_) == 2
    # same seed and rows: the same embeddings, also from a pickled copy
    again = DeepEncoder(epochs=2, batch_size=8, width=4, seed=3).fit(X.copy()).transform(X)
    np.testing.assert_array_equal(h, again)
    joblib.dump(encoder, tmp_path / "encoder.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "encoder.joblib").transform(X), h)
    other = DeepEncoder(epochs=2, batch_size=8, width=4, seed=4).fit(X).transform(X)
    assert not np.allclose(np.delete(h, 3, 0), np.delete(other, 3, 0))


def test_one_simclr_encoder_per_outer_training_set_serves_its_inner_splits(caplog):
    X, y = planted_crops(n=24)
    X.index = [f"P{i:02d}" for i in range(24)]
    train, inner = X.iloc[:18], X.iloc[[0, 2, 5, 7, 11, 13, 16, 17]]
    params = dict(epochs=2, batch_size=8, width=4, seed=3)

    def states(encoder):
        return [value.numpy().tobytes() for value in encoder.state_.values()]

    alone = states(DeepEncoder(**params).fit(train))
    with encoder_module.pretraining(train), caplog.at_level("INFO", "radiotx.deep.encoder"):
        caplog.clear()
        # an inner training set, and the rows repeated as an oversampler would: the outer
        # training set's encoder, trained once
        assert states(DeepEncoder(**params).fit(inner)) == alone
        assert states(DeepEncoder(**params).fit(pd.concat([inner, inner]))) == alone
        assert not [r for r in caplog.records if "encoder:" in r.getMessage()]
        # pretrain="inner", a supervised encoder, or a crop outside the training set: its
        # own rows only
        own = states(DeepEncoder(**params, pretrain="inner").fit(inner))
        assert own != alone
        assert states(DeepEncoder(**params).fit(pd.concat([inner, X.iloc[[20]]]))) != alone
        supervised = DeepEncoder(**params, objective="supervised").fit(inner, y.iloc[:8])
        assert supervised.loss_curve_ and supervised.head_ is not None
    # outside the block every fit is on its own rows again
    assert states(DeepEncoder(**params).fit(inner)) == own
    with pytest.raises(ValueError, match="deep.pretrain"):
        DeepEncoder(pretrain="fold").fit(inner)


def test_the_supervised_encoder_learns_the_class_and_needs_class_labels():
    X, y = planted_crops(n=32)
    encoder = DeepEncoder(objective="supervised", epochs=15, batch_size=8, width=4).fit(X, y)
    with torch.no_grad():
        crops = encoder.crops(X.to_numpy(dtype=np.float32))
        predicted = encoder.classifier_()(crops).argmax(dim=1).numpy()
    assert (predicted == y.to_numpy()).mean() > 0.8
    survival = pd.DataFrame({"time": np.arange(32.0), "event": y})
    with pytest.raises(ValueError, match="use simclr for survival"):
        DeepEncoder(objective="supervised", epochs=1).fit(X, survival)


def test_a_vit_encoder_embeds_and_keeps_its_attention():
    X, _ = planted_crops(size=12)
    encoder = DeepEncoder(architecture="vit", epochs=1, batch_size=8).fit(X)
    assert encoder.transform(X).shape == (24, 96)
    vit = encoder.encoder_()
    vit(encoder.crops(X.to_numpy(dtype=np.float32)[:2]))
    assert [tuple(a.shape) for a in vit.attentions()][0] == (2, 4, 9, 9)  # 8 patches + token


# ------------------------------------------------------------------------------------- demo
def crops_of(design):
    settings = deep.CropSettings()
    rows, masks = {}, {}
    for patient, label in zip(design["patient_id"], design["label"], strict=True):
        image, mask = demo.tumour_case(patient, int(label), 42)
        crop, roi = deep.crop(demo._to_sitk(image), demo._to_sitk(mask), settings)
        rows[patient], masks[patient] = crop.ravel(), roi
    X = pd.DataFrame.from_dict(rows, orient="index", columns=deep.voxel_columns(settings.size))
    return X, masks


@pytest.fixture(scope="module")
def demo_crops():
    """The demo cohort's 80 crops (made in memory), masks and labels."""
    design = demo.design(80, 42, 0.2)
    X, masks = crops_of(design)
    return X, masks, design.set_index("patient_id")["label"].loc[X.index]


def probe_auc(features, y) -> float:
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=5000))
    cv = RepeatedStratifiedKFold(n_splits=5, n_repeats=4, random_state=0)
    return float(cross_val_score(probe, features, y, cv=cv, scoring="roc_auc").mean())


def test_a_linear_probe_on_simclr_embeddings_beats_a_random_encoder(demo_crops, tmp_path):
    X, _, y = demo_crops
    # the linear-probe protocol: SimCLR pretraining on the cohort's crops (labels unused)
    # and an external unlabelled set (120 other demo patients, deep.unlabelled), then the
    # same cross-validated probe on its embeddings and on those of untrained encoders
    # (several initialisations: one alone varies by +-0.04 AUC)
    unlabelled, _ = crops_of(demo.design(200, 42, 0.2).iloc[80:])
    assert not set(unlabelled.index) & set(X.index)
    np.save(tmp_path / "unlabelled.npy", unlabelled.to_numpy(dtype=np.float32))
    simclr_encoder = DeepEncoder(epochs=30, unlabelled=str(tmp_path / "unlabelled.npy"), threads=2)
    simclr_auc = probe_auc(simclr_encoder.fit(X).transform(X), y)
    random_aucs = [
        probe_auc(DeepEncoder(objective="random", seed=seed).fit_transform(X), y)
        for seed in range(5)
    ]
    assert simclr_auc > np.mean(random_aucs) + 0.02, (simclr_auc, random_aucs)
    assert simclr_encoder.loss_curve_[-1] < simclr_encoder.loss_curve_[0]


@pytest.fixture(scope="module")
def explained(demo_crops):
    """Attributions of a supervised CNN trained on 3 of 4 folds of the demo, on the fourth
    (two such folds)."""
    X, masks, y = demo_crops
    outer = pd.Series(np.arange(len(X)) % 4, index=X.index)
    return images.explain_outer_folds(X, masks, y, outer, {"epochs": 30}, steps=8, folds=[0, 1])


def test_gradcam_mass_falls_inside_the_lesion_of_the_texture_class(explained):
    rows, *_ = explained
    cam = rows[(rows["method"] == "gradcam") & (rows["label"] == 1)]
    inside = int((cam["mass_in_roi"] > cam["roi_share"]).sum())
    # a map unrelated to the lesion puts more than the ROI's share there half of the time
    assert len(cam) >= 10
    assert stats.binomtest(inside, len(cam), 0.5, alternative="greater").pvalue < 0.05, inside


def test_attributions_pass_the_randomisation_and_deletion_checks(explained):
    _, sanity, maps, curves = explained
    summary = images.summarise_sanity(sanity).set_index("method")
    assert list(summary.index) == list(images.CNN_METHODS)
    assert summary["randomisation_passed"].all(), summary["randomisation_spearman"]
    assert summary["deletion_passed"].all(), summary[["deletion_auc", "deletion_auc_random"]]
    assert all(len(curve) == len(images.DELETION_STEPS) for curve, _ in curves.values())
    some = next(iter(maps.values()))
    assert set(some) == set(images.CNN_METHODS) and some["gradcam"].shape == (24, 24, 24)


def test_vit_attributions_use_attention_rollout():
    X, y = planted_crops(n=24, size=12)
    fitted = DeepEncoder(architecture="vit", objective="supervised", epochs=3, batch_size=8)
    fitted.fit(X, y)
    crops = fitted.crops(X.to_numpy(dtype=np.float32)[:6])
    masks = (crops[:, 0].numpy() > 0.5).astype(np.uint8)
    rows, sanity, maps, _ = images.explain_fold(
        fitted.classifier_(), crops, masks, list(range(6)), images.VIT_METHODS, steps=4
    )
    rollout = maps["rollout"]
    # each patch's share of the class token's attention, upsampled to the crop: positive
    assert rollout.shape == (6, 12, 12, 12) and (rollout > 0).all()
    assert [row["method"] for row in sanity] == list(images.VIT_METHODS)
    assert np.isfinite([row["randomisation_spearman"] for row in sanity]).all()


def test_deep_features_fuse_with_another_modality_by_every_strategy():
    from radiotx import cohort, experiment, fusion, splits

    X, y = planted_crops(n=36, size=8)
    ids = [f"P{i:03d}" for i in range(36)]
    X.index = ids
    rng = np.random.default_rng(0)
    clinical = pd.DataFrame(rng.normal(size=(36, 4)), index=ids, columns=list("abcd"))
    labels = pd.Series(y.to_numpy(dtype=float), index=ids)
    # six patients without an image: their crops are missing, as in a real cohort
    mdata = cohort.build({"deep": X.iloc[6:], "clinical": clinical}, {"response": labels})
    folds = splits.make_splits(labels, n_splits=3, seed=1)
    settings = experiment.Settings(
        k_features=(5,), balancers=("class_weight",), candidates=("logreg",),
        strategies=fusion.STRATEGIES, n_boot=20,
        deep={"epochs": 2, "batch_size": 8, "width": 4},
    )  # fmt: skip
    job = experiment.procedure(
        mdata, folds, endpoint="response", pipeline="fused", modalities=["deep", "clinical"],
        settings=settings,
    )  # fmt: skip
    results = job.evaluate_fold(0, 0)
    assert set(results) == {*fusion.STRATEGIES, "selected"}
    for name, part in results.items():
        assert len(part.predictions) == 12, name  # patients without an image are scored too
        assert set(part.selected["modality"]) <= {"deep", "clinical"}
        embeddings = part.selected.loc[part.selected["modality"] == "deep", "feature"]
        assert embeddings.str.fullmatch(r"h\d{3}").all(), name
