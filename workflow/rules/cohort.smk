if GENERATED_SHEET:

    rule patient_sheet:
        output:
            SHEET_FILE,
        log:
            "logs/patient_sheet.log",
        conda:
            ENV
        params:
            patients=list(SHEET.index),
        script:
            "../scripts/patient_sheet.py"


rule gather:
    input:
        radiomics=feature_files("radiomics"),
        rnaseq=feature_files("rnaseq"),
        deep=feature_files("deep"),
        sheet=SHEET_FILE,
        clinical=config["clinical"]["table"],
        tables=[table["path"] for table in TABLES.values()],
    output:
        cohort="<work>/cohort.h5mu",
        availability=report(
            "<work>/availability.tsv",
            caption="../report/availability.rst",
            category="Cohort",
        ),
    log:
        "logs/gather.log",
    conda:
        ENV
    params:
        clinical=config["clinical"],
        endpoints=config["endpoints"],
        batch=config["rnaseq"]["preprocess"]["batch"],
        gene_coverage=config["rnaseq"]["gene_coverage"],
        tables=TABLES,
    script:
        "../scripts/gather.py"


rule splits:
    input:
        sheet=SHEET_FILE,
        clinical=config["clinical"]["table"],
        sites=SUBGROUPS if LEAVE_OUT else [],
    output:
        "<work>/splits/{endpoint}.tsv",
    log:
        "logs/splits/{endpoint}.log",
    conda:
        ENV
    params:
        endpoint=lambda wildcards: config["endpoints"][wildcards.endpoint],
        id_column=config["clinical"]["id_column"],
        folds=config["cv"]["outer_folds"],
        repeats=config["cv"]["repeats"],
        holdout=config["cv"]["holdout"],
        leave_out=LEAVE_OUT,
        seed=config.get("seed", 42),
    script:
        "../scripts/splits.py"
