"""Tests for the synthetic demo cohort."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from radiotx import demo

N = 16
SEED = 42


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    outdir = tmp_path_factory.mktemp("demo_a")
    return outdir, demo.generate(outdir, n_patients=N, seed=SEED)


def _read(path) -> tuple[sitk.Image, np.ndarray]:
    img = sitk.ReadImage(str(path))
    return img, sitk.GetArrayFromImage(img)


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


# ------------------------------------------------------------------------------------ design


@pytest.mark.parametrize("n", [1, 5, 12, 80, 101])
def test_design_counts_are_exact(n):
    d = demo.design(n, seed=SEED, rnaseq_missing=0.2)
    assert list(d.columns) == ["patient_id", "label", "has_rnaseq"]
    assert len(d) == n
    assert d["label"].sum() == round(0.3 * n)
    assert (~d["has_rnaseq"]).sum() == round(0.2 * n)
    assert set(d["label"]) <= {0, 1}
    assert d["has_rnaseq"].dtype == bool


def test_design_ids_and_determinism():
    d = demo.design(12, seed=SEED)
    assert d["patient_id"].tolist()[:3] == ["P001", "P002", "P003"]
    assert demo.design(1000)["patient_id"].iloc[-1] == "P1000"
    assert demo.design(1000)["patient_id"].iloc[0] == "P0001"
    pd.testing.assert_frame_equal(d, demo.design(12, seed=SEED))
    other = [demo.design(40, seed=s)["label"].tolist() for s in (1, 2)]
    assert other[0] != other[1]


def test_design_rejects_bad_arguments():
    with pytest.raises(ValueError):
        demo.design(0)
    with pytest.raises(ValueError):
        demo.design(10, rnaseq_missing=1.5)


def test_patient_sheet_paths():
    sheet = demo.patient_sheet("resources/demo", n_patients=10, seed=SEED)
    d = demo.design(10, seed=SEED)
    assert list(sheet.columns) == ["patient_id", "image", "mask", "rnaseq"]
    assert sheet.loc[0, "image"] == "resources/demo/images/P001_ct.nii.gz"
    assert sheet.loc[0, "mask"] == "resources/demo/masks/P001_mask.nii.gz"
    expected = ["resources/demo/rnaseq/" + p + ".tsv" for p in d["patient_id"]]
    assert sheet["rnaseq"].tolist() == [
        e if h else "" for e, h in zip(expected, d["has_rnaseq"], strict=True)
    ]


# --------------------------------------------------------------------------------- generation


def test_generated_files_match_sheet(cohort):
    outdir, sheet = cohort
    d = demo.design(N, seed=SEED)
    pd.testing.assert_frame_equal(sheet, demo.patient_sheet(outdir, N, SEED))
    on_disk = pd.read_csv(outdir / "patients.tsv", sep="\t", keep_default_na=False)
    pd.testing.assert_frame_equal(on_disk, sheet)
    for col in ("image", "mask"):
        assert all(Path(p).is_file() for p in sheet[col])
    assert (sheet["rnaseq"] != "").tolist() == d["has_rnaseq"].tolist()
    assert all(Path(p).is_file() for p in sheet["rnaseq"] if p)
    expected = {"clinical.tsv", "ground_truth.json", "patients.tsv", "gene_sets.gmt"}
    for col in ("image", "mask", "rnaseq"):
        expected |= {str(Path(p).relative_to(outdir)) for p in sheet[col] if p}
    assert set(_files(outdir)) == expected


def test_generation_is_deterministic(cohort, tmp_path):
    outdir, _ = cohort
    demo.generate(tmp_path, n_patients=N, seed=SEED)
    assert _files(outdir) == _files(tmp_path)
    for name in _files(outdir):
        if name == "patients.tsv":
            continue
        assert (outdir / name).read_bytes() == (tmp_path / name).read_bytes(), name
    sheet_a = (outdir / "patients.tsv").read_text(encoding="utf-8").replace(str(outdir), "ROOT")
    sheet_b = (tmp_path / "patients.tsv").read_text(encoding="utf-8").replace(str(tmp_path), "ROOT")
    assert sheet_a == sheet_b


def test_files_come_from_per_patient_generators(cohort):
    outdir, sheet = cohort
    d = demo.design(N, seed=SEED)
    row = d.iloc[6]
    image, mask = demo.tumour_case(row["patient_id"], int(row["label"]), SEED)
    np.testing.assert_array_equal(_read(sheet.loc[6, "image"])[1], image)
    np.testing.assert_array_equal(_read(sheet.loc[6, "mask"])[1], mask)
    i = int(np.flatnonzero(d["has_rnaseq"])[0])
    table = pd.read_csv(sheet.loc[i, "rnaseq"], sep="\t", index_col="gene")["count"]
    expected = demo.rnaseq_counts(d.loc[i, "patient_id"], int(d.loc[i, "label"]), SEED)
    np.testing.assert_array_equal(table.to_numpy(), expected.to_numpy())


def test_patient_data_do_not_depend_on_cohort_size(tmp_path):
    small, large = demo.design(6, seed=SEED), demo.design(9, seed=SEED)
    demo.generate(tmp_path / "small", n_patients=6, seed=SEED)
    demo.generate(tmp_path / "large", n_patients=9, seed=SEED)
    same = small["label"].eq(large["label"].iloc[:6]) & small["has_rnaseq"].eq(
        large["has_rnaseq"].iloc[:6]
    )
    assert same.any()
    for pid in small.loc[same, "patient_id"]:
        for name in (f"images/{pid}_ct.nii.gz", f"masks/{pid}_mask.nii.gz"):
            a = (tmp_path / "small" / name).read_bytes()
            assert a == (tmp_path / "large" / name).read_bytes()


def test_cli_sheet_only(tmp_path):
    target = tmp_path / "sheet" / "patients.tsv"
    demo.main(["--outdir", "resources/demo", "--n-patients", "7", "--sheet-only", str(target)])
    sheet = pd.read_csv(target, sep="\t", keep_default_na=False)
    pd.testing.assert_frame_equal(sheet, demo.patient_sheet("resources/demo", 7, SEED))
    assert _files(tmp_path) == ["sheet/patients.tsv"]


def test_cli_generate(tmp_path, capsys):
    demo.main(["--outdir", str(tmp_path), "--n-patients", "3", "--seed", "7"])
    assert "3 patients" in capsys.readouterr().out
    assert len(list((tmp_path / "images").glob("*_ct.nii.gz"))) == 3


# ------------------------------------------------------------------------------------- images


def test_image_and_mask_geometry(cohort):
    _, sheet = cohort
    for image_path, mask_path in zip(sheet["image"], sheet["mask"], strict=True):
        img, _ = _read(image_path)
        msk, _ = _read(mask_path)
        assert img.GetSize() == msk.GetSize() == demo.SIZE
        for attr in ("GetSpacing", "GetOrigin", "GetDirection"):
            np.testing.assert_allclose(getattr(img, attr)(), getattr(msk, attr)(), atol=1e-6)
        np.testing.assert_allclose(img.GetSpacing(), (0.8, 0.8, 2.5), atol=1e-6)
        np.testing.assert_allclose(img.GetDirection(), np.eye(3).ravel(), atol=1e-6)
        assert img.GetPixelID() == sitk.sitkInt16
        assert msk.GetPixelID() == sitk.sitkUInt8


def test_mask_inside_volume_and_thick_enough(cohort):
    _, sheet = cohort
    for mask_path in sheet["mask"]:
        _, m = _read(mask_path)
        assert set(np.unique(m)) == {0, 1}
        for axis in range(3):
            other = tuple(a for a in range(3) if a != axis)
            occupied = np.flatnonzero(m.any(axis=other))
            assert occupied[0] > 0 and occupied[-1] < m.shape[axis] - 1
            if axis == 0:
                assert len(occupied) >= 3


def test_hu_ranges_are_plausible(cohort):
    _, sheet = cohort
    for image_path, mask_path in zip(sheet["image"], sheet["mask"], strict=True):
        _, img = _read(image_path)
        _, m = _read(mask_path)
        assert img.min() >= -1024 and img.max() <= 3071
        assert abs(np.median(img[:, :4, :4]) + 1000) < 30  # air in the corners
        assert np.mean(img < -700) > 0.3  # air plus lungs
        assert np.mean((img > -200) & (img < 200)) > 0.2  # soft tissue
        tumour = img[m > 0]
        assert -80 < np.median(tumour) < 140
        assert 8 < tumour.std() < 150


# ------------------------------------------------------------------------------------ RNA-seq


def test_rnaseq_tables(cohort):
    _, sheet = cohort
    names = list(demo.gene_names())
    assert len(names) == len(set(names)) == 400
    assert sum(n.startswith("MT-") for n in names) >= 5
    totals = []
    for path in sheet["rnaseq"]:
        if not path:
            continue
        assert Path(path).read_text(encoding="utf-8").splitlines()[0] == "gene\tcount"
        table = pd.read_csv(path, sep="\t")
        assert table["gene"].tolist() == names
        assert pd.api.types.is_integer_dtype(table["count"])
        assert (table["count"] >= 0).all()
        totals.append(table["count"].sum())
    assert max(totals) / min(totals) > 1.3


def test_gene_model():
    a, b = demo.gene_model(1), demo.gene_model(2)
    assert a.index.tolist() == b.index.tolist() == list(demo.gene_names())
    for model in (a, b):
        fc = model["log2fc"]
        assert (fc > 0).sum() == (fc < 0).sum() == 12
        assert fc[fc != 0].abs().between(0.5, 0.8).all()
        assert (fc[model["mito"]] == 0).all()
        assert model["dispersion"].between(0.2, 0.4).all()


def test_de_genes_differ_in_log_cpm():
    d = demo.design(40, seed=SEED)
    model = demo.gene_model(SEED)
    counts = pd.DataFrame(
        {
            p: demo.rnaseq_counts(p, int(y), SEED, model)
            for p, y in zip(d.patient_id, d.label, strict=True)
        }
    )
    totals = counts.sum()
    assert 2.0 < totals.max() / totals.min() < 8.0
    log_cpm = np.log2(counts / totals * 1e6 + 1)
    pos = d["label"].to_numpy() == 1
    diff = log_cpm.loc[:, pos].mean(axis=1) - log_cpm.loc[:, ~pos].mean(axis=1)
    de = model["log2fc"] != 0
    assert (np.sign(diff[de]) == np.sign(model.loc[de, "log2fc"])).mean() >= 0.9
    assert diff[de].abs().mean() > 2 * diff[~de].abs().mean()


# ----------------------------------------------------------------------------------- clinical


def test_clinical_table(cohort):
    outdir, _ = cohort
    d = demo.design(N, seed=SEED)
    clin = pd.read_csv(outdir / "clinical.tsv", sep="\t")
    cols = [
        "patient_id",
        "age",
        "sex",
        "smoking",
        "stage",
        "site",
        "response",
        "os_months",
        "death",
    ]
    assert list(clin.columns) == cols
    assert clin["patient_id"].tolist() == d["patient_id"].tolist()
    assert clin["response"].tolist() == d["label"].tolist()
    assert set(clin["sex"]) <= {"F", "M"}
    assert set(clin["smoking"].dropna()) <= {"never", "former", "current"}
    assert set(clin["stage"]) <= {"I", "II", "III", "IV"}
    assert set(clin["site"]) <= {"A", "B", "C"}
    ages = clin["age"].dropna()
    assert ages.between(30, 90).all()
    assert np.allclose(ages * 10, np.round(ages * 10))


def test_clinical_missingness_and_signal():
    d = demo.design(400, seed=SEED)
    clin = demo.clinical_table(d, SEED)
    assert 0.01 < clin["age"].isna().mean() < 0.1
    assert 0.01 < (clin["smoking"] == "").mean() < 0.1
    by_label = clin.groupby("response")["age"].mean()
    assert by_label[1] > by_label[0]
    stage = clin["stage"].map({"I": 1, "II": 2, "III": 3, "IV": 4})
    assert stage[clin["response"] == 1].mean() > stage[clin["response"] == 0].mean()


def test_survival_is_longer_for_responders_and_early_stages():
    from radiotx import survival

    clin = demo.clinical_table(demo.design(400, seed=SEED), SEED)
    assert 0.5 < clin["death"].mean() < 0.9 and (clin["os_months"] >= 0).all()
    censored = clin.loc[clin["death"] == 0, "os_months"]
    assert censored.between(12, 60).all()  # administrative censoring after 1 to 5 years
    y = survival.as_structured(clin.rename(columns={"os_months": "time", "death": "event"}))
    stage = clin["stage"].map({"I": 0, "II": 1, "III": 2, "IV": 3}).to_numpy()
    assert survival.concordance(y, -clin["response"].to_numpy()) > 0.58
    assert survival.concordance(y, stage) > 0.55


# ------------------------------------------------------------------------------- ground truth


def test_ground_truth(cohort):
    outdir, _ = cohort
    truth = json.loads((outdir / "ground_truth.json").read_text(encoding="utf-8"))
    assert truth["seed"] == SEED and truth["n_patients"] == N
    assert truth["endpoint"] == "response"
    assert truth["prevalence"] == pytest.approx(round(0.3 * N) / N)
    model = demo.gene_model(SEED)
    assert len(truth["signal_genes"]) == 24
    for entry in truth["signal_genes"]:
        assert entry["log2fc"] == pytest.approx(model.loc[entry["gene"], "log2fc"], abs=1e-3)
    assert all(model.loc[g, "log2fc"] == 0 for g in truth["null_genes_example"])
    assert "original_shape_MeshVolume" in truth["image_signal"]["features"]
    assert isinstance(truth["clinical_signal"], str)
    per_patient = truth["per_patient"]
    assert sorted(per_patient) == demo.design(N, seed=SEED)["patient_id"].tolist()
    for params in per_patient.values():
        assert {"radius_mm", "lobulation", "texture_sd"} <= set(params)


def test_hidden_tumour_parameters_carry_signal():
    hidden = demo.tumour_table(demo.design(60, seed=SEED), SEED)
    means = hidden.groupby("label")[["radius_mm", "lobulation", "texture_sd"]].mean()
    assert (means.loc[1] > means.loc[0]).all()
    # Overlapping classes: some negatives have larger tumours than some positives.
    assert hidden.loc[hidden.label == 0, "radius_mm"].max() > means.loc[1, "radius_mm"]


def test_pyradiomics_shape_separates_classes(cohort):
    featureextractor = pytest.importorskip("radiomics.featureextractor")
    logging.getLogger("radiomics").setLevel(logging.ERROR)
    _, sheet = cohort
    extractor = featureextractor.RadiomicsFeatureExtractor()
    extractor.disableAllFeatures()
    extractor.enableFeatureClassByName("shape")
    rows = [
        extractor.execute(image, mask)
        for image, mask in zip(sheet["image"], sheet["mask"], strict=True)
    ]
    feats = pd.DataFrame(
        {
            "volume": [float(r["original_shape_MeshVolume"]) for r in rows],
            "sphericity": [float(r["original_shape_Sphericity"]) for r in rows],
            "label": demo.design(N, seed=SEED)["label"],
        }
    )
    means = feats.groupby("label").mean()
    assert means.loc[1, "volume"] > means.loc[0, "volume"]
    assert feats["sphericity"].between(0.5, 1.0).all()


def test_gene_sets_hold_half_the_planted_genes_and_random_ones():
    sets = demo.gene_sets(seed=42)
    model = demo.gene_model(seed=42)
    up = set(model.index[model["log2fc"] > 0])
    down = set(model.index[model["log2fc"] < 0])
    for name, planted in (("DEMO_RESPONSE_UP", up), ("DEMO_RESPONSE_DOWN", down)):
        genes = sets[name]
        assert len(genes) == len(planted) and len(set(genes) & planted) == len(planted) // 2
        assert (model.loc[[g for g in genes if g not in planted], "log2fc"] == 0).all()
    randoms = [name for name in sets if name.startswith("DEMO_RANDOM_")]
    assert len(randoms) == 4
    for name in randoms:
        genes = model.loc[sets[name]]
        assert (genes["log2fc"] == 0).all() and not genes["mito"].any()
    everything = [g for genes in sets.values() for g in genes]
    assert len(everything) == len(set(everything))
    assert demo.gene_sets(seed=42) == sets


def test_gene_sets_file_round_trips(tmp_path):
    from radiotx.expression import read_gmt

    sets = demo.gene_sets(seed=7)
    demo.write_gene_sets(tmp_path / "sets.gmt", sets)
    assert read_gmt(tmp_path / "sets.gmt") == sets
