# One job per outer fold of each (endpoint, pipeline): every classifier is tuned in it, so
# the preprocessing and selection they share are fitted once per inner split. The models of
# config explain.shap are explained there, on the fold's test patients (rules/explain.smk).
rule outer_fold:
    input:
        unpack(modelling_inputs),
        subgroups=mitigation_subgroups,
    output:
        "<work>/models/{endpoint}/{pipeline}/outer/r{repeat}f{fold}.json",
    log:
        "logs/models/{endpoint}/{pipeline}/outer/r{repeat}f{fold}.log",
    benchmark:
        "benchmarks/models/{endpoint}/{pipeline}/outer/r{repeat}f{fold}.tsv"
    conda:
        ENV
    resources:
        mem_mb=retry_memory(4000),
    params:
        modalities=lambda wildcards: modalities_of(wildcards.pipeline),
        settings=lambda wildcards: modelling_settings(wildcards.pipeline),
        explain=lambda wildcards: {
            **{k: v for k, v in config["explain"].items() if k != "images"},
            "shap": EXPLAINED[(wildcards.endpoint, wildcards.pipeline)],
        },
        mitigate=mitigation_settings,
    script:
        "../scripts/outer_fold.py"


rule refit:
    input:
        unpack(modelling_inputs),
    output:
        "<work>/models/{endpoint}/{pipeline}/refit.joblib",
    log:
        "logs/models/{endpoint}/{pipeline}/refit.log",
    benchmark:
        "benchmarks/models/{endpoint}/{pipeline}/refit.tsv"
    conda:
        ENV
    resources:
        mem_mb=retry_memory(4000),
    params:
        modalities=lambda wildcards: modalities_of(wildcards.pipeline),
        settings=lambda wildcards: modelling_settings(wildcards.pipeline),
    script:
        "../scripts/refit.py"


rule model:
    input:
        folds=outer_fold_files,
        refit="<work>/models/{endpoint}/{pipeline}/refit.joblib",
    output:
        metrics="<work>/models/{endpoint}/{pipeline}/{classifier}/metrics.json",
        predictions="<work>/models/{endpoint}/{pipeline}/{classifier}/predictions.tsv",
        selected="<work>/models/{endpoint}/{pipeline}/{classifier}/selected_features.tsv",
        plot=report(
            "<work>/models/{endpoint}/{pipeline}/{classifier}/performance.png",
            caption="../report/performance.rst",
            category="Model performance",
            subcategory="{endpoint}",
            labels={"pipeline": "{pipeline}", "classifier": "{classifier}"},
        ),
        plots=report(
            directory("<work>/models/{endpoint}/{pipeline}/{classifier}/plots"),
            patterns=["{name}.png"],
            caption="../report/plots.rst",
            category="Model performance",
            subcategory="{endpoint}",
            labels={
                "pipeline": "{pipeline}",
                "classifier": "{classifier}",
                "figure": "{name}",
            },
        ),
        model="<work>/models/{endpoint}/{pipeline}/{classifier}/model.joblib",
    log:
        "logs/models/{endpoint}/{pipeline}/{classifier}.log",
    conda:
        ENV
    params:
        settings=lambda wildcards: modelling_settings(wildcards.pipeline),
    script:
        "../scripts/model.py"


rule holdout:
    input:
        cohort="<work>/cohort.h5mu",
        folds="<work>/splits/{endpoint}.tsv",
        model="<work>/models/{endpoint}/{pipeline}/{classifier}/model.joblib",
    output:
        metrics="<work>/models/{endpoint}/{pipeline}/{classifier}/holdout.json",
        predictions="<work>/models/{endpoint}/{pipeline}/{classifier}/holdout_predictions.tsv",
    log:
        "logs/holdout/{endpoint}/{pipeline}/{classifier}.log",
    conda:
        ENV
    params:
        modalities=lambda wildcards: modalities_of(wildcards.pipeline),
        settings=lambda wildcards: modelling_settings(wildcards.pipeline),
    script:
        "../scripts/holdout.py"


rule permutation:
    input:
        unpack(modelling_inputs),
    output:
        "<work>/permutations/{endpoint}/{pipeline}/{index}.json",
    log:
        "logs/permutations/{endpoint}/{pipeline}/{index}.log",
    benchmark:
        "benchmarks/permutations/{endpoint}/{pipeline}/{index}.tsv"
    conda:
        ENV
    resources:
        mem_mb=retry_memory(4000),
    params:
        modalities=lambda wildcards: modalities_of(wildcards.pipeline),
        settings=lambda wildcards: modelling_settings(wildcards.pipeline),
    script:
        "../scripts/permutation.py"


rule permutation_test:
    input:
        metrics="<work>/models/{endpoint}/{pipeline}/{classifier}/metrics.json",
        null=permutation_draws,
    output:
        "<work>/models/{endpoint}/{pipeline}/{classifier}/permutation.json",
    log:
        "logs/permutation_test/{endpoint}/{pipeline}/{classifier}.log",
    conda:
        ENV
    script:
        "../scripts/permutation_test.py"


rule learning_curve:
    input:
        unpack(modelling_inputs),
        outer=outer_fold_files,
    output:
        table="<work>/models/{endpoint}/{pipeline}/learning_curve.tsv",
        plot=report(
            "<work>/models/{endpoint}/{pipeline}/learning_curve.png",
            caption="../report/learning_curve.rst",
            category="Learning curves",
            subcategory="{endpoint}",
            labels={"pipeline": "{pipeline}"},
        ),
    log:
        "logs/learning_curve/{endpoint}/{pipeline}.log",
    benchmark:
        "benchmarks/learning_curve/{endpoint}/{pipeline}.tsv"
    conda:
        ENV
    resources:
        mem_mb=retry_memory(4000),
    params:
        modalities=lambda wildcards: modalities_of(wildcards.pipeline),
        settings=lambda wildcards: modelling_settings(wildcards.pipeline),
        fractions=config["cv"]["learning_curve"],
    script:
        "../scripts/learning_curve.py"
