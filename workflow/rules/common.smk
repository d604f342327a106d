import os
import re
import sys
from pathlib import Path

import yaml
from snakemake.utils import validate

# The radiotx library of this checkout, importable here and in every job (also inside a
# `--sdm conda` environment, which holds only the dependencies), installed or not.
CODE = Path(workflow.current_basedir).parents[1]  # this checkout
SRC = str(CODE / "src")
sys.path.insert(0, SRC)
os.environ.update(
    PYTHONPATH=os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")]))
)

from radiotx import cohort, configuration, preflight, publish, resume
from radiotx.errors import InputError
from radiotx.features import rnaseq

# Every job writes under work/; the last job of a complete run publishes it as results/
# (radiotx.publish), so results/ only ever holds one complete run.
WORK = str(publish.WORK)


pathvars:
    work=WORK,


# After a hard kill, the same command resumes: a lock whose run is gone is cleared, and a
# publication cut short is finished.
if workflow.is_main_process:
    for done in (resume.start(), publish.recover()):
        if done:
            print(f"radiotx: {done}", file=sys.stderr)

# `--config replace_results=true` lets a changed config replace the results of another
# (see the onstart check); it is not part of the study's config or its hash.
REPLACE_RESULTS = str(config.pop("replace_results", False)).lower() in (
    "true",
    "1",
    "yes",
)
# Every problem of the config at once, by key path; Snakemake's check fills in the defaults.
configuration.check(
    config,
    Path(workflow.current_basedir).parent / "schemas" / "config.schema.yaml",
    ", ".join(map(str, workflow.configfiles)) or "the config",
)
validate(config, "../schemas/config.schema.yaml")

# One expression matrix with every patient replaces the sheet's per-patient rnaseq files.
MATRIX = config["rnaseq"]["matrix"]
MATRIX_PATIENTS = rnaseq.matrix_patients(MATRIX) if MATRIX else []
# Without a patient sheet the cohort is the matrix's patients, or the clinical table's;
# "all": every patient of the clinical table, the matrix and the feature tables.
GENERATED_SHEET = config["patients"] in ("", "all")
SHEET_FILE = f"{WORK}/patients.tsv" if GENERATED_SHEET else config["patients"]
if config["patients"] == "all":
    SHEET = cohort.sheet_of(
        dict.fromkeys(
            [
                *cohort.read_clinical(
                    config["clinical"]["table"], config["clinical"]["id_column"]
                ).index,
                *MATRIX_PATIENTS,
                *(
                    patient
                    for table in config["tables"].values()
                    for patient in cohort.read_table(
                        table["path"], table["id_column"]
                    ).index
                ),
            ]
        )
    )
elif config["patients"]:
    SHEET = cohort.read_sheet(config["patients"])
else:
    SHEET = cohort.sheet_of(
        MATRIX_PATIENTS
        or cohort.read_clinical(
            config["clinical"]["table"], config["clinical"]["id_column"]
        ).index
    )
validate(SHEET, "../schemas/patients.schema.yaml")

RADIOMICS_PATIENTS = cohort.patients_with(SHEET, "image", "mask")
if MATRIX:
    RNASEQ_PATIENTS = [p for p in SHEET.index if p in set(MATRIX_PATIENTS)]
else:
    RNASEQ_PATIENTS = cohort.patients_with(SHEET, "rnaseq")
RNASEQ_THRESHOLDS = {k: v for k, v in config["rnaseq"]["qc"].items() if k != "on_fail"}
if config["rnaseq"]["values"] == "normalised" and any(
    v is not None for v in RNASEQ_THRESHOLDS.values()
):
    raise InputError(
        "rnaseq.qc thresholds are set for normalised expression, which has no counts",
        path="config/config.yaml",
        fix="leave the rnaseq.qc thresholds empty (null), or give raw counts",
    )
TABLES = config["tables"]
MODALITIES = {"radiomics", "rnaseq", "clinical", "deep", *TABLES}
# a pipeline is a list of modalities, or {modalities: [...], complete_cases: true}
PIPELINE_SPECS = {
    name: spec if isinstance(spec, dict) else {"modalities": spec}
    for name, spec in config["pipelines"].items()
}


def modalities_of(pipeline):
    return PIPELINE_SPECS[pipeline]["modalities"]


def fused(pipeline):
    """Whether the pipeline's models are the fusion strategies (several modalities)."""
    return len(modalities_of(pipeline)) > 1 and bool(config["fusion"]["strategies"])


