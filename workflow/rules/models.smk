rule model:
    input:
        cohort="results/cohort.h5mu",
        folds="results/splits/{endpoint}.tsv",
        perturbed=perturbed_table,
        gene_sets=gene_set_file,
    output:
        metrics="results/models/{endpoint}/{pipeline}/{classifier}/metrics.json",
        predictions="results/models/{endpoint}/{pipeline}/{classifier}/predictions.tsv",
        selected="results/models/{endpoint}/{pipeline}/{classifier}/selected_features.tsv",
        roc=report(
            "results/models/{endpoint}/{pipeline}/{classifier}/roc.png",
            caption="../report/roc.rst",
            category="ROC curves",
            subcategory="{endpoint}",
            labels={"pipeline": "{pipeline}", "classifier": "{classifier}"},
        ),
        model="results/models/{endpoint}/{pipeline}/{classifier}/model.joblib",
    log:
        "logs/models/{endpoint}/{pipeline}/{classifier}.log",
    benchmark:
        "benchmarks/models/{endpoint}/{pipeline}/{classifier}.tsv"
    conda:
        ENV
    resources:
        mem_mb=4000,
    params:
        modalities=lambda wildcards: config["pipelines"][wildcards.pipeline],
        settings=modelling_settings(),
    script:
        "../scripts/model.py"


rule permutation:
    input:
        cohort="results/cohort.h5mu",
        folds="results/splits/{endpoint}.tsv",
        perturbed=perturbed_table,
        gene_sets=gene_set_file,
    output:
        "results/permutations/{endpoint}/{pipeline}/{classifier}/{index}.json",
    log:
        "logs/permutations/{endpoint}/{pipeline}/{classifier}/{index}.log",
    benchmark:
        "benchmarks/permutations/{endpoint}/{pipeline}/{classifier}/{index}.tsv"
    conda:
        ENV
    resources:
        mem_mb=4000,
    params:
        modalities=lambda wildcards: config["pipelines"][wildcards.pipeline],
        settings=modelling_settings(),
    script:
        "../scripts/permutation.py"


rule permutation_test:
    input:
        metrics="results/models/{endpoint}/{pipeline}/{classifier}/metrics.json",
        null=permutation_draws,
    output:
        "results/models/{endpoint}/{pipeline}/{classifier}/permutation.json",
    log:
        "logs/permutation_test/{endpoint}/{pipeline}/{classifier}.log",
    conda:
        ENV
    script:
        "../scripts/permutation_test.py"
