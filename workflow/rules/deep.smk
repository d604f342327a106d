# The deep-learning modality: per patient, a crop around the ROI (after the radiomics QA of
# its image and mask); the encoders that turn crops into features are fitted inside the
# modelling jobs' folds.
rule deep_crop:
    input:
        image=existing("image"),
        mask=existing("mask"),
        qa="<work>/qa/radiomics/{patient}.json",
    output:
        "<work>/features/deep/{patient}.npz",
    log:
        "logs/deep_crop/{patient}.log",
    benchmark:
        "benchmarks/deep_crop/{patient}.tsv"
    conda:
        ENV
    params:
        crop=config["deep"]["crop"],
        settings=qa_settings(),
    script:
        "../scripts/deep_crop.py"


if config["deep"]["unlabelled"]:

    rule deep_unlabelled:
        input:
            sheet=config["deep"]["unlabelled"],
            study=SHEET_FILE,
        output:
            UNLABELLED_CROPS,
        log:
            "logs/deep_unlabelled.log",
        benchmark:
            "benchmarks/deep_unlabelled.tsv"
        conda:
            ENV
        params:
            crop=config["deep"]["crop"],
            settings=qa_settings(),
        script:
            "../scripts/deep_unlabelled.py"


# Image attributions of a supervised encoder per outer fold (first repeat), on the fold's
# test patients, with their sanity checks.
rule explain_deep:
    input:
        cohort="<work>/cohort.h5mu",
        folds="<work>/splits/{endpoint}.tsv",
        crops=feature_files("deep"),
    output:
        attributions="<work>/explain/{endpoint}/deep/attributions.tsv",
        sanity="<work>/explain/{endpoint}/deep/sanity.tsv",
        deletion=report(
            "<work>/explain/{endpoint}/deep/deletion.png",
            caption="../report/deep_deletion.rst",
            category="Explanations",
            subcategory="{endpoint}",
        ),
        overlays=report(
            directory("<work>/explain/{endpoint}/deep/overlays"),
            patterns=["{name}.png"],
            caption="../report/deep_overlays.rst",
            category="Explanations",
            subcategory="{endpoint}",
            labels={"figure": "{name}"},
        ),
    log:
        "logs/explain_deep/{endpoint}.log",
    benchmark:
        "benchmarks/explain_deep/{endpoint}.tsv"
    conda:
        ENV
    resources:
        mem_mb=retry_memory(4000),
    params:
        encoder=encoder_settings(),
        explain=config["explain"]["images"],
        seed=config.get("seed", 42),
    script:
        "../scripts/explain_deep.py"