for name in PIPELINE_SPECS:
    unknown = sorted(set(modalities_of(name)) - MODALITIES)
    if unknown:
        raise InputError(
            f"pipeline '{name}' uses unknown modalities {unknown}",
            path="config/config.yaml",
            fix=f"use {sorted(MODALITIES)}, or declare the table under tables:",
        )
# A modality that no pipeline models is neither checked nor extracted.
USED_MODALITIES = {m for name in PIPELINE_SPECS for m in modalities_of(name)}
if "rnaseq" not in USED_MODALITIES:
    RNASEQ_PATIENTS = []
if (
    not {"radiomics", "deep"} & USED_MODALITIES
    and not config["radiomics"]["stability"]["enabled"]
):
    RADIOMICS_PATIENTS = []
cohort.check_modalities(
    USED_MODALITIES,
    {
        "radiomics": RADIOMICS_PATIENTS,
        "deep": RADIOMICS_PATIENTS,
        "rnaseq": RNASEQ_PATIENTS,
    },
    SHEET_FILE,
)
# The input tables and the pyradiomics parameter file, every problem at once, before any
# job: Snakemake would otherwise first delete the outputs made from the previous ones.
if workflow.is_main_process:
    preflight.check(config, radiomics=bool(RADIOMICS_PATIENTS))
ENDPOINTS = list(config["endpoints"])
SURVIVAL = [name for name, spec in config["endpoints"].items() if "event" in spec]
PIPELINES = list(config["pipelines"])


def with_selected(names):
    """The models of an endpoint, plus "selected" whose inner CV also chooses the model
    (so that its outer score is honest)."""
    names = list(names)
    if config["model"]["select_classifier"] and len(names) > 1:
        names.append("selected")
    return names


CLASSIFIERS = with_selected(config["model"]["classifiers"])
SURVIVAL_MODELS = with_selected(config["model"]["survival_models"])
STRATEGIES = with_selected(config["fusion"]["strategies"])


def models_of(endpoint, pipeline):
    """Survival models; the fusion strategies of a multi-modality pipeline; classifiers."""
    if endpoint in SURVIVAL:
        return SURVIVAL_MODELS
    return STRATEGIES if fused(pipeline) else CLASSIFIERS


ENV = "../../envs/radiotx.yaml"


wildcard_constraints:
    patient="|".join(map(re.escape, SHEET.index)) or "NONE",
    endpoint="|".join(map(re.escape, ENDPOINTS)),
    pipeline="|".join(map(re.escape, PIPELINES)),
    classifier="|".join(
        map(re.escape, set(CLASSIFIERS) | set(SURVIVAL_MODELS) | set(STRATEGIES))
    ),
    index=r"\d+",
    repeat=r"\d+",
    fold=r"\d+",


def sheet_path(column):
    """Input function: the patient's file in `column` of the patient sheet."""

    def lookup(wildcards):
        return SHEET.at[wildcards.patient, column]

    return lookup


def demo_files():
    """Files of the patient sheet that the demo generator writes (under demo.outdir)."""
    outdir = os.path.normpath(config["demo"]["outdir"])
    return [
        path
        for column in ("image", "mask", "rnaseq")
        for path in SHEET[column]
        if path and os.path.commonpath([outdir, os.path.normpath(path)]) == outdir
    ]


def study_inputs():
    """Every input file of the study, for its manifest: the patient sheet and its patients'
    files, the clinical and feature tables, the expression matrix, the gene sets and the
    pyradiomics parameter file, those
    that exist or the demo generator makes (a missing patient file fails that patient's QA
    instead)."""
    files = [path for column in ("image", "mask", "rnaseq") for path in SHEET[column]]
    files += [config["clinical"]["table"], *(t["path"] for t in TABLES.values())]
    files += [
        MATRIX,
        config["rnaseq"]["preprocess"]["gene_sets"],
        config["radiomics"]["params"],
    ]
    files += [] if GENERATED_SHEET else [SHEET_FILE]
    return sorted(
        {path for path in files if path and (path in GENERATED or os.path.exists(path))}
    )


def rnaseq_file(wildcards):
    """The patient's RNA-seq file: a column of the matrix, or the sheet's file."""
    if MATRIX:
        return f"{WORK}/rnaseq/samples/{wildcards.patient}.tsv"
    return SHEET.at[wildcards.patient, "rnaseq"]


