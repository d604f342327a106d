rule summary:
    input:
        metrics=model_files("metrics.json"),
        permutations=permutation_files(),
        holdout=holdout_files(),
        tests=comparison_files("tests.tsv"),
        contributions=comparison_files("contributions.tsv"),
        shap=expand("{folder}/stability.tsv", folder=SHAP_DIRS),
        images=deep_explanations(),
        fairness=fairness_outputs(),
        availability="<work>/availability.tsv",
        manifest="<work>/manifest.json",
    output:
        tsv="<work>/summary.tsv",
        md="<work>/summary.md",
        selection="<work>/selection_cost.tsv",
        html=report(
            "<work>/summary.html",
            caption="../report/summary.rst",
            category="Summary",
        ),
    log:
        "logs/summary.log",
    conda:
        ENV
    params:
        config=config,
    script:
        "../scripts/summary.py"


rule track:
    input:
        summary=[
            "<work>/summary.tsv",
            "<work>/summary.md",
            "<work>/selection_cost.tsv",
        ],
        models=model_files("metrics.json"),
        others=model_files("predictions.tsv")
        + model_files("selected_features.tsv")
        + model_files("performance.png")
        + model_files("model.joblib")
        + model_files("plots"),
        shap=expand("{folder}/{name}", folder=SHAP_DIRS, name=SHAP_FILES),
        images=deep_explanations(),
        fairness=fairness_outputs(),
        config=workflow.configfiles,
        manifest="<work>/manifest.json",
    output:
        "<work>/mlflow/last_run.json",
    log:
        "logs/track.log",
    conda:
        ENV
    params:
        tracking_uri=config["mlflow"]["tracking_uri"],
        pseudonymise=config["mlflow"]["pseudonymise"],
        register=config["mlflow"]["register"],
        study=config["study"],
        config=config,
    script:
        "../scripts/track.py"


rule compare:
    input:
        metrics=lambda wildcards: endpoint_model_files(
            wildcards.endpoint, "metrics.json"
        ),
        predictions=lambda wildcards: endpoint_model_files(
            wildcards.endpoint, "predictions.tsv"
        ),
        availability="<work>/availability.tsv",
    output:
        tests="<work>/comparison/{endpoint}/tests.tsv",
        patterns="<work>/comparison/{endpoint}/availability.tsv",
        contributions="<work>/comparison/{endpoint}/contributions.tsv",
        figure=report(
            "<work>/comparison/{endpoint}/strategies.png",
            caption="../report/strategies.rst",
            category="Fusion",
            subcategory="{endpoint}",
        ),
    log:
        "logs/compare/{endpoint}.log",
    conda:
        ENV
    params:
        fused=[pipeline for pipeline in PIPELINES if fused(pipeline)],
    script:
        "../scripts/compare.py"


rule manifest:
    input:
        inputs=study_inputs(),
        config=workflow.configfiles,
    output:
        "<work>/manifest.json",
    log:
        "logs/manifest.log",
    conda:
        ENV
    params:
        config=config,
        code=str(CODE),
    script:
        "../scripts/manifest.py"


rule cohort_page:
    input:
        availability="<work>/availability.tsv",
        radiomics="<work>/qa/radiomics.tsv",
        rnaseq="<work>/qa/rnaseq.tsv",
    output:
        report(
            "<work>/cohort.html",
            caption="../report/cohort.rst",
            category="Cohort",
        ),
    log:
        "logs/cohort_page.log",
    conda:
        ENV
    script:
        "../scripts/cohort_page.py"
