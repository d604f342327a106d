if MATRIX:

    rule rnaseq_split:
        input:
            MATRIX,
        output:
            expand("<work>/rnaseq/samples/{patient}.tsv", patient=RNASEQ_PATIENTS),
        log:
            "logs/rnaseq_split.log",
        conda:
            ENV
        params:
            layer=config["rnaseq"]["layer"],
            values=config["rnaseq"]["values"],
        script:
            "../scripts/rnaseq_split.py"


rule rnaseq_qc:
    input:
        rnaseq_input,
    output:
        "<work>/qa/rnaseq/{patient}.json",
    log:
        "logs/rnaseq_qc/{patient}.log",
    conda:
        ENV
    params:
        path=rnaseq_file,
        thresholds=RNASEQ_THRESHOLDS,
        on_fail=config["rnaseq"]["qc"]["on_fail"],
        strand=config["rnaseq"]["strand"],
        values=config["rnaseq"]["values"],
    script:
        "../scripts/rnaseq_qc.py"


rule rnaseq:
    input:
        counts=rnaseq_input,
        qc="<work>/qa/rnaseq/{patient}.json",
    output:
        "<work>/features/rnaseq/{patient}.parquet",
    log:
        "logs/rnaseq/{patient}.log",
    benchmark:
        "benchmarks/rnaseq/{patient}.tsv"
    conda:
        ENV
    params:
        target_sum=config["rnaseq"]["target_sum"],
        strand=config["rnaseq"]["strand"],
        values=config["rnaseq"]["values"],
        unit=config["rnaseq"]["unit"],
    script:
        "../scripts/rnaseq.py"


rule rnaseq_qc_table:
    input:
        expand("<work>/qa/rnaseq/{patient}.json", patient=RNASEQ_PATIENTS),
    output:
        report(
            "<work>/qa/rnaseq.tsv",
            caption="../report/rnaseq_qc.rst",
            category="Cohort",
        ),
    log:
        "logs/rnaseq_qc_table.log",
    conda:
        ENV
    script:
        "../scripts/qa_table.py"


rule rnaseq_qc_plot:
    input:
        "<work>/qa/rnaseq.tsv",
    output:
        report(
            "<work>/qa/rnaseq_qc.png",
            caption="../report/rnaseq_qc_plot.rst",
            category="Cohort",
        ),
    log:
        "logs/rnaseq_qc_plot.log",
    conda:
        ENV
    params:
        thresholds=RNASEQ_THRESHOLDS,
    script:
        "../scripts/rnaseq_qc_plot.py"