def rnaseq_input(wildcards):
    """Input function: the patient's RNA-seq file when it exists or a rule makes it."""
    if MATRIX:
        return [rnaseq_file(wildcards)]
    return existing("rnaseq")(wildcards)


def existing(column):
    """Input function: the patient's file in `column` when it exists or a rule makes it. A
    missing file then fails that patient's QA (with the fix) instead of the whole workflow.
    """

    def lookup(wildcards):
        path = SHEET.at[wildcards.patient, column]
        return [path] if os.path.exists(path) or path in GENERATED else []

    return lookup


def radiomics_resources():
    """Memory (MB) and runtime (min) of one extraction, from the peak measured on a
    512x512x100 CT with every filter: pyradiomics crops to the ROI when it resamples
    (about 0.65 GB, 5 s); without resampling the filters run on the whole grid (4.2 GB, 45 s).
    """
    with open(config["radiomics"]["params"], encoding="utf-8") as handle:
        settings = (yaml.safe_load(handle) or {}).get("setting") or {}
    if settings.get("resampledPixelSpacing"):
        return {"mem_mb": 1500, "runtime": 10}
    return {"mem_mb": 5000, "runtime": 20}


RADIOMICS_RESOURCES = radiomics_resources()


def retry_memory(mb):
    """Resource function: `mb` on the first attempt, doubled on every retry, so that a job a
    cluster killed for memory is resubmitted (profile `retries`) with more."""
    return lambda wildcards, attempt: mb * 2 ** (attempt - 1)


def qa_settings():
    """The Settings of radiotx.features.qa, from the config."""
    radiomics = config["radiomics"]
    return {
        "label": radiomics["label"],
        "roi": radiomics["roi"] or None,
        **radiomics["qa"],
    }


# the files the demo generator writes (absent before its first run)
GENERATED = (
    {
        *demo_files(),
        config["clinical"]["table"],
        f"{config['demo']['outdir']}/gene_sets.gmt",
    }
    if "demo" in config
    else set()
)
# A glance at every patient's files, listed before any job; those patients' jobs then fail
# with the same message while the others go on.
if workflow.is_main_process:
    PROBLEMS = preflight.patient_files(
        SHEET,
        {
            "image": RADIOMICS_PATIENTS,
            "mask": RADIOMICS_PATIENTS,
            "rnaseq": [] if MATRIX else RNASEQ_PATIENTS,
        },
        GENERATED,
    )
    if PROBLEMS:
        print(preflight.warning(PROBLEMS), file=sys.stderr)


def feature_files(modality):
    """The per-patient feature files of a modality that a pipeline models (none of a
    modality that no pipeline uses: it is not extracted). Deep features are ROI crops,
    which the encoders turn into features inside the folds."""
    if modality not in USED_MODALITIES:
        return []
    patients = {"radiomics": RADIOMICS_PATIENTS, "rnaseq": RNASEQ_PATIENTS}
    return expand(
        "<work>/features/{modality}/{patient}.{ext}",
        modality=modality,
        patient=patients.get(modality, RADIOMICS_PATIENTS),
        ext="npz" if modality == "deep" else "parquet",
    )


def endpoint_model_files(endpoint, name):
    return [
        f"<work>/models/{endpoint}/{pipeline}/{model}/{name}"
        for pipeline in PIPELINES
        for model in models_of(endpoint, pipeline)
    ]


def model_files(name):
    return [
        path for endpoint in ENDPOINTS for path in endpoint_model_files(endpoint, name)
    ]


BINARY = [
    e
    for e, spec in config["endpoints"].items()
    if "positive" in spec and "event" not in spec
]


def comparison_files(name="strategies.png"):
    """A file of the fusion comparison of each binary endpoint, when a pipeline fuses
    modalities."""
    if not any(fused(pipeline) for pipeline in PIPELINES):
        return []
    return expand("<work>/comparison/{endpoint}/{name}", endpoint=BINARY, name=name)


# Every permutation job re-runs every classifier's whole procedure (the "selected" model's
# too) on shuffled labels, so each model gets its permutation test.
N_PERMUTATIONS = config["cv"]["permutations"]
REPEATS = range(config["cv"]["repeats"])
OUTER_FOLDS = range(config["cv"]["outer_folds"])
HOLDOUT = config["cv"]["holdout"] > 0


def permutation_files():
    if not N_PERMUTATIONS:
        return []
    return model_files("permutation.json")


def learning_curve_files():
    if not config["cv"]["learning_curve"]:
        return []
    return expand(
        "<work>/models/{endpoint}/{pipeline}/learning_curve.png",
        endpoint=ENDPOINTS,
        pipeline=PIPELINES,
    )


