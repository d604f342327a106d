rule rnaseq:
    input:
        sheet_path("rnaseq"),
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
    script:
        "../scripts/rnaseq.py"
