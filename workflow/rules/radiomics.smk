rule radiomics_qa:
    input:
        image=existing("image"),
        mask=existing("mask"),
        params=config["radiomics"]["params"],
    output:
        "<work>/qa/radiomics/{patient}.json",
    log:
        "logs/radiomics_qa/{patient}.log",
    conda:
        ENV
    params:
        image=lambda wildcards: SHEET.at[wildcards.patient, "image"],
        mask=lambda wildcards: SHEET.at[wildcards.patient, "mask"],
        settings=qa_settings(),
    script:
        "../scripts/radiomics_qa.py"


rule radiomics:
    input:
        image=existing("image"),
        mask=existing("mask"),
        params=config["radiomics"]["params"],
        qa="<work>/qa/radiomics/{patient}.json",
    output:
        "<work>/features/radiomics/{patient}.parquet",
    log:
        "logs/radiomics/{patient}.log",
    benchmark:
        "benchmarks/radiomics/{patient}.tsv"
    conda:
        ENV
    resources:
        mem_mb=retry_memory(RADIOMICS_RESOURCES["mem_mb"]),
        runtime=RADIOMICS_RESOURCES["runtime"],
    params:
        settings=qa_settings(),
    script:
        "../scripts/radiomics.py"


rule radiomics_qa_table:
    input:
        expand("<work>/qa/radiomics/{patient}.json", patient=RADIOMICS_PATIENTS),
    output:
        report(
            "<work>/qa/radiomics.tsv",
            caption="../report/radiomics_qa.rst",
            category="Cohort",
        ),
    log:
        "logs/radiomics_qa_table.log",
    conda:
        ENV
    script:
        "../scripts/qa_table.py"


rule radiomics_perturbed:
    input:
        image=existing("image"),
        mask=existing("mask"),
        params=config["radiomics"]["params"],
        qa="<work>/qa/radiomics/{patient}.json",
    output:
        "<work>/features/radiomics_perturbed/{patient}.parquet",
    log:
        "logs/radiomics_perturbed/{patient}.log",
    benchmark:
        "benchmarks/radiomics_perturbed/{patient}.tsv"
    conda:
        ENV
    resources:
        mem_mb=retry_memory(RADIOMICS_RESOURCES["mem_mb"]),
        runtime=lambda wildcards: RADIOMICS_RESOURCES["runtime"]
        * len(config["radiomics"]["stability"]["perturbations"]),
    params:
        settings=qa_settings(),
        kinds=config["radiomics"]["stability"]["perturbations"],
    script:
        "../scripts/radiomics_perturbed.py"


rule radiomics_stability:
    input:
        expand(
            "<work>/features/radiomics_perturbed/{patient}.parquet",
            patient=RADIOMICS_PATIENTS,
        ),
    output:
        table=report(
            "<work>/qa/radiomics_stability.tsv",
            caption="../report/radiomics_stability.rst",
            category="Cohort",
        ),
        perturbed="<work>/features/radiomics_perturbed.parquet",
    log:
        "logs/radiomics_stability.log",
    conda:
        ENV
    params:
        threshold=config["radiomics"]["stability"]["threshold"],
    script:
        "../scripts/radiomics_stability.py"