def holdout_files():
    return model_files("holdout.json") if HOLDOUT else []


def permutation_draws(wildcards):
    """Input function: the permuted runs of one model's (endpoint, pipeline)."""
    return expand(
        "<work>/permutations/{endpoint}/{pipeline}/{index}.json",
        index=range(N_PERMUTATIONS),
        endpoint=wildcards.endpoint,
        pipeline=wildcards.pipeline,
    )


def outer_fold_files(wildcards):
    """Input function: the outer-fold jobs of one model's (endpoint, pipeline)."""
    return expand(
        "<work>/models/{endpoint}/{pipeline}/outer/r{repeat}f{fold}.json",
        endpoint=wildcards.endpoint,
        pipeline=wildcards.pipeline,
        repeat=REPEATS,
        fold=OUTER_FOLDS,
    )


def modelling_inputs(wildcards):
    """Input function: the cohort, the endpoint's splits and what the pipeline needs."""
    return {
        "cohort": "<work>/cohort.h5mu",
        "folds": f"<work>/splits/{wildcards.endpoint}.tsv",
        "perturbed": perturbed_table(wildcards),
        "gene_sets": gene_set_file(wildcards),
        "unlabelled": unlabelled_crops(wildcards),
    }


def stability_filter_on():
    stability = config["radiomics"]["stability"]
    return stability["enabled"] and stability["filter"]


def perturbed_table(wildcards):
    """Input function: the perturbed radiomics table, for models using the stability filter."""
    if stability_filter_on() and "radiomics" in modalities_of(wildcards.pipeline):
        return "<work>/features/radiomics_perturbed.parquet"
    return []


def gene_set_file(wildcards):
    """Input function: the GMT file of the expression gene sets, for models using RNA-seq
    (sets inside an installed package, `package:...`, are not files of the workflow)."""
    spec = config["rnaseq"]["preprocess"]["gene_sets"]
    if spec and not spec.startswith("package:"):
        if "rnaseq" in modalities_of(wildcards.pipeline):
            return spec
    return []


def unlabelled_crops(wildcards):
    """Input function: the external unlabelled crops, for models of the deep modality."""
    if config["deep"]["unlabelled"] and "deep" in modalities_of(wildcards.pipeline):
        return UNLABELLED_CROPS
    return []


UNLABELLED_CROPS = f"{WORK}/features/deep_unlabelled.npy"
ENCODER_KEYS = ("crop",)  # deep settings that are not the encoder's


def encoder_settings():
    """The parameters of radiotx.deep.encoder.DeepEncoder, from the config."""
    deep = config["deep"]
    encoder = {k: v for k, v in deep.items() if k not in ENCODER_KEYS}
    encoder["unlabelled"] = UNLABELLED_CROPS if deep["unlabelled"] else None
    return encoder


def deep_explanations():
    """The image attributions of each binary endpoint, when a pipeline models deep features."""
    if "deep" not in USED_MODALITIES or not config["explain"]["images"]["enabled"]:
        return []
    return expand("<work>/explain/{endpoint}/deep/sanity.tsv", endpoint=BINARY)


def stability_outputs():
    if config["radiomics"]["stability"]["enabled"]:
        return ["<work>/qa/radiomics_stability.tsv"]
    return []


def modelling_settings(pipeline):
    """The Settings of radiotx.experiment for a pipeline, from the config."""
    threshold = config["radiomics"]["stability"]["threshold"]
    return {
        "stability_threshold": threshold if stability_filter_on() else None,
        "seed": config.get("seed", 42),
        "inner_folds": config["cv"]["inner_folds"],
        "inner_repeats": config["cv"]["inner_repeats"],
        "choice": config["model"]["choice"],
        "k_features": config["model"]["k_features"],
        "smote_neighbors": config["model"]["smote_neighbors"],
        "selectors": config["model"]["selectors"],
        "balancers": config["model"]["balancers"],
        "candidates": config["model"]["classifiers"],
        "survival_models": config["model"]["survival_models"],
        "select": config["model"]["select_classifier"],
        "search": config["model"]["search"],
        "n_boot": config["cv"]["bootstrap"],
        "rnaseq": config["rnaseq"]["preprocess"],
        "strategies": config["fusion"]["strategies"],
        "block_selectors": config["fusion"]["selectors"] or None,
        "complete_cases": bool(PIPELINE_SPECS[pipeline].get("complete_cases", False)),
        "deep": encoder_settings(),
    }


