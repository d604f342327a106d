rule rnaseq_qc:
    input:
        existing("rnaseq"),
    output:
        "results/qa/rnaseq/{patient}.json",
    log:
        "logs/rnaseq_qc/{patient}.log",
    conda:
        ENV
    params:
        path=lambda wildcards: SHEET.at[wildcards.patient, "rnaseq"],
        thresholds=config["rnaseq"]["qc"],
        strand=config["rnaseq"]["strand"],
    script:
        "../scripts/rnaseq_qc.py"


rule rnaseq:
    input:
        counts=existing("rnaseq"),
        qc="results/qa/rnaseq/{patient}.json",
    output:
        "results/features/rnaseq/{patient}.parquet",
    log:
        "logs/rnaseq/{patient}.log",
    benchmark:
        "benchmarks/rnaseq/{patient}.tsv"
    conda:
        ENV
    params:
        target_sum=config["rnaseq"]["target_sum"],
        strand=config["rnaseq"]["strand"],
    script:
        "../scripts/rnaseq.py"


rule rnaseq_qc_table:
    input:
        expand("results/qa/rnaseq/{patient}.json", patient=RNASEQ_PATIENTS),
    output:
        report(
            "results/qa/rnaseq.tsv",
            caption="../report/rnaseq_qc.rst",
            category="Cohort",
        ),
    log:
        "logs/rnaseq_qc_table.log",
    conda:
        ENV
    script:
        "../scripts/qa_table.py"