# Fairness (rules/fairness.smk): the subgroup attributes of every patient, derived once.
SUBGROUPS = f"{WORK}/fairness/subgroups.tsv"
FAIRNESS = bool(config["fairness"]["attributes"])
MITIGATE = config["fairness"]["mitigate"]
LEAVE_OUT = config["cv"]["leave_out"]
for name in [MITIGATE["attribute"], LEAVE_OUT, *config["fairness"]["shift"]]:
    if name and name not in config["fairness"]["attributes"]:
        raise InputError(
            f"'{name}' is used as a fairness attribute but is not declared",
            path="config/config.yaml",
            fix=f"declare it under fairness.attributes (e.g. {name}: <clinical column>)",
        )


def fairness_model_files(name):
    """A file of every model of each binary or survival endpoint (a multiclass model has
    no single score to compare groups by)."""
    return [path for e in BINARY + SURVIVAL for path in endpoint_model_files(e, name)]


def mitigation_settings(wildcards):
    """What the outer-fold job of a binary endpoint mitigates (None: nothing). "selected"
    stands for a pipeline's only model when it has no "selected" one."""
    if not MITIGATE["attribute"] or wildcards.endpoint not in BINARY:
        return None
    present = models_of(wildcards.endpoint, wildcards.pipeline)
    models = [m for m in MITIGATE["models"] if m in present]
    if "selected" in MITIGATE["models"] and len(present) == 1:
        models = list(dict.fromkeys([*models, *present]))
    if not models:
        return None
    settings = {k: MITIGATE[k] for k in ("attribute", "methods", "constraint")}
    return {**settings, "models": models}


def mitigated_fold_files():
    """The outer-fold results holding the mitigated models' predictions."""
    if not MITIGATE["attribute"]:
        return []
    return expand(
        "<work>/models/{endpoint}/{pipeline}/outer/r{repeat}f{fold}.json",
        endpoint=BINARY,
        pipeline=PIPELINES,
        repeat=REPEATS,
        fold=OUTER_FOLDS,
    )


def mitigation_subgroups(wildcards):
    """Input function: the subgroups table, for outer-fold jobs that mitigate."""
    return SUBGROUPS if mitigation_settings(wildcards) is not None else []


def fairness_outputs():
    if not FAIRNESS:
        return []
    return ["<work>/fairness/cohort.md", "<work>/fairness/models.md"]


def deliverables():
    """What a complete run makes: every job's main output, so that one removed from work/
    (by a failed job, or by hand) is made again before the next publication instead of
    being taken for a removed intermediate file."""
    per_pipeline = {"endpoint": ENDPOINTS, "pipeline": PIPELINES}
    return [
        "<work>/cohort.h5mu",
        "<work>/manifest.json",
        *expand("<work>/splits/{endpoint}.tsv", endpoint=ENDPOINTS),
        *expand(
            "<work>/models/{endpoint}/{pipeline}/outer/r{repeat}f{fold}.json",
            **per_pipeline,
            repeat=REPEATS,
            fold=OUTER_FOLDS,
        ),
        *expand("<work>/models/{endpoint}/{pipeline}/refit.joblib", **per_pipeline),
        *model_files("metrics.json"),
        *model_files("model.joblib"),
        *expand(
            "<work>/permutations/{endpoint}/{pipeline}/{index}.json",
            **per_pipeline,
            index=range(N_PERMUTATIONS),
        ),
        *permutation_files(),
        *holdout_files(),
        *expand("<work>/qa/radiomics/{patient}.json", patient=RADIOMICS_PATIENTS),
        *expand("<work>/qa/rnaseq/{patient}.json", patient=RNASEQ_PATIENTS),
        *feature_files("radiomics"),
        *feature_files("rnaseq"),
        *feature_files("deep"),
        *deep_explanations(),
        "<work>/qa/radiomics.tsv",
        "<work>/qa/rnaseq.tsv",
        "<work>/qa/rnaseq_qc.png",
        *stability_outputs(),
        "<work>/summary.tsv",
        "<work>/summary.md",
        "<work>/selection_cost.tsv",
        "<work>/summary.html",
        "<work>/cohort.html",
        "<work>/mlflow/last_run.json",
        *learning_curve_files(),
        *comparison_files(),
        *expand("{folder}/{name}", folder=SHAP_DIRS, name=SHAP_FILES),
        *fairness_outputs(),
    ]
